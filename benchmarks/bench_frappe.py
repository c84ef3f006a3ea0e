"""Frappe: skdeepfm with default parameters against one-hot logistic regression and LightGBM.

Trains on ``frappe.validation.libfm`` (57,722 rows) and tests on
``frappe.test.libfm`` (28,860 rows), the split named in the foundation issue.
The data is read from ``../shared/data/frappe`` (or ``--data-dir``); its
licence forbids copying it into this repository.

Run by hand, not by pytest::

    python benchmarks/bench_frappe.py [--data-dir DIR] [--seeds 0 1 2] [--write]
        [--set alpha=1e-6 --set n_iter_no_change=10]

``--write`` replaces the frappe section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from _results import write_section
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import skdeepfm
from skdeepfm import DeepFMClassifier

FIELDS = ["user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city"]
HERE = Path(__file__).resolve().parent
LIGHTGBM_CONFIGS = {
    "LightGBM, categorical, defaults (100 trees)": {},
    "LightGBM, categorical, 1000 trees, lr 0.05, 63 leaves": {
        "n_estimators": 1000,
        "learning_rate": 0.05,
        "num_leaves": 63,
    },
}
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "frappe"


def load_libfm(path):
    """Rows of a libFM file as a DataFrame of one int column per field, and 0/1 labels."""
    labels, rows = [], []
    with gzip.open(path, "rt") as f:
        for line in f:
            parts = line.split()
            labels.append(1 if float(parts[0]) > 0 else 0)
            rows.append([int(p.split(":")[0]) for p in parts[1:]])
    return pd.DataFrame(rows, columns=FIELDS), np.asarray(labels)


def evaluate(name, make_model, X_train, y_train, X_test, y_test, fit_kwargs=None):
    model = make_model()
    started = time.perf_counter()
    model.fit(X_train, y_train, **(fit_kwargs or {}))
    fit_seconds = time.perf_counter() - started
    proba = model.predict_proba(X_test)[:, 1]
    extra = (
        f"{model.n_iter_} epochs" if hasattr(model, "n_iter_") and isinstance(model, DeepFMClassifier) else ""
    )
    return {
        "model": name,
        "auc": roc_auc_score(y_test, proba),
        "logloss": log_loss(y_test, proba),
        "fit_s": fit_seconds,
        "note": extra,
    }


def _as_categories(X_train, y_train, X_test, y_test):
    """Pandas category columns with the training categories, for LightGBM."""
    train = X_train.astype("category")
    test = X_test.copy()
    for name in test:
        categories = train[name].cat.categories
        known = test[name].where(test[name].isin(categories))
        test[name] = pd.Categorical(known, categories=categories)
    return train, y_train, test, y_test


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], help="skdeepfm parameter override, name=value")
    parser.add_argument("--only-deepfm", action="store_true")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}

    X_train, y_train = load_libfm(args.data_dir / "frappe.validation.libfm.gz")
    X_test, y_test = load_libfm(args.data_dir / "frappe.test.libfm.gz")
    print(f"train {X_train.shape}, test {X_test.shape}, overrides {overrides}", flush=True)

    results = []
    if not args.only_deepfm:
        results.append(
            evaluate(
                "one-hot LogisticRegression",
                lambda: make_pipeline(
                    OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=1000)
                ),
                X_train,
                y_train,
                X_test,
                y_test,
            )
        )
        print(results[-1], flush=True)
        try:
            import lightgbm as lgb
        except ImportError:
            print("lightgbm not installed (pip install lightgbm): skipped", flush=True)
        else:
            for label, params in LIGHTGBM_CONFIGS.items():
                results.append(
                    evaluate(
                        label,
                        lambda params=params: lgb.LGBMClassifier(verbose=-1, random_state=0, **params),
                        *_as_categories(X_train, y_train, X_test, y_test),
                    )
                )
                print(results[-1], flush=True)
    for seed in args.seeds:
        results.append(
            evaluate(
                f"skdeepfm DeepFMClassifier (seed {seed})",
                lambda seed=seed: DeepFMClassifier(random_state=seed, **overrides),
                X_train,
                y_train,
                X_test,
                y_test,
            )
        )
        print(results[-1], flush=True)

    table = pd.DataFrame(results)
    print(table.to_string(index=False))
    if args.write:
        write_results(table, overrides)


def write_results(table, overrides):
    lines = [
        "## Frappe: default parameters against the usual baselines",
        "",
        "`python benchmarks/bench_frappe.py --write` — train on `frappe.validation.libfm` (57,722 rows),",
        "test on `frappe.test.libfm` (28,860 rows), 10 categorical fields. One run, one process.",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
        f"skdeepfm {skdeepfm.__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}.",
        f"skdeepfm overrides: {overrides or 'none (defaults)'}.",
        "",
        "| model | test AUC | test log-loss | fit seconds | note |",
        "|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(f"| {row.model} | {row.auc:.4f} | {row.logloss:.4f} | {row.fit_s:.1f} | {row.note} |")
    write_section("frappe", "\n".join(lines))


if __name__ == "__main__":
    main()
