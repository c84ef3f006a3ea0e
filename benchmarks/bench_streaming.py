"""partial_fit over a CSV file read in chunks, against one fit on the whole file in memory.

Writes generated ad clicks (``make_ad_clicks``) to a CSV file, then, each in a
fresh process so that peak memory is its own:

- ``single``: ``pd.read_csv`` of the whole file, then ``fit`` for E epochs;
- ``stream``: E passes of ``partial_fit`` over ``pd.read_csv(chunksize=...)``;
- ``stream-hashed``: the same with ``hash_buckets``.

Reports test ROC AUC, training rows/s and peak resident memory above the
process's memory after imports.

    python benchmarks/bench_streaming.py --rows 300000 --epochs 3 --write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DTYPES = {"hour": float, "advertiser_id": str, "age": str, "gender": str}
MODES = ("single", "stream", "stream-hashed")


def _rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _read(chunk):
    """Interests are written as 'a|b|c'; back to lists."""
    chunk["interests"] = chunk["interests"].fillna("").str.split("|").map(lambda v: [x for x in v if x])
    return chunk.drop(columns="clicked"), chunk["clicked"].to_numpy()


def run_mode(mode, csv, test_csv, epochs, chunksize):
    import warnings

    from sklearn.metrics import roc_auc_score

    from skdeepfm import DeepFMClassifier

    warnings.filterwarnings("ignore")
    params = dict(random_state=0, early_stopping=False, batch_size=1024, device="cpu")
    X_test, y_test = _read(pd.read_csv(test_csv, dtype=DTYPES))
    baseline = _rss_bytes()
    started = time.perf_counter()
    n_rows = 0
    if mode == "single":
        X, y = _read(pd.read_csv(csv, dtype=DTYPES))
        clf = DeepFMClassifier(**params, max_iter=epochs).fit(X, y)
        n_rows = len(X) * epochs
    else:
        extra = {"hash_buckets": 2**14} if mode == "stream-hashed" else {}
        clf = DeepFMClassifier(**params, **extra)
        for _ in range(epochs):
            for chunk in pd.read_csv(csv, chunksize=chunksize, dtype=DTYPES):
                X, y = _read(chunk)
                clf.partial_fit(X, y, classes=[0, 1])
                n_rows += len(X)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
    return {
        "mode": mode,
        "auc": auc,
        "rows_per_s": n_rows / seconds,
        "seconds": seconds,
        "peak_mb": (peak - baseline) / 2**20,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--chunksize", type=int, default=50_000)
    parser.add_argument("--write", action="store_true", help="write the 'streaming' section of RESULTS.md")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--test-csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.mode:
        print(json.dumps(run_mode(args.mode, args.csv, args.test_csv, args.epochs, args.chunksize)))
        return

    from skdeepfm.datasets import make_ad_clicks

    with tempfile.TemporaryDirectory() as directory:
        paths = {}
        for name, n_rows, seed in (("train", args.rows, 0), ("test", 50_000, 1)):
            X, y = make_ad_clicks(n_rows, random_state=seed)
            table = X.assign(interests=X["interests"].map("|".join), clicked=y)
            paths[name] = Path(directory) / f"{name}.csv"
            table.to_csv(paths[name], index=False)
        file_mb = paths["train"].stat().st_size / 2**20
        frame_mb = pd.read_csv(paths["train"], dtype=DTYPES).memory_usage(deep=True).sum() / 2**20
        results = []
        for mode in MODES:
            command = [sys.executable, __file__, "--mode", mode, "--csv", str(paths["train"])]
            command += ["--test-csv", str(paths["test"]), "--epochs", str(args.epochs)]
            command += ["--chunksize", str(args.chunksize)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
            print(results[-1], flush=True)

    lines = [
        f"`python benchmarks/bench_streaming.py --rows {args.rows} --epochs {args.epochs} "
        f"--chunksize {args.chunksize}`: generated ad clicks (7 fields, one multi-valued, one numeric), "
        f"CSV of {file_mb:.0f} MB ({frame_mb:.0f} MB as a DataFrame), test on 50,000 other rows; "
        f"{os.cpu_count()} cores; each mode in its own process; DeepFMClassifier defaults, "
        "early_stopping=False, batch 1024, same number of passes.",
        "",
        "| mode | test AUC | training rows/s | seconds | peak memory above imports (MB) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cells = [r["mode"], f"{r['auc']:.4f}", f"{r['rows_per_s']:,.0f}", f"{r['seconds']:.1f}"]
        lines.append("| " + " | ".join([*cells, f"{r['peak_mb']:.0f}"]) + " |")
    single = results[0]
    for r in results[1:]:
        lines.append("")
        lines.append(
            f"{r['mode']}: AUC {r['auc'] - single['auc']:+.4f} against one fit, "
            f"{r['rows_per_s'] / single['rows_per_s']:.2f}x its rows/s, "
            f"{r['peak_mb'] / max(single['peak_mb'], 1e-9):.2f}x its peak memory."
        )
    text = "\n".join(lines)
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from _results import write_section

        write_section("streaming", "## partial_fit over a CSV file\n\n" + text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
