"""Local Lambda service for the LocalStack stack: the project's real Lambda binaries, each run by the
Lambda Runtime Interface Emulator (RIE, shipped inside the aws-sam-cli package) on its own loopback
port, served by function name through the Lambda Invoke API.

It also fronts the LocalStack gateway. LocalStack's Step Functions engine invokes Lambda at
http://localhost:<gateway port>; offline, LocalStack has no working Lambda (its only executor is
Docker plus a downloaded init binary). So this service listens on 127.0.0.1:<port>, LocalStack on
127.0.0.2:<same port>:
  POST /2015-03-31/functions/<name|arn>/invocations        -> an idle RIE instance of that function
  GET  /2015-03-31/functions/<name|arn>[/configuration]    -> the function's configuration
  PUT  /2015-03-31/functions/<name|arn>/configuration      -> new environment (UpdateFunctionConfiguration):
                                                              running instances are replaced, as Lambda
                                                              replaces its execution environments
  anything else                                            -> LocalStack, unchanged

Functions come from a JSON file written by deploy.py from infra/template.yaml:
  {"<function name>": {"binary": "...", "bootstrap": "/abs/path", "env": {...}, "timeout": 300,
                       "memory": 1024, "arn": "..."}}
Each function has up to --concurrency warm instances (Lambda would scale out; two cores here).
Stdout/stderr of each function go to <log dir>/<function name>.log.
"""

import argparse
import http.client
import http.server
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

INVOKE_PREFIX = "/2015-03-31/functions/"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def log(msg):
    print(f"[lambda-service {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


class Instance:
    """One execution environment: an RIE process running the function's bootstrap."""

    def __init__(self, fn, generation, log_dir, rie):
        self.fn = fn
        self.generation = generation
        self.port = free_port()
        env = dict(os.environ)
        env.update(fn.env)
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        })
        logf = open(os.path.join(log_dir, f"{fn.name}.log"), "ab")
        self.proc = subprocess.Popen(
            [rie, "--log-level", "error", "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{free_port()}", fn.bootstrap],
            env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.invocations = 0
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"RIE for {fn.name} exited with {self.proc.returncode}")
                time.sleep(0.05)
        raise RuntimeError(f"RIE for {fn.name} did not listen on {self.port}")

    def invoke(self, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.fn.timeout + 30)
        try:
            conn.request("POST", "/2015-03-31/functions/function/invocations", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()
            self.invocations += 1

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class Function:
    def __init__(self, name, conf, pool_size, log_dir, rie):
        self.name = name
        self.arn = conf["arn"]
        self.binary = conf["binary"]
        self.bootstrap = conf["bootstrap"]
        self.env = dict(conf.get("env", {}))
        self.timeout = int(conf.get("timeout", 60))
        self.memory = int(conf.get("memory", 128))
        self.log_dir, self.rie = log_dir, rie
        self.lock = threading.Lock()
        self.generation = 0
        self.idle = queue.LifoQueue()
        self.slots = threading.Semaphore(pool_size)
        self.all = []

    def configuration(self):
        return {"FunctionName": self.name, "FunctionArn": self.arn, "Runtime": "provided.al2023",
                "Handler": "bootstrap", "Timeout": self.timeout, "MemorySize": self.memory,
                "Environment": {"Variables": self.env}, "State": "Active", "LastUpdateStatus": "Successful"}

    def update_env(self, variables):
        with self.lock:
            self.env = dict(variables)
            self.generation += 1
        # Idle instances go now; busy ones are dropped when their invocation returns.
        while True:
            try:
                inst = self.idle.get_nowait()
            except queue.Empty:
                break
            inst.stop()

    def invoke(self, body):
        self.slots.acquire()
        try:
            inst = None
            while inst is None:
                try:
                    inst = self.idle.get_nowait()
                except queue.Empty:
                    with self.lock:
                        inst = Instance(self, self.generation, self.log_dir, self.rie)
                        self.all.append(inst)
                if inst.generation != self.generation or inst.proc.poll() is not None:
                    inst.stop()
                    inst = None
            try:
                return inst.invoke(body)
            finally:
                if inst.generation == self.generation and inst.proc.poll() is None:
                    self.idle.put(inst)
                else:
                    inst.stop()
        finally:
            self.slots.release()

    def stop(self):
        with self.lock:
            instances = list(self.all)
        for inst in instances:
            inst.stop()


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
            kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if kind == "DryRun":
                return self.reply(204, b"")
            started = time.time()
            if kind == "Event":
                threading.Thread(target=fn.invoke, args=(body,), daemon=True).start()
                return self.reply(202, b"")
            status, payload = fn.invoke(body)
            failed = is_function_error(status, payload)
            log(f"{fn.name}: {'FAILED' if failed else 'ok'} in {time.time() - started:.2f}s")
            headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
            if failed:
                headers.append(("X-Amz-Function-Error", "Unhandled"))
            return self.reply(200, payload, headers)
        if self.command == "GET" and action in ("", "configuration"):
            conf = fn.configuration()
            return self.reply_json(200, conf if action else {"Configuration": conf})
        if self.command == "PUT" and action == "configuration":
            doc = json.loads(body or b"{}")
            variables = doc.get("Environment", {}).get("Variables")
            if variables is not None:
                fn.update_env(variables)
                log(f"{fn.name}: environment updated, instances replaced")
            return self.reply_json(200, fn.configuration())
        return self.reply_json(400, {"message": f"unsupported {self.command} {self.path} in the local Lambda"})

    def proxy(self, body):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=900)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
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
    args = ap.parse_args()

    with open(args.functions) as f:
        conf = json.load(f)
    os.makedirs(args.log_dir, exist_ok=True)
    functions = {name: Function(name, c, args.concurrency, args.log_dir, args.rie) for name, c in conf.items()}
    host, port = args.listen.rsplit(":", 1)
    server = Server((host, int(port)), Handler)
    server.functions = functions
    server.upstream = urllib.parse.urlsplit(args.upstream)

    def shutdown(*_):
        for fn in functions.values():
            fn.stop()
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
