"""Numeric and multi-valued fields: skdeepfm with them, skdeepfm without, LightGBM and a linear baseline.

For each data set, in one process, on a fixed train/test split:

* ``deepfm_fields``: ``DeepFMClassifier(random_state=seed)``, whose defaults
  (``numeric_features="auto"``, ``multivalue_features="auto"``) read float
  columns as numbers and list columns as multi-valued fields;
* ``deepfm_categorical``: ``DeepFMClassifier(random_state=seed,
  numeric_features=None, multivalue_features=None)``, every column a
  categorical field (a list cell first joined into one string, its sorted
  elements separated by ``|``);
* ``lightgbm``: ``LGBMClassifier(n_estimators=500, learning_rate=0.05,
  num_leaves=31)``, categorical columns as pandas categories of the training
  values, numeric columns as floats, one 0/1 column per element of a
  multi-valued column seen in training;
* ``linear``: ``skdeepfm._baseline.linear_baseline`` -- one-hot, multi-hot
  and standardized numeric columns into a logistic regression.

Data sets:

* ``ad_clicks``: ``make_ad_clicks(--ad-clicks-train, random_state=0)`` to
  train, ``make_ad_clicks(--ad-clicks-test, random_state=1)`` to test;
* ``criteo``: ``criteo/sample.train.gz`` (the first 10,000 rows of the Kaggle
  training set, chronological): train on the first 8,000 rows, test on the
  last 2,000; I1..I13 numeric, C1..C26 categorical;
* ``avazu``: ``avazu/train.gz`` (8,999 rows): train on the first 7,200 rows,
  test on the rest; every column (``id`` dropped) a categorical string.

The files are read from ``../shared/data`` (or ``--data-dir``); their
licences forbid copying them into this repository.

Run by hand, not by pytest::

    python benchmarks/bench_fields.py [--data-dir DIR] [--seeds 0 1 2]
        [--datasets ad_clicks criteo avazu]
        [--models deepfm_fields deepfm_categorical lightgbm linear]
        [--ad-clicks-train 50000] [--ad-clicks-test 20000] [--write]

``--write`` replaces the fields section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import _panel
import numpy as np
import pandas as pd
import sklearn
import torch
from _peer_inputs import for_lightgbm
from _results import write_section
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, roc_auc_score

import skdeepfm
from skdeepfm import DeepFMClassifier
from skdeepfm._baseline import column_kinds, linear_baseline
from skdeepfm.datasets import make_ad_clicks

DEFAULT_DATA = _panel.DEFAULT_DATA
DATASETS = ["ad_clicks", "criteo", "avazu"]
MODELS = ["deepfm_fields", "deepfm_categorical", "lightgbm", "linear"]
LIGHTGBM_PARAMS = {
    "n_estimators": 500,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbose": -1,
    "random_state": 0,
}


def load_ad_clicks(args):
    X_train, y_train = make_ad_clicks(args.ad_clicks_train, random_state=0)
    X_test, y_test = make_ad_clicks(args.ad_clicks_test, random_state=1)
    split = (
        f"`make_ad_clicks`: {len(X_train):,} rows (random_state=0) to train, "
        f"{len(X_test):,} (random_state=1) to test"
    )
    return X_train, np.asarray(y_train), X_test, np.asarray(y_test), split


def _from_panel(load):
    """A loader of the quality panel (``_panel``), as this script's loaders return tables."""

    def loader(args):
        table = load(args.data_dir)
        return table.X_train, table.y_train, table.X_test, table.y_test, table.split

    return loader


# The same files and splits as the quality panel's.
load_criteo = _from_panel(_panel.load_criteo)
load_avazu = _from_panel(_panel.load_avazu)


LOADERS = {"ad_clicks": load_ad_clicks, "criteo": load_criteo, "avazu": load_avazu}


def evaluate(name, make_model, X_train, y_train, X_test, y_test, *, quiet_convergence=False):
    model = make_model()
    started = time.perf_counter()
    with warnings.catch_warnings():
        if quiet_convergence:
            # DeepFM may stop at max_iter; that is part of the defaults being measured.
            warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    proba = model.predict_proba(X_test)[:, 1]
    return {
        "model": name,
        "auc": roc_auc_score(y_test, proba),
        "logloss": log_loss(y_test, proba, labels=[0, 1]),
        "fit_s": fit_seconds,
    }


def _joined(cell):
    """A multi-valued cell as one hashable category: its sorted elements joined by ``|``."""
    if isinstance(cell, (list, tuple, set, frozenset, np.ndarray)):
        return "|".join(sorted(map(str, cell)))
    return cell


def _multivalue_as_strings(X, multivalue):
    """A copy of ``X`` whose multi-valued columns hold one string per cell."""
    X = X.copy()
    for name in multivalue:
        X[name] = X[name].map(_joined).astype(object)
    return X


def run_dataset(name, args):
    X_train, y_train, X_test, y_test, split = LOADERS[name](args)
    kinds = column_kinds(X_train)
    counts = ", ".join(f"{len(kinds[kind])} {kind}" for kind in ("categorical", "numeric", "multivalue"))
    print(f"\n{name}: train {X_train.shape}, test {X_test.shape}; columns: {counts}", flush=True)
    print(f"  kinds: {kinds}", flush=True)
    results = []

    def record(result):
        results.append(result)
        print(
            f"  {result['model']}: AUC {result['auc']:.4f}, log-loss {result['logloss']:.4f}, "
            f"fit {result['fit_s']:.1f} s",
            flush=True,
        )

    for seed in args.seeds:
        if "deepfm_fields" in args.models:
            record(
                evaluate(
                    f"skdeepfm, numeric + multi-valued fields (seed {seed})",
                    lambda seed=seed: DeepFMClassifier(random_state=seed),
                    X_train,
                    y_train,
                    X_test,
                    y_test,
                    quiet_convergence=True,
                )
            )
        if "deepfm_categorical" in args.models:
            record(
                evaluate(
                    f"skdeepfm, every column categorical (seed {seed})",
                    lambda seed=seed: DeepFMClassifier(
                        random_state=seed, numeric_features=None, multivalue_features=None
                    ),
                    _multivalue_as_strings(X_train, kinds["multivalue"]),
                    y_train,
                    _multivalue_as_strings(X_test, kinds["multivalue"]),
                    y_test,
                    quiet_convergence=True,
                )
            )
    if "lightgbm" in args.models:
        try:
            import lightgbm as lgb
        except ImportError:
            print("  lightgbm not installed (pip install lightgbm): skipped", flush=True)
        else:
            train, test = for_lightgbm(X_train, X_test, kinds)
            record(
                evaluate(
                    "LightGBM, 500 trees, lr 0.05, 31 leaves",
                    lambda: lgb.LGBMClassifier(**LIGHTGBM_PARAMS),
                    train,
                    y_train,
                    test,
                    y_test,
                )
            )
    if "linear" in args.models:
        record(
            evaluate(
                "one-hot + multi-hot + scaled numeric LogisticRegression",
                lambda: linear_baseline(X_train, random_state=0),
                X_train,
                y_train,
                X_test,
                y_test,
            )
        )
    return {
        "name": name,
        "split": split,
        "counts": counts,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "results": results,
    }


def markdown_table(dataset):
    lines = [
        f"### {dataset['name']}",
        "",
        f"{dataset['split']}; columns: {dataset['counts']}.",
        "",
        "| model | test AUC | test log-loss | fit s |",
        "|---|---|---|---|",
    ]
    for row in dataset["results"]:
        lines.append(f"| {row['model']} | {row['auc']:.4f} | {row['logloss']:.4f} | {row['fit_s']:.1f} |")
    return "\n".join(lines)


def _versions():
    versions = [
        f"skdeepfm {skdeepfm.__version__}",
        f"torch {torch.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"pandas {pd.__version__}",
    ]
    try:
        import lightgbm as lgb
    except ImportError:
        return ", ".join(versions)
    return ", ".join([*versions, f"lightgbm {lgb.__version__}"])


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--ad-clicks-train", type=int, default=50_000)
    parser.add_argument("--ad-clicks-test", type=int, default=20_000)
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()

    datasets = [run_dataset(name, args) for name in args.datasets]
    tables = [markdown_table(dataset) for dataset in datasets]
    print()
    print("\n\n".join(tables))
    if args.write:
        command = shlex.join(["python", "benchmarks/bench_fields.py", *sys.argv[1:]])
        header = [
            "## Numeric and multi-valued fields",
            "",
            f"`{command}` — one process, fixed train/test splits. skdeepfm with its defaults",
            "(float columns numeric, list columns multi-valued) against skdeepfm with every column",
            "categorical (`numeric_features=None, multivalue_features=None`, list cells joined into one",
            "string), LightGBM (categories of the training values, one 0/1 column per list element seen in",
            "training) and `skdeepfm._baseline.linear_baseline` (one-hot, multi-hot, scaled numbers;",
            "LogisticRegression).",
            f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads; {_versions()}.",
        ]
        write_section("fields", "\n".join(header) + "\n\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
