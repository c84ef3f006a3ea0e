"""Training rows/s of DaskDeepFMClassifier on 1 and 2 workers, and test AUC beside the local fit.

Two data sets:

1. generated (the issue's data): ``--rows`` training rows and a tenth as many
   test rows of 26 string fields drawn Zipf-like from ``--vocab`` values each,
   labels from a planted factorization machine (``make_fields`` of
   ``bench_peers.py``);
2. frappe-full (``--data-dir``, read in place; ``--skip-frappe`` skips it):
   ``train_raw`` to train, ``test_raw`` to test (loader of ``_panel.py``).

A ``LocalCluster`` of N worker processes with one thread each; the training
rows are cut into N partitions, one on each worker. Every fit runs the same
number of epochs (no early stopping) with the same global batch. Rows/s is
training rows times epochs over the wall time of ``fit``: for the Dask
estimator everything from the partitions on the workers to the fitted model
on the client (summaries and encoder fit, encoding on the workers, rank
set-up, training, publishing). The local fit (``DeepFMClassifier``) runs with
one torch thread, as one worker does. Every process is warm: a small fit ran
in it first (torch's lazy imports take 2-3 s in a fresh process, once).

    python benchmarks/bench_distributed.py --rows 1000000 --epochs 1 --write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _panel import DEFAULT_DATA, load_frappe_full
from _results import write_section
from bench_peers import make_fields
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from skdeepfm import DeepFMClassifier


def _params(args):
    return dict(
        batch_size=args.batch_size,
        max_iter=args.epochs,
        early_stopping=False,
        n_iter_no_change=args.epochs + 1,
        random_state=0,
    )


def _placed(client, frame, workers):
    """``frame`` cut into one partition per worker, each held by its worker."""
    import dask
    import dask.dataframe as dd

    pieces = np.array_split(np.arange(len(frame)), len(workers))
    futures = [
        client.scatter(frame.iloc[p], workers=[w], hash=False) for p, w in zip(pieces, workers, strict=True)
    ]
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)


def _local_fit(X, y, args):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        DeepFMClassifier(max_iter=1, early_stopping=False).fit(X.iloc[:2000], y[:2000])  # warm
        started = time.perf_counter()
        model = DeepFMClassifier(**_params(args)).fit(X, y)
        return model, time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)


def _dask_fit(client, X, y, args):
    from skdeepfm.dask import DaskDeepFMClassifier

    workers = sorted(client.scheduler_info()["workers"])
    y = pd.Series(y, name="y")
    warm_X, warm_y = _placed(client, X.iloc[:2000], workers), _placed(client, y.iloc[:2000], workers)
    DaskDeepFMClassifier(max_iter=1, early_stopping=False, client=client).fit(warm_X, warm_y)
    Xd, yd = _placed(client, X, workers), _placed(client, y, workers)
    started = time.perf_counter()
    model = DaskDeepFMClassifier(**_params(args), client=client).fit(Xd, yd)
    seconds = time.perf_counter() - started
    del Xd, yd
    return model.to_local(), seconds, model.n_ranks_


def _run(name, X_train, y_train, X_test, y_test, args, clusters):
    local, seconds = _local_fit(X_train, y_train, args)
    rows = [("local, 1 thread", 1, seconds, local)]
    print(f"{name}: local {rows[0][2]:.1f} s", flush=True)
    for n_workers, client in clusters:
        model, seconds, n_ranks = _dask_fit(client, X_train, y_train, args)
        rows.append((f"dask, {n_workers} worker{'s' if n_workers > 1 else ''}", n_ranks, seconds, model))
        print(f"{name}: dask {n_workers} workers {seconds:.1f} s", flush=True)
    n_train = len(X_train)
    base = None
    lines = [
        "| fit | ranks | fit s | rows/s | vs 1 worker | test AUC | AUC - local |",
        "|---|---|---|---|---|---|---|",
    ]
    local_auc = None
    for label, n_ranks, seconds, model in rows:
        rate = n_train * args.epochs / seconds
        auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
        if local_auc is None:
            local_auc = auc
        if label.startswith("dask") and base is None:
            base = rate
        ratio = f"{rate / base:.2f}x" if label.startswith("dask") else ""
        delta = f"{auc - local_auc:+.4f}" if label.startswith("dask") else ""
        lines.append(f"| {label} | {n_ranks} | {seconds:.1f} | {rate:,.0f} | {ratio} | {auc:.4f} | {delta} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows of the generated data")
    parser.add_argument("--vocab", type=int, default=10_000, help="values per field of the generated data")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--frappe-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--data-dir", default=DEFAULT_DATA, help="folder holding frappe-full/")
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument("--skip-frappe", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    from distributed import Client, LocalCluster

    sets = []
    if not args.skip_generated:
        n_test = max(args.rows // 10, 1000)
        X, y = make_fields(args.rows + n_test, args.vocab)
        sets.append(
            (
                "generated",
                f"{args.rows:,} training rows and {n_test:,} test rows x 26 string fields, "
                f"V={args.vocab:,} values per field (`make_fields` of `bench_peers.py`), "
                f"{args.epochs} epoch(s)",
                X.iloc[: args.rows],
                y[: args.rows],
                X.iloc[args.rows :].reset_index(drop=True),
                y[args.rows :],
                args.epochs,
            )
        )
    if not args.skip_frappe:
        table = load_frappe_full(args.data_dir)
        sets.append(
            (
                "frappe-full",
                f"{table.split}, {args.frappe_epochs} epochs",
                table.X_train,
                table.y_train,
                table.X_test,
                table.y_test,
                args.frappe_epochs,
            )
        )
    clusters = []
    try:
        for n_workers in args.workers:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None)
            clusters.append((n_workers, Client(cluster), cluster))
        for section, title, X_train, y_train, X_test, y_test, epochs in sets:
            args.epochs = epochs
            lines = [
                f"## Distributed training (`bench_distributed.py`): {section}",
                "",
                f"`python benchmarks/bench_distributed.py {' '.join(sys.argv[1:])}`. {title}.",
                "",
                f"Machine: {os.cpu_count()} cores, shared with other jobs while this ran. A `LocalCluster` "
                "of 1 or 2 worker processes with one thread each, the training rows cut into one partition "
                f"per worker; global batch {args.batch_size}, no early stopping, default parameters "
                "otherwise. `fit s`: wall time of `fit` on warm processes (a small fit ran in each "
                "first), from the partitions on the workers to the fitted model on the client. The local "
                "fit runs with one torch thread.",
                "",
            ]
            clients = [(n_workers, client) for n_workers, client, _ in clusters]
            lines += _run(section, X_train, y_train, X_test, y_test, args, clients)
            text = "\n".join(lines)
            print(text, flush=True)
            if args.write:
                write_section(f"distributed_{section.replace('-', '_')}", text)
    finally:
        for _, client, cluster in clusters:
            client.close()
            cluster.close()


if __name__ == "__main__":
    main()
