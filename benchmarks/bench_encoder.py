"""FieldEncoder against scikit-learn's OrdinalEncoder on wide string data.

Generates ``--n-samples`` rows of 26 string columns whose vocabularies go from
10 to 10^5 categories (Zipf-like frequencies), then times ``fit_transform``
and ``transform`` of both encoders in the same process, on object columns and
on pandas' default ``str`` columns (stored by pyarrow). Run by hand::

    python benchmarks/bench_encoder.py --n-samples 1000000 [--write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _results import write_section
from sklearn.preprocessing import OrdinalEncoder

from skdeepfm import FieldEncoder


def make_strings(n_samples, n_fields=26, seed=0):
    rng = np.random.default_rng(seed)
    columns = {}
    for j, vocabulary in enumerate(np.geomspace(10, 100_000, n_fields).astype(int)):
        codes = np.minimum(rng.zipf(1.3, n_samples) - 1, vocabulary - 1)
        labels = np.array([f"f{j}_{i:06d}" for i in range(vocabulary)], dtype=object)
        columns[f"C{j + 1}"] = labels[codes]
    return pd.DataFrame(columns)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    X = make_strings(args.n_samples)
    lines = [
        "## Encoder speed",
        "",
        f"`python benchmarks/bench_encoder.py --n-samples {args.n_samples}` — {args.n_samples:,} rows x 26 "
        "string columns, vocabularies 10 to 100,000, one process, 2-core CPU.",
    ]
    for dtype in ("object", "str"):
        frame = X.astype(dtype)
        rows = []
        encoders = {
            "skdeepfm FieldEncoder": FieldEncoder(),
            "sklearn OrdinalEncoder": OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        }
        for name, encoder in encoders.items():
            _, fit_s = timed(lambda frame=frame, encoder=encoder: encoder.fit_transform(frame))
            _, transform_s = timed(lambda frame=frame, encoder=encoder: encoder.transform(frame))
            rows.append((name, fit_s, transform_s))
        lines += [
            "",
            f"Columns of dtype `{dtype}`:",
            "",
            "| encoder | fit_transform s | transform s |",
            "|---|---|---|",
        ]
        lines += [f"| {name} | {fit:.2f} | {transform:.2f} |" for name, fit, transform in rows]
        lines.append(
            f"\nFieldEncoder is {rows[1][1] / rows[0][1]:.1f}x faster in fit_transform, "
            f"{rows[1][2] / rows[0][2]:.1f}x in transform."
        )
    print("\n".join(lines))
    if args.write:
        write_section("encoder", "\n".join(lines))


if __name__ == "__main__":
    main()
