#!/usr/bin/env python3
"""Lambda-side numbers of marquee's functions (bench/lambda drives it).

  lambda.py size      --lambda-dir DIR                   binary and zip size of every <fn>/bootstrap
  lambda.py coldstart --lambda-dir DIR [--reps N]        cold-start init time and RSS at ready
  lambda.py flow      --functions FILE --customers N     one pipeline run on the local AWS stack,
                                                         then each function's peak RSS from its logs

coldstart runs each bootstrap against a minimal Lambda Runtime API on loopback: init time is from
spawning the process to its first `GET /runtime/invocation/next` (exec, dynamic loading, logging,
the tokio runtime and the AWS SDK configuration: everything Lambda bills as Init), median of N.
flow needs a stack that is up (tests/local-aws/stack run ... -- bench/lambda.py flow ...) and the
functions' logs: every invocation logs `peak_rss_mib` (VmHWM of the container so far).
Writes JSON to --out when given. Standard library + boto3 (flow only; the aws-tools venv has it).
"""

import argparse
import glob
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import zipfile


def bootstraps(lambda_dir):
    found = sorted(glob.glob(os.path.join(lambda_dir, "*", "bootstrap")))
    if not found:
        sys.exit(f"no <fn>/bootstrap under {lambda_dir}")
    return [(os.path.basename(os.path.dirname(p)), p) for p in found]


def zip_size(path):
    out = path + ".zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    size = os.path.getsize(out)
    os.remove(out)
    return size


def cmd_size(args):
    rows = []
    for name, path in bootstraps(args.lambda_dir):
        rows.append({"function": name, "binary_bytes": os.path.getsize(path), "zip_bytes": zip_size(path)})
    print(f"{'function':<12} {'binary MB':>10} {'zip MB':>8}")
    for r in rows:
        print(f"{r['function']:<12} {r['binary_bytes'] / 1e6:>10.1f} {r['zip_bytes'] / 1e6:>8.1f}")
    return rows


class RuntimeApi(http.server.ThreadingHTTPServer):
    """Answers nothing: records when the runtime first asks for an invocation."""

    daemon_threads = True

    def __init__(self):
        self.first_next = threading.Event()
        self.at = None

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(h):
                if h.path.endswith("/runtime/invocation/next") and not self.first_next.is_set():
                    self.at = time.perf_counter()
                    self.first_next.set()
                # Long poll, as Lambda does between invocations; the process is killed meanwhile.
                time.sleep(5)

            def log_message(h, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cold_start(path, name, memory):
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": f"marquee-{name}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MARQUEE_BUCKET": "bench",
        "MARQUEE_TABLE": "bench",
        "_HANDLER": "bootstrap",
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not api.first_next.wait(30):
            raise SystemExit(f"{name}: no /next within 30 s")
        init_ms = (api.at - t0) * 1000
        rss = vm_hwm_mib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        api.shutdown()
        api.server_close()
    return init_ms, rss


def cmd_coldstart(args):
    rows = []
    for name, path in bootstraps(args.lambda_dir):
        runs = [cold_start(path, name, 1024) for _ in range(args.reps)]
        inits = [r[0] for r in runs]
        rows.append(
            {
                "function": name,
                "init_ms_median": statistics.median(inits),
                "init_ms_all": [round(x, 2) for x in inits],
                "rss_at_ready_mib": max(r[1] or 0 for r in runs),
            }
        )
    print(f"{'function':<12} {'init ms (median of ' + str(args.reps) + ')':>24} {'RSS at ready MiB':>17}")
    for r in rows:
        print(f"{r['function']:<12} {r['init_ms_median']:>24.1f} {r['rss_at_ready_mib']:>17.1f}")
    return rows


def cmd_flow(args):
    import boto3

    functions = json.load(open(args.functions))
    state = os.path.dirname(os.path.abspath(args.functions))
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3", endpoint))
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint)
    bucket, machine = os.environ["MARQUEE_BUCKET"], os.environ["MARQUEE_STATE_MACHINE_ARN"]

    logs = {f: os.path.join(state, "logs", "functions", f"{f}.log") for f in functions}
    # Logs outlive a stack: read only what this run appends.
    offsets = {f: os.path.getsize(p) if os.path.exists(p) else 0 for f, p in logs.items()}
    data = os.path.join(state, "bench-demo")
    subprocess.run([args.marquee, "demo-data", "--customers", str(args.customers), "--out", data], check=True)
    sizes = {}
    files = sorted(os.listdir(data), key=lambda f: f == "pipeline.toml")  # the spec last: it starts the run
    for f in files:
        sizes[f] = os.path.getsize(os.path.join(data, f))
        s3.upload_file(os.path.join(data, f), bucket, f"raw/demo/{f}")  # the demo spec reads raw/demo/
    t0 = time.time()
    while True:
        runs = sfn.list_executions(stateMachineArn=machine)["executions"]
        if runs and all(r["status"] != "RUNNING" for r in runs):
            break
        if time.time() - t0 > args.timeout:
            raise SystemExit("the execution did not finish in time")
        time.sleep(2)
    status = [r["status"] for r in runs]
    if status != ["SUCCEEDED"]:
        raise SystemExit(f"executions: {status}")
    wall = max(r["stopDate"].timestamp() for r in runs) - min(r["startDate"].timestamp() for r in runs)

    rows = []
    for fname, meta in functions.items():
        peak, elapsed, total, n = 0, 0, 0, 0
        lines = []
        if os.path.exists(logs[fname]):
            with open(logs[fname], errors="replace") as f:
                f.seek(offsets[fname])
                lines = f.readlines()
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            fields = rec.get("fields", {})
            if "peak_rss_mib" in fields:
                peak = max(peak, fields["peak_rss_mib"])
                elapsed = max(elapsed, fields.get("elapsed_ms", 0))
                total += fields.get("elapsed_ms", 0)
                n += 1
        rows.append(
            {
                "function": meta["binary"],
                "memory_mb": meta["memory"],
                "invocations": n,
                "peak_rss_mib": peak,
                "share_of_memory": peak / meta["memory"] if meta["memory"] else None,
                "slowest_invocation_ms": elapsed,
                "total_invocation_ms": total,
                "gb_seconds": meta["memory"] / 1024 * total / 1000,
            }
        )
    print(f"input: {args.customers} demo customers: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))
    print(f"execution: {wall:.1f} s")
    print(
        f"{'function':<12} {'memory MB':>9} {'invocations':>11} {'peak RSS MiB':>12} {'share':>6} {'slowest ms':>10} {'total ms':>9} {'GB-s':>7}"
    )
    for r in rows:
        share = f"{100 * r['share_of_memory']:.0f}%" if r["share_of_memory"] is not None else "-"
        print(
            f"{r['function']:<12} {r['memory_mb']:>9} {r['invocations']:>11} {r['peak_rss_mib']:>12} {share:>6} {r['slowest_invocation_ms']:>10} {r['total_invocation_ms']:>9} {r['gb_seconds']:>7.2f}"
        )
    print(f"GB-s (handler durations, INIT not included): {sum(r['gb_seconds'] for r in rows):.2f}")
    return {"customers": args.customers, "input_bytes": sizes, "execution_seconds": wall, "functions": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("size", "coldstart"):
        p = sub.add_parser(name)
        p.add_argument("--lambda-dir", required=True)
        p.add_argument("--reps", type=int, default=5)
        p.add_argument("--out")
    p = sub.add_parser("flow")
    p.add_argument("--functions", required=True, help="functions.json of the local stack")
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--marquee", default="marquee")
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--out")
    args = ap.parse_args()
    result = {"size": cmd_size, "coldstart": cmd_coldstart, "flow": cmd_flow}[args.cmd](args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
