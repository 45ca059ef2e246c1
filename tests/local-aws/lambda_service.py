"""Local Lambda service for the LocalStack stack: the project's real Lambda binaries, each run by the
Lambda Runtime Interface Emulator (RIE, shipped inside the aws-sam-cli package) on its own loopback
port, served by function name through the Lambda Invoke API.

It also fronts the LocalStack gateway. LocalStack's Step Functions engine invokes Lambda at
http://localhost:<gateway port>; offline, LocalStack has no working Lambda (its only executor is
Docker plus a downloaded init binary). So this service listens on 127.0.0.1:<port>, LocalStack on
127.0.0.2:<same port>:
  POST /2015-03-31/functions/<name|arn>/invocations        -> an idle RIE instance of that function
  GET  /2015-03-31/functions/<name|arn>[/configuration]    -> the function's configuration
  PUT  /2015-03-31/functions/<name|arn>/configuration      -> UpdateFunctionConfiguration: Environment,
                                                              Timeout, MemorySize, EphemeralStorage;
                                                              running instances are replaced, as Lambda
                                                              replaces its execution environments
  anything else                                            -> LocalStack, unchanged

Functions come from a JSON file written by deploy.py from infra/template.yaml:
  {"<function name>": {"binary": "...", "bootstrap": "/abs/path", "env": {...}, "timeout": 300,
                       "memory": 1024, "ephemeral_storage": 512, "architecture": "arm64", "arn": "..."}}
Each function has up to --concurrency warm instances (Lambda would scale out; two cores here).
Stdout/stderr of each function go to <log dir>/<function name>.log.

Lambda's limits, enforced per instance (docs/localstack.md, "Lambda limits"):
  timeout   an invocation still running at `timeout` seconds is killed with its whole instance and
            answered {"errorType": "Sandbox.Timedout", ...}; the next invocation gets a new instance.
  memory    each instance (RIE + bootstrap) runs in its own memory cgroup (v1) capped at `memory` MB
            (swap included); a kernel OOM kill is answered {"errorType": "Runtime.OutOfMemory", ...}.
  /tmp      each instance has its own mount namespace with a tmpfs of `ephemeral_storage` MB on /tmp.
  arm64     an aarch64 bootstrap on an x86-64 host runs under qemu-aarch64-static (no binfmt needed),
            with QEMU_ALLOWANCE_MB added to its cap for the emulator's own memory.
The service refuses to start when it cannot enforce them (not root, no cgroup v1 memory hierarchy,
no unshare/mount, a bootstrap this host can neither run nor emulate).
"""

import argparse
import http.client
import http.server
import json
import os
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

from service_roles import ServiceRoles

INVOKE_PREFIX = "/2015-03-31/functions/"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}

# Lambda's ranges for what UpdateFunctionConfiguration accepts (Lambda quotas page:
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
TIMEOUT_RANGE = (1, 900)
MEMORY_RANGE = (128, 10240)
EPHEMERAL_RANGE = (512, 10240)
DEFAULT_EPHEMERAL_MB = 512

# qemu-aarch64-static's own memory (its binary, the TCG translation cache, its bookkeeping) on top of
# what the emulated bootstrap uses, added to the memory cap of emulated instances only so that a
# function which fits its MemorySize on Graviton fits here too. Measured (2026-12-02, demo run, peak
# of each instance's cgroup, arm64 release bootstraps under qemu vs the x86-64 dev build natively):
# +15 MB (Normalize: 22 vs 7 MB) to +34 MB (Train: 48 vs 14 MB); Normalize's process alone: qemu 16.4
# MB anonymous vs 1.9 MB native. 64 MB is about twice the largest (docs/localstack.md, "Lambda limits").
QEMU_ALLOWANCE_MB = 64
QEMU_SYSROOT = "/usr/aarch64-linux-gnu"  # Debian's libc6-arm64-cross + libgcc-s1-arm64-cross

EM_X86_64, EM_AARCH64 = 0x3E, 0xB7
HOST_MACHINE = {"x86_64": EM_X86_64, "amd64": EM_X86_64, "aarch64": EM_AARCH64, "arm64": EM_AARCH64}.get(
    platform.machine().lower())
ELF_MACHINES = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64", 0x03: "i386", 0x28: "arm (32-bit)", 0xF3: "riscv"}


def log(msg):
    print(f"[lambda-service {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Refused(Exception):
    """A limit cannot be enforced or a bootstrap cannot run here: the service must not serve it."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def function_name(path_part):
    """`marquee-ingest`, `arn:aws:lambda:us-east-1:000000000000:function:marquee-ingest[:qualifier]`."""
    name = urllib.parse.unquote(path_part)
    if name.startswith("arn:"):
        parts = name.split(":")
        name = parts[6] if len(parts) > 6 else parts[-1]
    return name.split(":")[0]


# ------------------------------------------------------------------------------ what Lambda answers
# The payloads Lambda's Invoke API returns (HTTP 200, X-Amz-Function-Error: Unhandled) when the
# execution environment, not the function, ends an invocation. Both are the current (2024-) Lambda
# wording, as seen in Invoke responses and CloudWatch, and as LocalStack's fork of the RIE
# (lambda/rapid custom_interop.go) writes the timeout; the AWS RIE itself answers a runtime killed
# by a signal with {"errorType": "Runtime.ExitError", "errorMessage": "RequestId: <id> Error: Runtime
# exited with error: signal: killed"}, which Lambda reports as Runtime.OutOfMemory when its memory
# limit was the cause (AWS Lambda docs, "Troubleshoot invocation issues": "Runtime.OutOfMemory").
def timed_out(request_id, timeout):
    return {"errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"}


def out_of_memory(request_id):
    return {"errorType": "Runtime.OutOfMemory",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"}


# ------------------------------------------------------------------------------ architectures
def elf_machine(path):
    """e_machine of an ELF file, or None for anything else (a script: the kernel runs it)."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def launch_plan(bootstrap, qemu):
    """("native" | "emulated", machine name) for a bootstrap, or Refused with what to do."""
    if not os.path.isfile(bootstrap):
        raise Refused(f"{bootstrap}: no such file")
    machine = elf_machine(bootstrap)
    if machine is None or machine == HOST_MACHINE:
        return "native", ELF_MACHINES.get(machine, platform.machine()) if machine else "script"
    name = ELF_MACHINES.get(machine, f"e_machine {machine:#x}")
    if machine == EM_AARCH64 and HOST_MACHINE == EM_X86_64:
        if not qemu:
            raise Refused(f"{bootstrap} is an aarch64 executable and qemu-aarch64-static is not installed: "
                          "apt-get install qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross "
                          "(scripts/aws-tools.sh arm64_emulator), or serve an x86_64 build")
        if not os.path.isdir(QEMU_SYSROOT):
            raise Refused(f"{bootstrap} is an aarch64 executable and {QEMU_SYSROOT} (its C runtime) is missing: "
                          "apt-get install libc6-arm64-cross libgcc-s1-arm64-cross")
        return "emulated", name
    raise Refused(f"{bootstrap} is an ELF executable for {name}: this {platform.machine()} host can neither run it nor "
                  "emulate it (only aarch64 is emulated, with qemu-aarch64-static); serve an x86_64 or arm64 build")


def emulator_wrapper(work_dir, fn_name, bootstrap, qemu):
    """The bootstrap the RIE execs for an emulated function: a script that execs qemu-aarch64-static."""
    path = os.path.join(work_dir, "emulated", fn_name, "bootstrap")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    q = lambda s: "'" + s.replace("'", "'\\''") + "'"  # noqa: E731
    text = f"#!/bin/sh\nexec {q(qemu)} -L {q(QEMU_SYSROOT)} {q(os.path.abspath(bootstrap))} \"$@\"\n"
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------ memory cgroups (v1)
def own_memory_cgroup():
    """The directory of this process's memory cgroup (v1), or None where there is none."""
    rel = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                rel = path
    if rel is None:
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup" and "memory" in options:
                root, mount = fields[3], fields[4]
                inside = os.path.relpath(rel, root) if rel == root or rel.startswith(root.rstrip("/") + "/") else "."
                return mount if inside == "." else os.path.join(mount, inside)
    return None


def pid_alive(pid):
    """Whether a process runs (a zombie does not: a service just killed can be one for a while)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class Cgroup:
    """One instance's memory cgroup."""

    def __init__(self, path, limit_bytes):
        self.path = path
        os.mkdir(path)
        self.write("memory.limit_in_bytes", limit_bytes)
        # With swap accounting, cap memory + swap too: swapping must not dodge the limit.
        if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
            self.write("memory.memsw.limit_in_bytes", limit_bytes)

    @classmethod
    def existing(cls, path):
        cg = cls.__new__(cls)
        cg.path = path
        return cg

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def oom_kills(self):
        """The kernel's count of OOM kills in this cgroup (memory.oom_control, Linux >= 4.13)."""
        for line in self.read("memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        raise Refused(f"{self.path}/memory.oom_control has no oom_kill counter (Linux >= 4.13 needed)")

    def peak_mb(self):
        try:
            return int(self.read("memory.max_usage_in_bytes")) / (1 << 20)
        except OSError:
            return float("nan")

    def pids(self):
        try:
            return [int(p) for p in self.read("cgroup.procs").split()]
        except FileNotFoundError:
            return []

    def destroy(self):
        """Kills whatever still runs in it and removes it."""
        deadline = time.time() + 5
        while True:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if time.time() > deadline:
                    log(f"cannot remove {self.path}: {e}")
                    return
                time.sleep(0.02)


class Cgroups:
    """<root>/<service pid>/<function>-<n>: one memory cgroup per instance, under a root this
    service checks at start (it refuses to run functions without the cap)."""

    def __init__(self, root):
        self.root = root
        self.base = os.path.join(root, str(os.getpid()))
        self.count = 0
        self.lock = threading.Lock()
        if os.path.exists(os.path.join(os.path.dirname(root.rstrip("/")), "cgroup.controllers")):
            raise Refused(f"{root} is a cgroup v2 directory; the memory limit needs a cgroup v1 memory hierarchy "
                          "(e.g. /sys/fs/cgroup/memory/...): pass --cgroup-root")
        try:
            os.makedirs(self.base, exist_ok=True)
        except OSError as e:
            raise Refused(f"cannot create the memory cgroup {self.base}: {e} (root and a writable cgroup v1 memory "
                          "hierarchy are needed; --cgroup-root / MARQUEE_LAMBDA_CGROUP_ROOT choose where)") from e
        if not os.path.exists(os.path.join(self.base, "memory.limit_in_bytes")):
            raise Refused(f"{self.base} is not in a cgroup v1 memory hierarchy (no memory.limit_in_bytes): "
                          "pass --cgroup-root /sys/fs/cgroup/memory/<somewhere>")
        self.sweep()

    def sweep(self):
        """Removes what a service that died without cleaning up left under the root."""
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if not name.isdigit() or int(name) == os.getpid() or pid_alive(int(name)) or not os.path.isdir(path):
                continue
            for child in os.listdir(path):
                if os.path.isdir(os.path.join(path, child)):
                    Cgroup.existing(os.path.join(path, child)).destroy()
            try:
                os.rmdir(path)
                log(f"removed the stale cgroup {path}")
            except OSError:
                pass

    def create(self, fn_name, limit_bytes):
        with self.lock:
            self.count += 1
            n = self.count
        return Cgroup(os.path.join(self.base, f"{fn_name}-{n}"), limit_bytes)

    def close(self):
        for name in os.listdir(self.base) if os.path.isdir(self.base) else []:
            if os.path.isdir(os.path.join(self.base, name)):
                Cgroup.existing(os.path.join(self.base, name)).destroy()
        try:
            os.rmdir(self.base)
        except OSError:
            pass


# The instance's sandbox, run by `unshare -m --propagation private` (a private mount namespace):
# join the memory cgroup, then mount the instance's own /tmp, then exec the RIE.
SANDBOX_SH = r'''set -e
echo $$ > "$1/cgroup.procs"
mount -t tmpfs -o "size=$2m,mode=1777" marquee-lambda-tmp /tmp
shift 2
exec "$@"
'''


def hidden_by_tmp(path):
    """Whether an instance's own /tmp hides `path` (it replaces /tmp inside the instance)."""
    real = os.path.realpath(path)
    return real == "/tmp" or real.startswith("/tmp/")


class Host:
    """What every instance needs from this service: the RIE, where logs and generated wrappers go,
    the cgroups, the tools that build the sandbox."""

    def __init__(self, rie, log_dir, work_dir, cgroups, qemu):
        self.rie, self.log_dir, self.work_dir, self.cgroups, self.qemu = rie, log_dir, work_dir, cgroups, qemu
        self.unshare = shutil.which("unshare")
        if not self.unshare or not shutil.which("mount"):
            raise Refused("unshare and mount (util-linux) are needed for each instance's own /tmp")
        for what, path in (("the RIE", rie), ("--work-dir", work_dir)):
            if hidden_by_tmp(path):
                raise Refused(f"{what} {path} is under /tmp, which every instance replaces with its own tmpfs")

    def self_test(self):
        """Runs the sandbox once (cgroup, mount namespace, tmpfs): fails loudly where it cannot work."""
        cg = self.cgroups.create("self-test", 64 << 20)
        try:
            out = subprocess.run(
                [self.unshare, "-m", "--propagation", "private", "/bin/sh", "-c", SANDBOX_SH, "marquee-sandbox",
                 cg.path, "1", "/bin/sh", "-c", "cat /proc/self/cgroup; stat -f -c %T /tmp"],
                capture_output=True, text=True, timeout=30)
            if out.returncode != 0 or os.path.basename(cg.path) not in out.stdout or "tmpfs" not in out.stdout:
                raise Refused(f"the instance sandbox does not work here (root is needed for the memory cgroup, "
                              f"unshare -m and the /tmp mount): exit {out.returncode}: {out.stderr.strip()}")
            cg.oom_kills()
        finally:
            cg.destroy()


class Instance:
    """One execution environment: an RIE process running the function's bootstrap, in its own
    memory cgroup (capped at the function's memory) and mount namespace (its own /tmp)."""

    def __init__(self, fn, generation, host):
        self.fn = fn
        self.generation = generation
        # The configuration this instance was started with (an update replaces the instance).
        self.timeout, self.memory, self.tmp_mb = fn.timeout, fn.memory, fn.ephemeral_storage
        self.port = free_port()
        self.invocations = 0
        self.stopped = False
        self.proc = None
        plan, _ = launch_plan(fn.bootstrap, host.qemu)
        self.emulated = plan == "emulated"
        bootstrap = emulator_wrapper(host.work_dir, fn.name, fn.bootstrap, host.qemu) if self.emulated \
            else os.path.abspath(fn.bootstrap)
        if hidden_by_tmp(fn.bootstrap):
            raise Refused(f"{fn.bootstrap} is under /tmp, which every instance replaces with its own tmpfs")
        self.cap_mb = self.memory + (QEMU_ALLOWANCE_MB if self.emulated else 0)
        self.cgroup = host.cgroups.create(fn.name, self.cap_mb << 20)
        try:
            env = dict(os.environ)
            env.update(fn.env)
            # What Lambda sets itself, outside the function's Environment: the execution role's session.
            env.update(fn.service_env)
            env.update({
                "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
                # The RIE enforces this timeout itself too (it answers 200 "Task timed out after N.00
                # seconds" and restarts the runtime) and derives the runtime's deadline from it. This
                # service's own timer starts first (before the request is sent) and fires first; should
                # the RIE's answer come first anyway, it is answered and handled the same way.
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.timeout),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "TMPDIR": "/tmp",
            })
            self.log_path = os.path.join(host.log_dir, f"{fn.name}.log")
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [host.unshare, "-m", "--propagation", "private", "/bin/sh", "-c", SANDBOX_SH, "marquee-sandbox",
                 self.cgroup.path, str(self.tmp_mb),
                 host.rie, "--log-level", "error", "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                 "--runtime-api-address", f"127.0.0.1:{free_port()}", bootstrap],
                # Lambda's working directory is the function's code (/var/task).
                env=env, cwd=os.path.dirname(os.path.abspath(fn.bootstrap)),
                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            logf.close()
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"the instance of {fn.name} exited with {self.proc.returncode} before "
                                           f"its RIE listened (see {self.log_path})")
                    if time.time() > deadline:
                        raise RuntimeError(f"RIE for {fn.name} did not listen on {self.port}")
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def invoke(self, body, request_id):
        """(status, payload, healthy): an unhealthy instance (timed out, OOM-killed) is discarded."""
        oom_before = self.cgroup.oom_kills()
        self.invocations += 1
        # The socket timeout bounds the wait for the answer: the RIE sends nothing before it is done.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request("POST", "/2015-03-31/functions/function/invocations", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            status, payload = resp.status, resp.read()
        except TimeoutError:
            return 200, json.dumps(timed_out(request_id, self.timeout)).encode(), False
        except (OSError, http.client.HTTPException):
            if self.cgroup.oom_kills() > oom_before:  # the RIE itself was the victim
                return 200, json.dumps(out_of_memory(request_id)).encode(), False
            raise
        finally:
            conn.close()
        if self.cgroup.oom_kills() > oom_before:
            # The kernel killed a process of this instance at its cap (the RIE then answers
            # Runtime.ExitError "signal: killed"): Lambda's Runtime.OutOfMemory.
            return 200, json.dumps(out_of_memory(request_id)).encode(), False
        if status == 200 and payload.startswith(b"Task timed out after"):  # the RIE's own timer
            return 200, json.dumps(timed_out(request_id, self.timeout)).encode(), False
        return status, payload, True

    def alive(self):
        return not self.stopped and self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL to the instance's process group and to whatever else is in its cgroup; no waiting."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.cgroup.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self.kill()
        self.cgroup.destroy()  # waits until the cgroup is empty, then removes it
        if self.proc is not None:
            self.proc.wait()


def int_in(doc, key, lo, hi, label=None):
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{label or key} must be an integer from {lo} to {hi}, not {value!r}")
    return value


class Function:
    def __init__(self, name, conf, pool_size, host):
        self.name = name
        self.arn = conf["arn"]
        self.binary = conf["binary"]
        self.bootstrap = conf["bootstrap"]
        self.env = dict(conf.get("env", {}))
        self.service_env = dict(conf.get("service_env", {}))
        self.timeout = int(conf.get("timeout", 60))
        self.memory = int(conf.get("memory", 128))
        self.ephemeral_storage = int(conf.get("ephemeral_storage", DEFAULT_EPHEMERAL_MB))
        self.architecture = conf.get("architecture")
        self.host = host
        self.lock = threading.Lock()
        self.generation = 0
        self.idle = queue.LifoQueue()
        self.slots = threading.Semaphore(pool_size)
        self.all = []

    def configuration(self):
        arch = self.architecture or ("arm64" if os.path.isfile(self.bootstrap)
                                     and elf_machine(self.bootstrap) == EM_AARCH64 else "x86_64")
        return {"FunctionName": self.name, "FunctionArn": self.arn, "Runtime": "provided.al2023",
                "Handler": "bootstrap", "Timeout": self.timeout, "MemorySize": self.memory,
                "EphemeralStorage": {"Size": self.ephemeral_storage}, "Architectures": [arch],
                "Environment": {"Variables": self.env}, "State": "Active", "LastUpdateStatus": "Successful"}

    def update(self, doc):
        """UpdateFunctionConfiguration: Environment, Timeout, MemorySize, EphemeralStorage. Validated
        as Lambda does (ValueError), applied together; instances are replaced. What changed, or []."""
        new = {}
        if doc.get("Environment", {}).get("Variables") is not None:
            variables = doc["Environment"]["Variables"]
            if not isinstance(variables, dict):
                raise ValueError("Environment.Variables must be a map")
            new["env"] = {str(k): str(v) for k, v in variables.items()}  # passed through untouched
        if "Timeout" in doc:
            new["timeout"] = int_in(doc, "Timeout", *TIMEOUT_RANGE)
        if "MemorySize" in doc:
            new["memory"] = int_in(doc, "MemorySize", *MEMORY_RANGE)
        if "EphemeralStorage" in doc:
            storage = doc["EphemeralStorage"]
            if not isinstance(storage, dict) or "Size" not in storage:
                raise ValueError("EphemeralStorage must be {\"Size\": MB}")
            new["ephemeral_storage"] = int_in(storage, "Size", *EPHEMERAL_RANGE, label="EphemeralStorage.Size")
        if not new:
            return []
        with self.lock:
            for k, v in new.items():
                setattr(self, k, v)
            self.generation += 1
        # Idle instances go now; busy ones are dropped when their invocation returns.
        while True:
            try:
                inst = self.idle.get_nowait()
            except queue.Empty:
                break
            self.retire(inst)
        return sorted(new)

    def retire(self, inst):
        inst.stop()
        with self.lock:
            if inst in self.all:
                self.all.remove(inst)

    def invoke(self, body, request_id):
        """(status, payload, a note for the log)."""
        self.slots.acquire()
        try:
            inst = None
            while inst is None:
                try:
                    inst = self.idle.get_nowait()
                except queue.Empty:
                    with self.lock:
                        inst = Instance(self, self.generation, self.host)
                        self.all.append(inst)
                if inst.generation != self.generation or not inst.alive():
                    self.retire(inst)
                    inst = None
            healthy = False
            try:
                status, payload, healthy = inst.invoke(body, request_id)
                note = (f"instance peak {inst.cgroup.peak_mb():.0f} MB of {inst.cap_mb} MB"
                        f"{' (emulated)' if inst.emulated else ''}{'' if healthy else ', instance discarded'}")
                return status, payload, note
            finally:
                if healthy and inst.generation == self.generation and inst.alive():
                    self.idle.put(inst)
                else:
                    self.retire(inst)
        finally:
            self.slots.release()

    def stop(self):
        with self.lock:
            instances = list(self.all)
        for inst in instances:
            self.retire(inst)


def is_function_error(status, payload):
    """RIE answers a failed invocation with the runtime's error document: {"errorType", "errorMessage"}."""
    if status != 200:
        return True
    try:
        doc = json.loads(payload)
    except ValueError:
        return False
    return isinstance(doc, dict) and "errorType" in doc and "errorMessage" in doc and len(doc) <= 3


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "marquee-local-lambda"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, doc, headers=()):
        self.reply(status, json.dumps(doc).encode(), [("Content-Type", "application/json"), *headers])

    def lambda_route(self):
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith(INVOKE_PREFIX):
            return None
        rest = path[len(INVOKE_PREFIX):].split("/")
        fn = self.server.functions.get(function_name(rest[0]))
        if fn is None:
            return None
        return fn, "/".join(rest[1:])

    def handle_lambda(self, fn, action, body):
        if self.command == "POST" and action == "invocations":
            refusal = self.refused(self.server.roles.decide(self.headers, "lambda:InvokeFunction", fn.arn),
                                   "lambda:InvokeFunction", fn.arn)
            if refusal:
                return self.reply_json(403, {"Type": "User", "Message": refusal},
                                       [("X-Amzn-ErrorType", "AccessDeniedException")])
            kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if kind == "DryRun":
                return self.reply(204, b"")
            started = time.time()
            request_id = str(uuid.uuid4())
            if kind == "Event":
                threading.Thread(target=fn.invoke, args=(body, request_id), daemon=True).start()
                return self.reply(202, b"", [("X-Amzn-RequestId", request_id)])
            status, payload, note = fn.invoke(body, request_id)
            failed = is_function_error(status, payload)
            error = ""
            if failed:
                try:
                    error = " " + str(json.loads(payload).get("errorType"))
                except (ValueError, AttributeError):
                    pass
            log(f"{fn.name}: {'FAILED' + error if failed else 'ok'} in {time.time() - started:.2f}s "
                f"(request {request_id}; {note})")
            headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST"),
                       ("X-Amzn-RequestId", request_id)]
            if failed:
                headers.append(("X-Amz-Function-Error", "Unhandled"))
            return self.reply(200, payload, headers)
        if self.command == "GET" and action in ("", "configuration"):
            conf = fn.configuration()
            return self.reply_json(200, conf if action else {"Configuration": conf})
        if self.command == "PUT" and action == "configuration":
            try:
                doc = json.loads(body or b"{}")
                if not isinstance(doc, dict):
                    raise ValueError("the request body must be a JSON object")
                changed = fn.update(doc)
            except ValueError as e:
                return self.reply_json(400, {"Type": "User", "message": str(e)},
                                       [("X-Amzn-ErrorType", "InvalidParameterValueException")])
            if changed:
                log(f"{fn.name}: {', '.join('environment' if c == 'env' else c for c in changed)} updated (timeout {fn.timeout} s, memory {fn.memory} MB, "
                    f"/tmp {fn.ephemeral_storage} MB), instances replaced")
            return self.reply_json(200, fn.configuration())
        return self.reply_json(400, {"message": f"unsupported {self.command} {self.path} in the local Lambda"})

    def refused(self, decision, action, resource):
        """The AccessDenied message for a call the caller's role does not allow, else None."""
        if decision is None or decision[0] is True:
            return None
        allowed, role, session = decision
        log(f"denied: {session if role else 'caller'} {action} on {resource}")
        return ServiceRoles.denied_message(session, action, resource) if role else f"{session}: not authorized"

    def proxy(self, body):
        if self.headers.get("X-Amz-Target", "").endswith(".StartExecution"):
            # A rule starting the state machine: on AWS, Step Functions checks the rule's role.
            arn = json.loads(body or b"{}").get("stateMachineArn", "")
            refusal = self.refused(self.server.roles.decide(self.headers, "states:StartExecution", arn),
                                   "states:StartExecution", arn)
            if refusal:
                return self.reply_json(400, {"__type": "AccessDeniedException", "message": refusal},
                                       [("Content-Type", "application/x-amz-json-1.0")])
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=900)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.server.roles.observe(self.command, self.headers, body, resp.status, data)
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
            self.reply(resp.status, data, out)
        finally:
            conn.close()

    def dispatch(self):
        body = self.read_body()
        route = self.lambda_route()
        try:
            if route is not None:
                self.handle_lambda(route[0], route[1], body)
            else:
                self.proxy(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a local emulator must answer, not hang the caller
            log(f"{self.command} {self.path}: {e!r}")
            self.reply_json(502, {"message": f"local lambda service: {e}"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = dispatch


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="host:port to serve on")
    ap.add_argument("--upstream", required=True, help="LocalStack gateway URL")
    ap.add_argument("--functions", required=True, help="functions JSON written by deploy.py")
    ap.add_argument("--rie", required=True, help="path of aws-lambda-rie")
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--concurrency", type=int, default=2, help="warm instances per function")
    ap.add_argument("--iam-gateway", help="iam_gateway.py URL: invocations and StartExecution calls made with a "
                                          "session of a role (LocalStack's services) are decided against it")
    ap.add_argument("--cgroup-root", default=os.environ.get("MARQUEE_LAMBDA_CGROUP_ROOT"),
                    help="a cgroup v1 memory directory under which each instance gets its capped cgroup "
                         "(<root>/<service pid>/<function>-<n>); default: $MARQUEE_LAMBDA_CGROUP_ROOT, else "
                         "marquee-local-lambda under this process's own memory cgroup")
    ap.add_argument("--qemu-aarch64", default=shutil.which("qemu-aarch64-static"),
                    help="the user-mode emulator for aarch64 bootstraps on x86-64 (default: qemu-aarch64-static "
                         "on PATH)")
    ap.add_argument("--work-dir", help="where generated emulator wrappers go (default: lambda-service/ beside "
                                       "--functions)")
    args = ap.parse_args()

    with open(args.functions) as f:
        conf = json.load(f)
    os.makedirs(args.log_dir, exist_ok=True)
    work_dir = args.work_dir or os.path.join(os.path.dirname(os.path.abspath(args.functions)), "lambda-service")
    cgroups = None
    try:
        root = args.cgroup_root
        if not root:
            own = own_memory_cgroup()
            if own is None:
                raise Refused("no cgroup v1 memory hierarchy is mounted (the memory limit needs one): mount it, "
                              "or pass --cgroup-root")
            root = os.path.join(own, "marquee-local-lambda")
        cgroups = Cgroups(root)
        host = Host(args.rie, args.log_dir, work_dir, cgroups, args.qemu_aarch64)
        host.self_test()
        functions = {name: Function(name, c, args.concurrency, host) for name, c in conf.items()}
        for fn in functions.values():
            if os.path.isfile(fn.bootstrap):
                plan, machine = launch_plan(fn.bootstrap, host.qemu)
                if hidden_by_tmp(fn.bootstrap):
                    raise Refused(f"{fn.bootstrap} is under /tmp, which every instance replaces with its own tmpfs")
                log(f"{fn.name}: {machine} bootstrap, {plan}"
                    f"{f' (+{QEMU_ALLOWANCE_MB} MB for qemu)' if plan == 'emulated' else ''}; "
                    f"timeout {fn.timeout} s, memory {fn.memory} MB, /tmp {fn.ephemeral_storage} MB"
                    f"{f', deployed as {fn.architecture}' if fn.architecture else ''}")
    except Refused as e:
        log(f"cannot enforce Lambda's limits: {e}")
        if cgroups is not None:
            cgroups.close()
        sys.exit(2)
    log(f"instances in memory cgroups under {cgroups.base}")
    host_port = args.listen.rsplit(":", 1)
    server = Server((host_port[0], int(host_port[1])), Handler)
    server.functions = functions
    server.upstream = urllib.parse.urlsplit(args.upstream)
    server.roles = ServiceRoles(args.iam_gateway)

    def shutdown(*_):
        # Everything is killed first: `stack down` sends SIGKILL shortly after SIGTERM.
        for fn in functions.values():
            with fn.lock:
                instances = list(fn.all)
            for inst in instances:
                inst.kill()
        for fn in functions.values():
            fn.stop()
        cgroups.close()
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log(f"serving {len(functions)} functions on {args.listen}, proxying the rest to {args.upstream}")
    try:
        server.serve_forever()
    finally:
        shutdown()


if __name__ == "__main__":
    main()
