#!/usr/bin/env python3
"""Runs every (task, tool) of bench/run in its own process, samples the peak RSS of its process tree
(the JVM of Spark included), prints the comparison table and writes bench/results/latest.{json,md}.

Standard library only. Invoked by bench/run; see bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree_rss_kb(pid):
    """Sum of VmRSS over `pid` and its descendants (KiB)."""
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(p))
        except (OSError, IndexError, ValueError):
            pass
    total, todo = 0, [pid]
    while todo:
        q = todo.pop()
        try:
            with open(f"/proc/{q}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
        todo.extend(children.get(q, []))
    return total


def run_measured(argv, timeout, env=None):
    """(returncode, stdout, stderr, wall seconds, peak RSS MiB)."""
    tfile = tempfile.mktemp(prefix="marquee-bench-rss-")
    if os.path.exists("/usr/bin/time"):
        argv = ["/usr/bin/time", "-f", "%M", "-o", tfile] + list(argv)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            done.wait(0.05)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(timed out after {timeout}s)"
    done.set()
    th.join()
    wall = time.perf_counter() - t0
    # ru_maxrss of the child as /usr/bin/time saw it (largest single process) catches peaks shorter than a sample.
    own = 0
    try:
        with open(tfile) as f:
            own = int(f.read().strip().splitlines()[-1])
        os.unlink(tfile)
    except (OSError, ValueError, IndexError):
        pass
    return proc.returncode, out, err, wall, max(peak[0], own) / 1024


def jobs(a):
    """Groups of (task, label, argv without --reps, reps). A group's jobs are marquee and the peers that
    run the same task in comparable time; `main` runs them interleaved in rounds. Spark runs on its own
    (one process: its JVM start and its 1M-row k-means make rounds too costly)."""
    q = a.quick
    reps = 1 if q else a.reps
    spark_reps = 1 if q else max(1, min(a.reps, 3))
    mb = [os.path.join(a.target, "release", "marquee-bench")]
    py = [os.path.join(ROOT, "bench", ".venv", "bin", "python"), os.path.join(ROOT, "bench", "peers.py")]
    common = ["--data", a.data, "--work", a.work]
    groups = []

    def m(task, r=reps):
        return (task, f"marquee {task}", mb + ["task", task] + common, r)

    def p(tool, task, r=reps, variant=None):
        argv = py + [tool, task] + common + (["--variant", variant] if variant else [])
        return (task, f"{tool} {task}" + (f" --variant {variant}" if variant else ""), argv, r)

    def product(task, r=reps):
        # marquee's product path: `marquee eval` (prepare + train + artifact per protocol fold)
        return (task, f"marquee {task}", py[:1] + [os.path.join(ROOT, "bench", "product.py"), task,
                                                   "--data", a.data, "--target", a.target], r)

    def spark(task, r=spark_reps):
        if not a.no_spark:
            groups.append([p("spark", task, r)])
    groups.append([m("als_r10", max(reps, 5)), m("als_r10_sqrt", max(reps, 5)), p("surprise", "als_r10")])
    spark("als_r10")
    groups.append([m("als_r50"), m("als_r50_sqrt")])
    spark("als_r50")
    groups.append([m("kmeans_cdnow", max(reps, 3)), p("sklearn", "kmeans_cdnow")])
    if not q:
        spark("kmeans_cdnow", 1)
    groups.append([m("kmeans_1m"), p("sklearn", "kmeans_1m")])
    if not q:
        spark("kmeans_1m", 1)
    groups.append([m("logreg_telco"), p("sklearn", "logreg_telco")])
    spark("logreg_telco")
    groups.append([m("logreg_1m"), p("sklearn", "logreg_1m")])
    spark("logreg_1m")
    groups.append([m("gbm_telco"), p("sklearn", "gbm_telco")])
    groups.append([m("gbm_1m"), m("gbm_1m_budget"), p("sklearn", "gbm_1m")])
    groups.append([m("tfidf_imdb_nblr"), m("tfidf_imdb_nb")]
                  + [p("sklearn", "tfidf_imdb", reps, v) for v in (["svc"] if q else ["svc", "nb", "lr"])])
    # Product path: the pipeline's own prepare/train per protocol fold against the peers' whole
    # pipelines on the same folds (the calibrated variants do what marquee's churn model does).
    groups.append([product("product_telco"), p("sklearn", "product_telco"),
                   p("sklearn", "product_telco", reps, "calibrated")])
    groups.append([product("product_telco_gbm"), p("sklearn", "product_telco_gbm"),
                   p("sklearn", "product_telco_gbm", 1, "calibrated")])  # ~6x its plain fit: one rep per round
    groups.append([product("product_movielens"), p("surprise", "product_movielens")])
    return groups


def run_job(task, label, argv, reps):
    """One process of one job: its result dict (with rss_mib, process_wall_s) or an error dict."""
    print(f"... {label} --reps {reps}", file=sys.stderr, flush=True)
    rc, out, err, wall, rss = run_measured(argv + ["--reps", str(reps)], 1800)
    line = next((l for l in reversed(out.splitlines()) if l.startswith("{")), None)
    if rc != 0 or line is None:
        print(f"    failed ({rc}): {(err or out).strip().splitlines()[-1:] if (err or out).strip() else ''}",
              file=sys.stderr)
        return {"task": task.replace("_sqrt", "").replace("_nblr", "").replace("_nb", ""),
                "tool": label, "error": (err or out)[-2000:]}
    r = json.loads(line)
    r["rss_mib"] = rss
    r["process_wall_s"] = wall
    return r


def run_group(group, rounds):
    """Runs a group's jobs in `rounds` rounds (each job's repetitions split over them, the order of the
    jobs reversed every other round), so that a machine whose speed drifts over minutes slows both sides
    alike. Per job: all fit times, their median, each round's median, the largest RSS."""
    if len(group) == 1:
        rounds = 1
    merged = [None] * len(group)
    for rnd in range(rounds):
        order = list(range(len(group)))
        if rnd % 2:
            order.reverse()
        for j in order:
            task, label, argv, reps = group[j]
            if merged[j] is not None and "error" in merged[j]:
                continue
            r = run_job(task, label, argv, -(-reps // rounds))
            if "error" in r:
                merged[j] = r
                continue
            r["round_medians"] = [r["median_s"]]
            if merged[j] is None:
                merged[j] = r
            else:
                acc = merged[j]
                acc["fit_s"] += r["fit_s"]
                acc["median_s"] = statistics.median(acc["fit_s"])
                acc["round_medians"] += r["round_medians"]
                acc["rss_mib"] = max(acc["rss_mib"], r["rss_mib"])
                acc["process_wall_s"] += r["process_wall_s"]
    # Paired ratio: each round's peer median over that round's marquee median, median over rounds.
    base = next((r for r in merged if "round_medians" in r and r["tool"].startswith("marquee")), None)
    if base and len(base["round_medians"]) > 1:
        for r in merged:
            if r is not base and "round_medians" in r and len(r["round_medians"]) == len(base["round_medians"]):
                r["paired_ratio"] = statistics.median(p / b for p, b in zip(r["round_medians"], base["round_medians"]))
    return merged


def run_steps(out):
    """The seconds of each finished step in `marquee run`'s plain progress lines (`✓ label  1.23s  note`)."""
    steps = {}
    for line in out.splitlines():
        m = re.match(r"\s*✓ (.+?)\s+([0-9.]+)s(\s|$)", line)
        if m:
            steps[m.group(1)] = float(m.group(2))
    return steps


def pipeline_job(a):
    """`marquee run` on the demo (`--run-customers`, default 5000), fresh workdir each time: wall
    seconds, peak RSS and each step's seconds (the median over the runs)."""
    exe = os.path.join(a.target, "release", "marquee")
    times, rss, steps = [], 0, []
    for _ in range(1 if a.quick or a.run_customers > 100_000 else 3):
        wd = tempfile.mkdtemp(prefix="marquee-bench-run-")
        rc, out, err, wall, peak = run_measured(
            [exe, "run", "--workdir", wd, "--no-report", "--customers", str(a.run_customers)], 7200)
        shutil.rmtree(wd, ignore_errors=True)
        if rc != 0:
            return {"task": "pipeline", "tool": "marquee run", "error": err[-2000:]}
        times.append(wall)
        rss = max(rss, peak)
        steps.append(run_steps(out + "\n" + err))
    per_step = {k: statistics.median(s[k] for s in steps if k in s) for k in steps[0]}
    return {"task": "pipeline", "tool": f"marquee run ({a.run_customers} customers, --no-report)", "metric": "wall",
            "value": statistics.median(times), "fit_s": times, "median_s": statistics.median(times),
            "rss_mib": rss, "extra": {"step_seconds": per_step}}


def fmt_s(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def table(results):
    lines = ["| task | tool | metric | value | fit (median) | peak RSS | time vs marquee | paired | RSS vs marquee |",
             "|---|---|---|---|---|---|---|---|---|"]
    tasks = []
    for r in results:
        if r.get("task") not in tasks:
            tasks.append(r.get("task"))
    for t in tasks:
        rows = [r for r in results if r.get("task") == t and "median_s" in r]
        base = next((r for r in rows if r["tool"].startswith("marquee")), None)
        for r in rows:
            tr = f"{r['median_s'] / base['median_s']:.1f}x" if base and base["median_s"] > 0 else "-"
            mr = f"{r['rss_mib'] / base['rss_mib']:.1f}x" if base and base.get("rss_mib") else "-"
            pr = f"{r['paired_ratio']:.1f}x" if "paired_ratio" in r else "-"
            lines.append(f"| {t} | {r['tool']} | {r['metric']} | {r['value']:.4f} | {fmt_s(r['median_s'])} "
                         f"| {r.get('rss_mib', 0):.0f} MiB | {tr} | {pr} | {mr} |")
        for r in results:
            if r.get("task") == t and "error" in r:
                lines.append(f"| {t} | {r['tool']} | failed: {r['error'].strip().splitlines()[-1][:80] if r['error'].strip() else '?'} ||||||")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per task (repetitions split over them)")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--run-customers", type=int, default=5000,
                    help="demo size of the `pipeline` task (marquee run; one run above 100,000)")
    ap.add_argument("--only", default="", help="comma-separated task prefixes")
    ap.add_argument("--data", default=os.environ.get("MARQUEE_DATA_DIR"),
                    help="the public datasets' folder (default: $MARQUEE_DATA_DIR)")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench", "results", "data"))
    ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    a = ap.parse_args()
    if not a.data:
        ap.error("give the datasets' folder with --data DIR or MARQUEE_DATA_DIR")
    only = [s for s in a.only.split(",") if s]
    load_before = os.getloadavg()
    results = []
    for group in jobs(a):
        group = [job for job in group if not only or any(job[0].startswith(o) for o in only)]
        if group:
            results += run_group(group, 1 if a.quick else a.rounds)
    if not only or any("pipeline".startswith(o) for o in only):
        print("... marquee run", file=sys.stderr, flush=True)
        results.append(pipeline_job(a))
    flops = None
    if not only:
        rc, out, _, _, _ = run_measured([os.path.join(a.target, "release", "marquee-bench"), "flops"], 300)
        flops = json.loads(out) if rc == 0 else None
        if not a.quick:
            rc, out, _, _, _ = run_measured([os.path.join(a.target, "release", "marquee-bench"), "task", "scaling",
                                             "--reps", "3", "--data", a.data, "--work", a.work], 1800)
            if rc == 0:
                results.append(json.loads(out))
    doc = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if a.quick else "full",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "flops": flops,
        "results": results,
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = table(results)
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write(f"<!-- {doc['when']} mode={doc['mode']} load before/after {load_before} / {doc['machine']['loadavg_after']} -->\n{md}\n")
    print(md)
    for r in results:
        if r.get("task") == "scaling":
            print("\nscaling (marquee, median s):")
            for row in r["rows"]:
                print(f"  rows {row['rows']:>9}: k-means k=8 x10 {row['kmeans_k8_x10_s']:.3f}  logistic 20 cols "
                      f"{row['logreg_20col_s']:.3f}  ALS rank 10 {row['als_r10_s']:.3f}")
        if r.get("task") == "pipeline" and "extra" in r:
            print(f"\n{r['tool']}, seconds per step (median):")
            for step, secs in r["extra"].get("step_seconds", {}).items():
                print(f"  {step:<24} {secs:8.2f}")
    if flops:
        print(f"\nFMA peak per core: {json.dumps({k: round(v, 1) for k, v in flops.items() if 'gflops' in k})}")
    print(f"\nload average before {load_before}, after {doc['machine']['loadavg_after']}; wrote {a.out}/latest.json")


if __name__ == "__main__":
    main()
