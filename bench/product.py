#!/usr/bin/env python3
"""marquee's product path for bench/run: `marquee eval` on a named task, reporting one entry's fit
time per fold (prepare + train + artifact: the code `marquee run` and the Lambdas run per use case,
not the bare kernel), as one JSON line like marquee-bench and peers.py.

    python bench/product.py <task> [--reps N] [--data DIR] [--target DIR]

Each repetition is one `marquee eval --task ...` process over the protocol folds; its fit time is
that entry's mean over the folds. Every entry of the run is kept in `extra`.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import median, record  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# task -> (eval task, extra eval flags, eval.json metric, tool label)
TASKS = {
    "product_telco": ("telco", [], "ROC AUC (logistic, class_weight none)",
                      "marquee eval telco: logistic + out-of-fold Platt"),
    "product_telco_gbm": ("telco", [], "ROC AUC (gbm, class_weight none)",
                          "marquee eval telco: gbm + out-of-fold Platt"),
    "product_movielens": ("movielens", ["--no-tune"], "RMSE (ALS)",
                          "marquee eval movielens --no-tune: ALS (rank 10)"),
}


def eval_once(exe, task, flags, data):
    out = tempfile.mkdtemp(prefix="marquee-bench-eval-")
    try:
        proc = subprocess.run([exe, "eval", "--task", task, "--data-dir", data, "--out", out, "-q", *flags],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"product.py: marquee eval --task {task} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        with open(os.path.join(out, "eval.json")) as f:
            return json.load(f)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--data", default=os.environ.get("MARQUEE_DATA_DIR") or None)
    p.add_argument("--work", default=None, help="unused (accepted like marquee-bench)")
    p.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")))
    a = p.parse_args()
    if not a.data:
        p.error("no data folder: pass --data DIR or set MARQUEE_DATA_DIR")
    task, flags, metric, tool = TASKS[a.task]
    exe = os.path.join(a.target, "release", "marquee")
    times, values, runs = [], [], []
    for _ in range(max(1, a.reps)):
        entries = eval_once(exe, task, flags, a.data)
        entry = next((e for e in entries if e["metric"] == metric), None)
        if entry is None:
            sys.exit(f"product.py: marquee eval --task {task} has no entry `{metric}`")
        times.append(entry["fit_seconds"])
        values.append(entry["mean"])
        runs.append({e["metric"]: {"mean": e["mean"], "fit_s_per_fold": e["fit_seconds"]}
                     for e in entries if e["fit_seconds"] > 0})
    print(json.dumps(record(a.task, tool, f"{metric.split(' (')[0]} (mean of folds)", median(values), times,
                            unit="fit seconds per fold (mean of the protocol folds), one value per eval run",
                            entries=runs[-1])), flush=True)


if __name__ == "__main__":
    main()
