"""DeepFMRegressor(loss="huber") on a target with 3 % gross outliers.

Ratings-like data: a target driven by user and item biases and a latent
user x item match (standard deviation about 1.9), plus small noise; 3 % of
the training targets are replaced by +/-500. Each model is scored by its mean
absolute error against the noise-free truth on held-out rows, so that a
model that chases the outliers scores badly. Run by hand::

    python benchmarks/bench_huber.py [--n-samples 5000] [--write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from _results import write_section
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from skdeepfm import DeepFMRegressor


def make_data(n_samples, n_test=2000, seed=0, outlier_fraction=0.03):
    """(X, y, truth) of the training rows, then (X, truth) of ``n_test`` held-out rows without outliers."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 80, 50
    user_vec, item_vec = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    user_bias, item_bias = rng.normal(0, 1.0, n_users), rng.normal(0, 1.0, n_items)
    n_all = n_samples + n_test
    users, items = rng.integers(0, n_users, n_all), rng.integers(0, n_items, n_all)
    truth = user_bias[users] + item_bias[items] + 0.8 * (user_vec[users] * item_vec[items]).sum(1)
    y = truth[:n_samples] + rng.normal(0, 0.2, n_samples)
    outliers = rng.random(n_samples) < outlier_fraction
    y[outliers] = rng.choice([-500.0, 500.0], outliers.sum())
    X = pd.DataFrame({"user": [f"u{u}" for u in users], "item": [f"i{i}" for i in items]})
    return X.iloc[:n_samples], y, X.iloc[n_samples:], truth[n_samples:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    X, y, X_test, truth_test = make_data(args.n_samples)
    print(f"target std {y[np.abs(y) < 100].std():.2f}, with outliers {y.std():.1f}")
    network = dict(embedding_dim=8, hidden_layer_sizes=(64,), random_state=0, device="cpu")
    models = {
        'DeepFMRegressor(loss="squared_error")': DeepFMRegressor(**network),
        'DeepFMRegressor(loss="huber")': DeepFMRegressor(loss="huber", **network),
        'GradientBoostingRegressor(loss="huber") on ordinal codes': make_pipeline(
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
            GradientBoostingRegressor(loss="huber", random_state=0),
        ),
    }
    median_mae = mean_absolute_error(truth_test, np.full(len(truth_test), np.median(y)))
    rows = []
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - started
        mae = mean_absolute_error(truth_test, model.predict(X_test))
        scale = getattr(model, "target_scale_", float("nan"))
        n_iter = getattr(model, "n_iter_", "")
        rows.append((name, mae, scale, n_iter, seconds))
        print(f"{name}: MAE {mae:.3f}, scale {scale:.2f}, {n_iter} epochs, {seconds:.1f} s", flush=True)

    lines = [
        "## Huber regression with 3 % outliers",
        "",
        f"`benchmarks/bench_huber.py`: {args.n_samples:,} training rows of a user x item target "
        f"(standard deviation {y[np.abs(y) < 100].std():.2f} without the outliers, {y.std():.1f} with "
        "them), 3 % of the targets replaced by +/-500; mean absolute error against the noise-free "
        "truth on 2,000 held-out rows. 1 torch thread.",
        "",
        "| model | MAE vs truth | target scale | epochs | fit (s) |",
        "|---|---|---|---|---|",
        f"| a constant: the median of y | {median_mae:.3f} | | | |",
        *(
            f"| {name} | {mae:.3f} | {scale:.2f} | {n_iter} | {seconds:.1f} |"
            for name, mae, scale, n_iter, seconds in rows
        ),
    ]
    print("\n".join(lines))
    if args.write:
        write_section("huber", "\n".join(lines))


if __name__ == "__main__":
    main()
