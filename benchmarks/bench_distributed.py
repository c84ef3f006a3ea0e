"""Training rows/s of DaskDeepFMClassifier on 1 and 2 workers, and AUC beside the local fit.

Generated ad clicks (``make_ad_clicks``), split 80/20. A ``LocalCluster`` of
N worker processes with one thread each; the training rows are cut into N
partitions, one on each worker. Every fit runs the same fixed number of
epochs (no early stopping) with the same global batch; rows/s is training
rows times epochs over the wall time of ``fit`` on warm workers (client-side
encoder fit and rank setup included). The local fit (``DeepFMClassifier``) runs with one
torch thread, as one worker does.

    python benchmarks/bench_distributed.py --rows 200000 --epochs 3 --write
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _results import write_section
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import make_ad_clicks


def _params(args):
    return dict(
        batch_size=args.batch_size,
        max_iter=args.epochs,
        early_stopping=False,
        n_iter_no_change=args.epochs + 1,
        random_state=0,
    )


def _dask_fit(X, y, n_workers, args):
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from skdeepfm.dask import DaskDeepFMClassifier

    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        workers = sorted(client.scheduler_info()["workers"])
        # A long-lived cluster has torch imported already: not part of a fit.
        client.run(importlib.import_module, "skdeepfm.dask")
        pieces = np.array_split(np.arange(len(X)), n_workers)
        with dask.config.set({"dataframe.convert-string": False}):
            Xd = dd.from_delayed(
                [client.scatter(X.iloc[p], workers=[w]) for p, w in zip(pieces, workers, strict=True)],
                meta=X.iloc[:0],
                verify_meta=False,
            )
            yd = dd.from_delayed(
                [client.scatter(y.iloc[p], workers=[w]) for p, w in zip(pieces, workers, strict=True)],
                meta=y.iloc[:0],
                verify_meta=False,
            )
        started = time.perf_counter()
        model = DaskDeepFMClassifier(**_params(args)).fit(Xd, yd)
        return model.to_local(), time.perf_counter() - started, model.n_ranks_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)

    X, y = make_ad_clicks(n_samples=args.rows, random_state=0)
    X, y = X.reset_index(drop=True), pd.Series(np.asarray(y), name="click")
    n_train = int(0.8 * len(X))
    X_train, y_train, X_test, y_test = X.iloc[:n_train], y.iloc[:n_train], X.iloc[n_train:], y.iloc[n_train:]

    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    local = DeepFMClassifier(**_params(args)).fit(X_train, y_train)
    seconds = time.perf_counter() - started
    torch.set_num_threads(threads)
    rows.append(("local, 1 thread", 1, seconds, local))
    for n_workers in args.workers:
        model, seconds, n_ranks = _dask_fit(X_train, y_train, n_workers, args)
        rows.append((f"dask, {n_workers} worker(s)", n_ranks, seconds, model))

    base = None
    lines = [
        "## Distributed training (`bench_distributed.py`)",
        "",
        f"make_ad_clicks, {n_train:,} training rows, {len(X_test):,} test rows, {args.epochs} epochs, "
        f"global batch {args.batch_size}, default parameters otherwise; one thread per worker. "
        "Wall time of `fit` on warm workers (torch imported), client-side encoder fit and rank setup "
        "included. The machine (2 cores) was shared with other jobs while this ran: the speed-up is a "
        "lower bound.",
        "",
        "| fit | ranks | seconds | rows/s | vs 1 worker | test AUC |",
        "|---|---|---|---|---|---|",
    ]
    for name, n_ranks, seconds, model in rows:
        rate = n_train * args.epochs / seconds
        if name.startswith("dask") and base is None:
            base = rate
        ratio = f"{rate / base:.2f}x" if name.startswith("dask") else ""
        auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
        lines.append(f"| {name} | {n_ranks} | {seconds:.1f} | {rate:,.0f} | {ratio} | {auc:.4f} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("distributed", text)


if __name__ == "__main__":
    main()
