"""Training and prediction speed of DeepFMClassifier on each available device.

Generates ``make_ad_clicks`` data (no licence restrictions, so the script runs
anywhere, a GPU machine included), fits ``DeepFMClassifier`` for a fixed
number of epochs without early stopping on every device asked for, and
reports fit seconds, training rows per second, test AUC, bulk prediction rows
per second and the latency of ``predict_proba`` on a one-row DataFrame.

Run by hand::

    python benchmarks/bench_device.py --n-samples 500000 --epochs 3 --devices cpu cuda
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings

import numpy as np
import sklearn
import torch
from _results import write_section
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

import skdeepfm
from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import make_ad_clicks


def run(device, X_train, y_train, X_test, y_test, epochs, batch_size):
    model = DeepFMClassifier(
        max_iter=epochs,
        early_stopping=False,
        n_iter_no_change=epochs + 1,
        batch_size=batch_size,
        random_state=0,
        device=device,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # A fixed number of epochs, on purpose.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    proba = model.predict_proba(X_test)[:, 1]
    predict_s = time.perf_counter() - started
    one_row = X_test.iloc[[0]]
    model.predict_proba(one_row)
    latencies = []
    for _ in range(50):
        started = time.perf_counter()
        model.predict_proba(one_row)
        latencies.append(time.perf_counter() - started)
    return {
        "device": device,
        "batch": batch_size,
        "fit_s": fit_s,
        "train_rows_per_s": len(X_train) * model.n_iter_ / fit_s,
        "test_auc": roc_auc_score(y_test, proba),
        "predict_rows_per_s": len(X_test) / predict_s,
        "one_row_ms": 1000 * float(np.median(latencies)),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024])
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    parser.add_argument("--write", metavar="SECTION", help="write the table to this section of RESULTS.md")
    args = parser.parse_args()
    machine = (
        f"skdeepfm {skdeepfm.__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    print(machine, flush=True)
    lines = []
    X_train, y_train = make_ad_clicks(args.n_samples, random_state=0)
    X_test, y_test = make_ad_clicks(max(args.n_samples // 5, 1000), random_state=1)
    for line in [
        "| device | batch | fit s | train rows/s | test AUC | predict rows/s | one-row predict_proba ms |",
        "|---|---|---|---|---|---|---|",
    ]:
        lines.append(line)
        print(line)
    for device in args.devices:
        for batch_size in args.batch_sizes:
            r = run(device, X_train, y_train, X_test, y_test, args.epochs, batch_size)
            lines.append(
                f"| {r['device']} | {r['batch']} | {r['fit_s']:.1f} | {r['train_rows_per_s']:,.0f} | "
                f"{r['test_auc']:.4f} | {r['predict_rows_per_s']:,.0f} | {r['one_row_ms']:.2f} |"
            )
            print(lines[-1], flush=True)
    if args.write:
        command = " ".join(["python benchmarks/bench_device.py", *sys.argv[1:]])
        heading = [
            f"## Device speed: {args.write}",
            "",
            f"`{command}` — make_ad_clicks, {args.n_samples:,} training rows, {args.epochs} epochs,",
            "default network (embedding 16, DNN 200-200; 400-400-400 in results written before",
            "2026-12-02), fit time includes encoding.",
            f"Machine: {machine}.",
            "",
        ]
        write_section(f"device-{args.write}", "\n".join(heading + lines))


if __name__ == "__main__":
    main()
