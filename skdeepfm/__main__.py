"""``python -m skdeepfm``: fit DeepFMClassifier and compare it with a linear baseline.

Without ``--data``, generates the seed's ad-click scenario
(:func:`skdeepfm.datasets.make_ad_clicks`) in memory. With ``--data FILE``
(CSV or Parquet) and ``--target COLUMN``, uses that table instead. Either way
it holds out a test fraction, fits DeepFMClassifier with a progress bar, and
prints test ROC AUC and log-loss beside a logistic regression on one-hot,
multi-hot and scaled numeric columns.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from . import DeepFMClassifier, __version__
from ._baseline import linear_baseline
from .datasets import make_ad_clicks


def build_parser():
    """The command-line parser; ``--help`` documents every option."""
    parser = argparse.ArgumentParser(
        prog="python -m skdeepfm",
        description="Fit DeepFMClassifier and compare it with a one-hot logistic regression.",
        epilog="Example: python -m skdeepfm --data clicks.csv --target clicked --save model.pkl",
    )
    parser.add_argument("--data", type=Path, help="a .csv or .parquet table (default: generated ad clicks)")
    parser.add_argument("--target", help="the label column of --data (required with --data)")
    parser.add_argument(
        "--n-samples", type=int, default=100_000, help="rows to generate without --data (default: 100000)"
    )
    parser.add_argument(
        "--test-size", type=float, default=0.2, help="fraction of rows held out for testing (default: 0.2)"
    )
    parser.add_argument("--max-iter", type=int, default=100, help="maximum number of epochs (default: 100)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument(
        "--random-state", type=int, default=0, help="seed of the split and the model (default: 0)"
    )
    parser.add_argument("--save", type=Path, help="pickle the fitted DeepFMClassifier to this path")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument("--version", action="version", version=f"skdeepfm {__version__}")
    return parser


def load_table(path, target):
    """Features and labels from a CSV or Parquet file."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix in (".csv", ".gz", ".txt", ".tsv"):
        frame = pd.read_csv(path, sep=None, engine="python") if path.suffix == ".tsv" else pd.read_csv(path)
    else:
        raise ValueError(f"--data must be a .csv or .parquet file; got {path.name!r}.")
    if target not in frame.columns:
        raise ValueError(
            f"--target {target!r} is not a column of {path.name}; its columns are {list(frame.columns)}."
        )
    return frame.drop(columns=[target]), frame[target].to_numpy()


def _scores(y_true, proba, positive):
    y01 = (y_true == positive).astype(int)
    return roc_auc_score(y01, proba), log_loss(y01, proba, labels=[0, 1])


def main(argv=None):
    """Run the main job; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data is not None and args.target is None:
        parser.error("--target is required with --data")
    if args.data is None:
        X, y = make_ad_clicks(args.n_samples, random_state=args.random_state)
        source = f"generated ad clicks ({args.n_samples} rows, make_ad_clicks)"
    else:
        X, y = load_table(args.data, args.target)
        source = str(args.data)
    if len(np.unique(y)) != 2:
        parser.error(f"the target must have two classes for this report; it has {len(np.unique(y))}")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.random_state, stratify=y
    )
    print(f"Data: {source}; {len(X_train)} training and {len(X_test)} test rows, {X.shape[1]} fields.")

    model = DeepFMClassifier(
        max_iter=args.max_iter,
        device=args.device,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )
    started = time.perf_counter()
    model.fit(X_train, y_train)
    deepfm_seconds = time.perf_counter() - started
    positive = model.classes_[1]

    baseline = linear_baseline(X_train, random_state=args.random_state)
    started = time.perf_counter()
    baseline.fit(X_train, y_train)
    baseline_seconds = time.perf_counter() - started

    rows = [
        ("DeepFMClassifier", _scores(y_test, model.predict_proba(X_test)[:, 1], positive), deepfm_seconds),
        (
            "LogisticRegression (one-hot)",
            _scores(y_test, baseline.predict_proba(X_test)[:, 1], positive),
            baseline_seconds,
        ),
    ]
    print(f"\n{'model':<28} {'test AUC':>9} {'log-loss':>9} {'fit s':>7}")
    for name, (auc, loss), seconds in rows:
        print(f"{name:<28} {auc:>9.4f} {loss:>9.4f} {seconds:>7.1f}")
    print(f"DeepFMClassifier ran {model.n_iter_} epochs on {model.network_.offsets.device}.")
    if args.save is not None:
        with open(args.save, "wb") as f:
            pickle.dump(model, f)
        print(f"Saved the fitted model to {args.save}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
