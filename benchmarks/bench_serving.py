"""Serving speed: one-row latency and bulk rows/s, from raw rows to probabilities.

For a fitted ``DeepFMClassifier`` (embedding 10, DNN 400-400-400, as in
``bench_peers.py``; one epoch: speed does not depend on the weights):

- ``predict_proba`` on a DataFrame (validation, encoding and the network);
- onnxruntime on :func:`skdeepfm.to_onnx`'s float32 graph, fed raw values by
  :func:`skdeepfm.onnx_inputs` (feed building included, and timed alone);
- pytorch-fm's ``DeepFactorizationMachineModel`` of the same shape on integer
  codes it is handed (encoding not included: the peer's best case), in eval
  mode under ``torch.inference_mode``;
- DeepCTR-Torch's ``DeepFM`` of the same shape (built and briefly trained by
  ``bench_peers.py``'s ``DeepCTR``), through its own ``predict`` on a dict of
  code arrays (batches of 8,192 in bulk).

One-row latency: median and 99th percentile over ``--latency-calls`` calls,
each on another row (a prebuilt one-row DataFrame, or one row of codes).
Bulk: rows/s over the scoring rows in one call (the peers in batches of
1,024 and of 8,192, the faster kept; onnxruntime in one run and in runs of
1,024 rows of one feed), best of five, the peers and onnxruntime one after the
other. ``predict_proba`` one row is also timed on a model of the estimator's
default shape.

Data: frappe (``--data-dir``; trained on the validation file, scored on the
test file) and ``--rows`` rows of 26 generated string fields (``make_fields``
of ``bench_peers.py``, ``--vocab`` values per field; a tenth as many test
rows, at least 10,000). ``--cli-rows`` also times the command line's
``predict`` on a generated CSV of that many rows and reports its peak
memory, beside a run on a tenth of the rows.

Install the peers first (``pip install --no-deps torchfm deepctr-torch``;
DeepCTR-Torch also imports ``requests``) and the ``onnx`` extra. Run by hand::

    python benchmarks/bench_serving.py --write
    # smaller: python benchmarks/bench_serving.py --rows 200000 --cli-rows 200000 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _results import write_section
from bench_frappe import DEFAULT_DATA, load_libfm
from bench_peers import DeepCTR, Split, make_fields
from sklearn.exceptions import ConvergenceWarning

import skdeepfm
from skdeepfm import DeepFMClassifier
from skdeepfm._onnx_encoder import LENGTHS_SUFFIX

SHAPE = {"embedding_dim": 10, "hidden_layer_sizes": (400, 400, 400), "dropout": 0.2}


def latency(fn, items):
    """(median, p99) milliseconds of ``fn(item)`` over ``items``, after a warm-up."""
    for item in items[:20]:
        fn(item)
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - started)
    times = np.array(times) * 1e3
    return float(np.median(times)), float(np.percentile(times, 99))


def bulk(fn, n_rows, repeats=5):
    """Rows per second of ``fn()`` (best of ``repeats``: other jobs share the machine)."""
    fn()
    best = min(_seconds(fn) for _ in range(repeats))
    return n_rows / best


def _seconds(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


#: Rows per onnxruntime call in the sliced bulk figure.
ORT_RUN_ROWS = 1024
SLICED = f"ORT bulk rows/s, runs of {ORT_RUN_ROWS} rows (feed included)"
#: The peers' bulk batch sizes: each peer's figure is its faster one.
PEER_BATCHES = (ORT_RUN_ROWS, 8192)


def _feed_slices(inputs, n_rows, size):
    """The feed of ``n_rows`` rows in feeds of ``size`` rows (a list field's values by its lengths)."""
    # Where each row's values start, for the list fields' value inputs.
    starts = {
        name: np.concatenate([[0], np.cumsum(inputs[name + LENGTHS_SUFFIX])])
        for name in inputs
        if name + LENGTHS_SUFFIX in inputs
    }
    for start in range(0, n_rows, size):
        stop = min(start + size, n_rows)
        yield {
            name: values[starts[name][start] : starts[name][stop]] if name in starts else values[start:stop]
            for name, values in inputs.items()
        }


def torchfm_model(field_dims):
    from torchfm.model.dfm import DeepFactorizationMachineModel

    torch.manual_seed(0)
    return DeepFactorizationMachineModel(list(map(int, field_dims)), 10, (400, 400, 400), 0.2).eval()


def deepctr_model(field_dims, codes):
    """``bench_peers.py``'s DeepCTR-Torch DeepFM, trained a second on ``codes`` (speed needs a shape only)."""
    peer = DeepCTR("cpu", list(map(int, field_dims)))
    n_rows = min(len(codes), 4096)
    train = Split(None, np.arange(n_rows) % 2, codes[:n_rows])
    peer.fit(train, epochs=1, budget=1.0, started=time.perf_counter())
    return peer


def measure(name, X_train, y_train, X_test, n_calls):
    """One data set's rows: a dict of figures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        clf = DeepFMClassifier(**SHAPE, max_iter=1, early_stopping=False, random_state=0).fit(
            X_train, y_train
        )
        fit_seconds = time.perf_counter() - started
    rows = [X_test.iloc[[i]] for i in range(min(n_calls, len(X_test)))]
    model = skdeepfm.to_onnx(clf)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    # Parity on the scoring rows, to report beside the speed.
    probabilities, _ = session.run(None, skdeepfm.onnx_inputs(clf, X_test))
    max_diff = float(np.abs(probabilities - clf.predict_proba(X_test)).max())

    out = {"data": name, "fields": X_test.shape[1], "test rows": len(X_test), "fit s": fit_seconds}
    out["max abs(ORT - predict_proba)"] = max_diff
    out["predict_proba one row"] = latency(clf.predict_proba, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        defaults = DeepFMClassifier(max_iter=1, early_stopping=False, random_state=0).fit(X_train, y_train)
    out["predict_proba one row, default shape"] = latency(defaults.predict_proba, rows)
    out["ORT one row (feed included)"] = latency(
        lambda r: session.run(None, skdeepfm.onnx_inputs(clf, r)), rows
    )
    out["feed building alone"] = latency(lambda r: skdeepfm.onnx_inputs(clf, r), rows)
    feeds = [skdeepfm.onnx_inputs(clf, r) for r in rows]
    out["ORT run alone"] = latency(lambda f: session.run(None, f), feeds)
    # One intra-op thread: a one-row run has nothing to split, and spinning
    # pool threads compete with other jobs on a shared machine.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    single = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out["ORT 1 thread, one row (feed included)"] = latency(
        lambda r: single.run(None, skdeepfm.onnx_inputs(clf, r)), rows
    )

    codes = clf.encoder_.transform(X_test)
    peer = torchfm_model(clf.field_dims_)
    code_rows = [torch.from_numpy(codes[i : i + 1]) for i in range(len(rows))]
    with torch.inference_mode():
        out["pytorch-fm one row (codes)"] = latency(peer, code_rows)
        all_codes = torch.from_numpy(codes)

        def peer_bulk(batch):
            for start in range(0, len(all_codes), batch):
                peer(all_codes[start : start + batch])

        out["pytorch-fm bulk rows/s (codes)"] = max(
            bulk(lambda b=batch: peer_bulk(b), len(codes)) for batch in PEER_BATCHES
        )
    deepctr = deepctr_model(clf.field_dims_, codes)
    out["DeepCTR-Torch one row (codes)"] = latency(
        lambda i: deepctr.model.predict(deepctr._inputs(codes[i : i + 1]), batch_size=256), range(len(rows))
    )
    inputs = deepctr._inputs(codes)

    def deepctr_bulk(batch):
        deepctr.model.predict(inputs, batch_size=batch)

    out["DeepCTR-Torch bulk rows/s (codes)"] = max(
        bulk(lambda b=batch: deepctr_bulk(b), len(codes)) for batch in PEER_BATCHES
    )
    out["ORT bulk rows/s (feed included)"] = bulk(
        lambda: session.run(None, skdeepfm.onnx_inputs(clf, X_test)), len(X_test)
    )

    def ort_runs():
        # One feed, run in slices of ORT_RUN_ROWS rows: the dense layers'
        # activations of a slice stay in the CPU's caches.
        for part in _feed_slices(skdeepfm.onnx_inputs(clf, X_test), len(X_test), ORT_RUN_ROWS):
            session.run(None, part)

    out[SLICED] = bulk(ort_runs, len(X_test))
    out["predict_proba bulk rows/s"] = bulk(lambda: clf.predict_proba(X_test), len(X_test))
    return out, clf


def cli_memory(clf, n_rows, vocab, folder):
    """(seconds, peak MiB) of ``python -m skdeepfm predict`` on a generated CSV of ``n_rows`` rows."""
    model = Path(folder) / "model.skdeepfm"
    skdeepfm.save(clf, model)
    data = Path(folder) / f"score_{n_rows}.csv"
    X, _ = make_fields(n_rows, vocab, seed=3)
    X.to_csv(data, index=False)
    del X
    command = [sys.executable, "-m", "skdeepfm", "predict", "--model", str(model), "--data", str(data)]
    command += ["--out", str(Path(folder) / "scores.csv"), "--quiet"]
    script = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *command], capture_output=True, text=True, check=True
    )
    seconds, peak_kib = result.stdout.split()[-2:]
    data.unlink()
    return float(seconds), int(peak_kib) / 1024


def _fmt(value):
    if isinstance(value, tuple):
        return f"{value[0]:.3f} / {value[1]:.3f}"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1 else f"{value:,.0f}" if value > 100 else f"{value:.1f}"
    return str(value)


def targets():
    """(label, figures -> "value: met / missed") for each serving target."""

    def below(key, limits):
        def check(r):
            value, limit = r[key][0], limits[r["fields"] > 10]
            return f"{value:.3f} <= {limit}: {'met' if value <= limit else 'missed'}"

        return check

    def bulk_check(r):
        fastest = max(r["pytorch-fm bulk rows/s (codes)"], r["DeepCTR-Torch bulk rows/s (codes)"])
        ratio = max(r["ORT bulk rows/s (feed included)"], r[SLICED]) / fastest
        return f"{ratio:.2f}x: {'met' if ratio >= 1 else 'missed'}"

    return [
        ("predict_proba one row <= 0.5 ms", below("predict_proba one row", (0.5, 0.5))),
        ("ORT one row <= 0.15 ms (10 fields), 0.25 (26)", below("ORT one row (feed included)", (0.15, 0.25))),
        ("ORT bulk >= fastest peer", bulk_check),
    ]


def report(results, cli, args, loads):
    keys = [k for k in results[0] if k != "data"]
    lines = [
        "## Serving speed (bench_serving.py)",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(1-minute load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end: one-row figures "
        "are inflated against an idle machine, most for the multi-threaded runs), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {ort.__version__}. DeepFMClassifier embedding 10, DNN 400-400-400, one epoch; "
        "ORT: `to_onnx(clf)` (float32) fed by `onnx_inputs`; pytorch-fm and DeepCTR-Torch: the same shape "
        "on integer codes they are given (no encoding). One row: median / p99 ms over "
        f"{args.latency_calls} calls, each on another row. Bulk: best of 5, rows/s; the peers in batches "
        f"of {' and '.join(map(str, PEER_BATCHES))} rows, the faster kept.",
        "",
        "| | " + " | ".join(r["data"] for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_fmt(r[key]) for r in results) + " |")
    for peer in ("pytorch-fm", "DeepCTR-Torch"):
        for label, key in (("", "ORT bulk rows/s (feed included)"), (f", runs of {ORT_RUN_ROWS}", SLICED)):
            ratios = " | ".join(f"{r[key] / r[f'{peer} bulk rows/s (codes)']:.2f}x" for r in results)
            lines.append(f"| ORT bulk{label} / {peer} bulk | {ratios} |")
    lines += ["", "Targets (median one-row ms; bulk against the fastest peer):", ""]
    lines += ["| target | " + " | ".join(r["data"] for r in results) + " |", "|---|" + "---|" * len(results)]
    for label, check in targets():
        lines.append(f"| {label} | " + " | ".join(check(r) for r in results) + " |")
    lines += [
        "",
        "Reading: `ORT bulk / <peer> bulk` compares the exported graph on raw DataFrame rows (feed "
        "building included) with each peer on codes it is handed; onnxruntime's profile puts most of "
        "its bulk time in the dense layers, as the peers'. A one-row DataFrame is read from its columns' "
        "arrays in one go, by `onnx_inputs` and by `predict_proba`, which also encodes up to 8 rows "
        "cell by cell (the codes of the general path); `predict_proba` then runs the network in "
        "float64 (a row's probabilities do not depend on the rows beside it), its DNN alone about "
        "0.13 ms a row here; `default shape` is the same call on a model of the estimator's default "
        "shape (embedding 16, DNN 200-200), which serves the users who keep the defaults. "
        f"`runs of {ORT_RUN_ROWS} rows`: one feed for all rows, each session run on {ORT_RUN_ROWS} of "
        "them, whose activations stay in the CPU's caches. pandas string columns (pandas 3's default "
        "for text) go into the feed without a type check per cell. DeepCTR-Torch's one-row figure "
        "is its `predict`, which builds a DataLoader per call.",
    ]
    if cli:
        lines += ["", "Command line `predict` (chunks of 100,000 rows) on generated CSVs of 26 fields:", ""]
        lines += ["| rows | seconds | rows/s | peak memory MiB |", "|---|---|---|---|"]
        for n_rows, (seconds, peak) in cli:
            lines.append(f"| {n_rows:,} | {seconds:.1f} | {n_rows / seconds:,.0f} | {peak:,.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated training rows")
    parser.add_argument("--vocab", type=float, default=1e4, help="values per generated field")
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument("--cli-rows", type=int, default=1_000_000, help="0 to skip the command line")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--section", default="serving")
    args = parser.parse_args()
    vocab = int(args.vocab)
    load_start = os.getloadavg()[0]

    results = []
    X_train, y_train = load_libfm(args.data_dir / "frappe.validation.libfm.gz")
    X_test, _ = load_libfm(args.data_dir / "frappe.test.libfm.gz")
    figures, _ = measure("frappe", X_train, y_train, X_test, args.latency_calls)
    results.append(figures)
    print(figures, flush=True)

    n_test = max(10_000, args.rows // 10)
    X, y = make_fields(args.rows + n_test, vocab)
    figures, clf = measure(
        f"generated {args.rows:,} x 26, V={vocab:.0e}",
        X.iloc[:-n_test],
        y[:-n_test],
        X.iloc[-n_test:],
        args.latency_calls,
    )
    results.append(figures)
    print(figures, flush=True)
    del X

    cli = []
    if args.cli_rows:
        with tempfile.TemporaryDirectory() as folder:
            for n_rows in (args.cli_rows // 10, args.cli_rows):
                cli.append((n_rows, cli_memory(clf, n_rows, vocab, folder)))
                print(cli[-1], flush=True)
    text = report(results, cli, args, (load_start, os.getloadavg()[0]))
    print(text)
    if args.write:
        write_section(args.section, text)


if __name__ == "__main__":
    main()
