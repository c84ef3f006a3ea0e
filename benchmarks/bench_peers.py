"""skdeepfm against other DeepFM implementations, LightGBM and a linear model.

Every DeepFM is built with the same shape (embedding 10, DNN 400-400-400,
dropout 0.2) and trained with Adam (learning rate 1e-3), batches of 1,024 rows,
a fixed number of epochs and no early stopping:

- skdeepfm ``DeepFMClassifier`` on the raw DataFrame (its ``fit`` encodes);
- DeepCTR-Torch ``deepctr_torch.models.DeepFM``, fed as its documentation
  does: ``SparseFeat`` columns, a dict of integer arrays, its own ``fit``;
- pytorch-fm ``torchfm.model.dfm.DeepFactorizationMachineModel``, fed as its
  examples do: a row-per-item ``Dataset``, a ``DataLoader`` and a plain loop;
- the seed notebook's network (``SeedDeepFM`` below) in a ``TensorDataset`` +
  ``DataLoader`` + Adam loop;
- LightGBM on pandas categories and a one-hot ``LogisticRegression``
  (frappe only).

The peers and the seed loop are fed integer codes from scikit-learn's
``OrdinalEncoder`` (fitted on the training rows; 0 is kept for categories
unseen in training). That encoding is timed apart and reported in its own
column; skdeepfm's ``fit`` and ``predict_proba`` include its own encoding.

Two data sets:

1. frappe (``--data-dir``, read in place, never copied), with the loader and
   split of ``bench_frappe.py``: ``--epochs`` epochs for every network.
2. generated: ``--rows`` training rows (plus a tenth as many test rows) of 26
   string fields, each drawn Zipf-like from ``V`` values, with labels from a
   planted factorization machine, for each ``V`` in ``--vocab``. Each peer
   trains for one epoch or ``--time-budget`` seconds, whichever ends first,
   counting the rows it processed; skdeepfm always trains one full epoch
   (``max_iter=1``) on all rows, so its tables cover the same vocabulary as
   the peers'. Also times ``FieldEncoder`` against ``OrdinalEncoder`` and
   relates skdeepfm's peak fit memory to the DataFrame's size.

Peak memory is the process's resident set size, sampled every 5 ms during
the fit, minus its value just before (plus the CUDA allocator's peak on a GPU).

Install the peers and the benchmark extras first::

    pip install --no-deps deepctr-torch torchfm
    pip install -e ".[bench]"

Run by hand::

    # full run: frappe 10 epochs, 1,000,000 rows, V = 1e3..1e6, 60 s per peer
    # (about 30-40 minutes on an idle 2-core CPU)
    python benchmarks/bench_peers.py --write
    # reduced run (about 10 minutes idle, 17 on a loaded 2-core CPU)
    python benchmarks/bench_peers.py --epochs 2 --rows 100000 --vocab 1e3,1e5,1e6 --time-budget 30 --write
    # smoke test of the script, 2-3 minutes
    python benchmarks/bench_peers.py --epochs 1 --rows 20000 --vocab 1e3,1e5 --time-budget 5 \\
        --latency-calls 20 --only skdeepfm,deepctr,torchfm,seed,logreg
    # on a GPU, networks only (benchmarks/run_gpu_checks.sh)
    python benchmarks/bench_peers.py --device cuda --epochs 20 --batch-size 4096 \\
        --only skdeepfm,skdeepfm-fp32,deepctr,torchfm --section peers-gpu --write

``--write`` replaces the ``--section`` section (default ``peers``) of
``benchmarks/RESULTS.md`` and writes ``benchmarks/<section>_throughput.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import io
import os
import platform
import sys
import threading
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from _results import write_section
from bench_encoder import timed
from bench_frappe import DEFAULT_DATA, _as_categories, load_libfm
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import skdeepfm
from skdeepfm import DeepFMClassifier, FieldEncoder

HERE = Path(__file__).resolve().parent
EMBEDDING_DIM = 10
HIDDEN = (400, 400, 400)
DROPOUT = 0.2
BATCH_SIZE = 1024
LEARNING_RATE = 1e-3
NETWORKS = ["skdeepfm", "skdeepfm-fp32", "deepctr", "torchfm", "seed"]
MODELS = [*NETWORKS, "lightgbm", "logreg"]


# -- measuring ---------------------------------------------------------------


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_memory():
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        # Hand freed heap pages back to the system so that RSS before a fit
        # does not count the previous model's leftovers.
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak RSS increase (and CUDA allocator peak) over a ``with`` block, in MB."""

    def __init__(self, device, interval=0.005):
        self.device = device
        self.interval = interval

    def __enter__(self):
        _release_memory()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self._cuda_before = torch.cuda.memory_allocated()
        self.before = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.mb = (self.peak - self.before) / 2**20
        self.cuda_mb = None
        if self.device.startswith("cuda"):
            self.cuda_mb = (torch.cuda.max_memory_allocated() - self._cuda_before) / 2**20


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _BudgetSpent(Exception):
    """Raised by an optimiser step hook once the training time budget is spent."""


class StepBudget:
    """Count optimiser steps and stop training once ``seconds`` have passed since ``started``.

    Stopping raises from a step hook, which leaves the peers' own training
    loops (DeepCTR-Torch's ``fit`` included) untouched.
    """

    def __init__(self, optimizer, seconds, started):
        self.steps = 0
        self.seconds = seconds
        self.started = started
        self.spent = False
        optimizer.register_step_post_hook(self._after_step)

    def _after_step(self, optimizer, args, kwargs):
        self.steps += 1
        if self.seconds is not None and time.perf_counter() - self.started >= self.seconds:
            self.spent = True
            raise _BudgetSpent

    def run(self, train_fn, n_rows, epochs):
        """Call ``train_fn``; return the number of training rows it processed."""
        with contextlib.suppress(_BudgetSpent):
            train_fn()
        return self.steps * BATCH_SIZE if self.spent else n_rows * epochs


# -- data ---------------------------------------------------------------------


class Split:
    """One side of a split in every form a model wants: raw, integer codes, categories."""

    def __init__(self, frame, y, codes=None, categories=None):
        self.frame = frame
        self.y = np.asarray(y)
        self.codes = codes
        self.categories = categories

    def head(self, n_rows):
        """The first ``n_rows`` rows, in every form."""
        return Split(
            self.frame.iloc[:n_rows],
            self.y[:n_rows],
            None if self.codes is None else self.codes[:n_rows],
            None if self.categories is None else self.categories.iloc[:n_rows],
        )


def ordinal_codes(X_train, X_test):
    """Codes for the peers: 0 for unseen categories, 1.. for the training ones."""
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.int64)
    train, seconds = timed(lambda: encoder.fit_transform(X_train) + 1)
    test = encoder.transform(X_test) + 1
    field_dims = [len(c) + 1 for c in encoder.categories_]
    return train, test, field_dims, seconds


def make_fields(n_rows, vocabulary, n_fields=26, exponent=1.05, seed=0):
    """String fields drawn Zipf-like from ``vocabulary`` values, labels from a planted FM.

    Each field's value of rank ``k`` has probability proportional to
    ``k ** -exponent``. The click logit sums one weight per (field, value) and
    the pairwise dot products of 4-dimensional factors, as a factorization
    machine does, so the networks have something to learn.
    """
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.arange(1, vocabulary + 1, dtype=np.float64) ** -exponent)
    cdf /= cdf[-1]
    labels = np.array([f"v{i}" for i in range(vocabulary)], dtype=object)
    logit = np.zeros(n_rows)
    factor_sum = np.zeros((n_rows, 4))
    factor_squares = np.zeros(n_rows)
    columns = {}
    for j in range(n_fields):
        codes = np.minimum(np.searchsorted(cdf, rng.random(n_rows), side="right"), vocabulary - 1)
        logit += rng.normal(0.0, 0.4, vocabulary)[codes]
        factors = rng.normal(0.0, 0.2, (vocabulary, 4))[codes]
        factor_sum += factors
        factor_squares += (factors**2).sum(axis=1)
        columns[f"C{j + 1}"] = labels[codes]
    logit += 0.5 * ((factor_sum**2).sum(axis=1) - factor_squares)
    logit += -1.0 - logit.mean()
    y = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(columns), y


# -- models -------------------------------------------------------------------


class SeedDeepFM(nn.Module):
    """The seed notebook's DeepFM, math unchanged: sigmoid output, dropout 0.2, no BatchNorm.

    ``forward`` takes codes of shape (n_samples, n_fields) and returns click
    probabilities of shape (n_samples,).
    """

    def __init__(self, field_dims, embedding_dim, hidden_dims):
        super().__init__()
        self.embedding = nn.Embedding(sum(field_dims), embedding_dim)
        self.offsets = torch.tensor([0] + field_dims[:-1]).cumsum(dim=0)
        self.linear = nn.Embedding(sum(field_dims), 1)
        all_dims = [len(field_dims) * embedding_dim, *hidden_dims]
        self.dnn = nn.Sequential()
        for i in range(1, len(all_dims)):
            self.dnn.add_module(f"fc{i}", nn.Linear(all_dims[i - 1], all_dims[i]))
            self.dnn.add_module(f"relu{i}", nn.ReLU())
            self.dnn.add_module(f"dropout{i}", nn.Dropout(p=0.2))
        self.dnn_output = nn.Linear(all_dims[-1], 1)

    def forward(self, x):
        x = x + self.offsets.to(x.device)
        embeddings = self.embedding(x)
        linear_part = self.linear(x).sum(dim=1)
        # FM pairs through the identity 1/2 [(sum v)^2 - sum v^2].
        square_of_sum = embeddings.sum(dim=1).pow(2)
        sum_of_square = embeddings.pow(2).sum(dim=1)
        second_order_part = 0.5 * (square_of_sum - sum_of_square).sum(dim=1, keepdim=True)
        dnn_output = self.dnn_output(self.dnn(embeddings.view(embeddings.size(0), -1)))
        return torch.sigmoid((linear_part + second_order_part + dnn_output).squeeze(1))


@contextlib.contextmanager
def timing_training(device):
    """Seconds spent in skdeepfm's training loop during the block: a list of one float.

    ``fit`` encodes the DataFrame, builds the network, then calls
    ``skdeepfm._training.train`` (optimiser set-up and epochs), which this
    wraps: its time is the training time, without the encoding.
    """
    spent = [0.0]
    original = skdeepfm._base.train

    def timed(*args, **kwargs):
        _sync(device)
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _sync(device)
            spent[0] += time.perf_counter() - started

    skdeepfm._base.train = timed
    try:
        yield spent
    finally:
        skdeepfm._base.train = original


class SkDeepFM:
    """skdeepfm on the raw DataFrame; ``mixed_precision=False`` for the fp32 variant."""

    encoded = False

    def __init__(self, device, fp32=False):
        self.name = "skdeepfm DeepFMClassifier" + (" (fp32)" if fp32 else "")
        self.extra = {"mixed_precision": False} if fp32 else {}
        self.device = device

    def fit(self, train, epochs, budget, started):
        self.model = DeepFMClassifier(
            embedding_dim=EMBEDDING_DIM,
            hidden_layer_sizes=HIDDEN,
            dropout=DROPOUT,
            batch_size=BATCH_SIZE,
            learning_rate_init=LEARNING_RATE,
            early_stopping=False,
            max_iter=epochs,
            random_state=0,
            device=self.device,
            **self.extra,
        )
        with warnings.catch_warnings(), timing_training(self.device) as spent:
            # A fixed number of epochs, on purpose.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(train.frame, train.y)
        self.train_s = spent[0]
        return len(train.y) * self.model.n_iter_

    def predict(self, test):
        return self.model.predict_proba(test.frame)[:, 1]

    def one_row(self, test):
        row = test.frame.iloc[[0]]
        return lambda: self.model.predict_proba(row)


class DeepCTR:
    """DeepCTR-Torch's DeepFM with its defaults apart from the shared shape."""

    name = "DeepCTR-Torch DeepFM"
    encoded = True

    def __init__(self, device, field_dims):
        self.device = "cuda:0" if device == "cuda" else device
        self.field_dims = field_dims

    def _inputs(self, codes):
        return {f"f{j}": codes[:, j] for j in range(codes.shape[1])}

    def fit(self, train, epochs, budget, started):
        from deepctr_torch.inputs import SparseFeat
        from deepctr_torch.models import DeepFM

        columns = [
            SparseFeat(f"f{j}", vocabulary_size=size, embedding_dim=EMBEDDING_DIM)
            for j, size in enumerate(self.field_dims)
        ]
        self.model = DeepFM(
            columns,
            columns,
            dnn_hidden_units=HIDDEN,
            dnn_dropout=DROPOUT,
            task="binary",
            seed=0,
            device=self.device,
        )
        optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.model.compile(optimizer, "binary_crossentropy")
        budget = StepBudget(optimizer, budget, started)

        def train_fn():
            # fit prints the device and the step count; keep the output readable.
            with contextlib.redirect_stdout(io.StringIO()):
                self.model.fit(
                    self._inputs(train.codes),
                    train.y.astype(np.float32),
                    batch_size=BATCH_SIZE,
                    epochs=epochs,
                    verbose=0,
                )

        return budget.run(train_fn, len(train.y), epochs)

    def predict(self, test):
        return self.model.predict(self._inputs(test.codes), batch_size=256)[:, 0]

    def one_row(self, test):
        row = self._inputs(test.codes[:1])
        return lambda: self.model.predict(row, batch_size=256)


class RowDataset(Dataset):
    """One (codes, label) item per row, the way pytorch-fm's example datasets serve them."""

    def __init__(self, codes, y):
        self.codes = codes
        self.y = y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, index):
        return self.codes[index], self.y[index]


class PlainLoop:
    """A network trained by a plain DataLoader + Adam + BCELoss loop: pytorch-fm or the seed."""

    encoded = True

    def __init__(self, device, field_dims, kind):
        self.device = device
        self.field_dims = field_dims
        self.kind = kind
        names = {"torchfm": "pytorch-fm DeepFactorizationMachineModel", "seed": "seed notebook loop"}
        self.name = names[kind]

    def fit(self, train, epochs, budget, started):
        torch.manual_seed(0)
        if self.kind == "torchfm":
            from torchfm.model.dfm import DeepFactorizationMachineModel

            self.model = DeepFactorizationMachineModel(
                np.asarray(self.field_dims), embed_dim=EMBEDDING_DIM, mlp_dims=HIDDEN, dropout=DROPOUT
            )
            dataset = RowDataset(train.codes, train.y.astype(np.float32))
        else:
            self.model = SeedDeepFM(self.field_dims, EMBEDDING_DIM, list(HIDDEN))
            targets = torch.from_numpy(train.y.astype(np.float32))
            dataset = TensorDataset(torch.from_numpy(train.codes), targets)
        self.model.to(self.device)
        loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        criterion = nn.BCELoss()
        budget = StepBudget(optimizer, budget, started)

        def train_fn():
            self.model.train()
            for _ in range(epochs):
                for fields, target in loader:
                    fields, target = fields.to(self.device), target.to(self.device)
                    loss = criterion(self.model(fields), target)
                    self.model.zero_grad()
                    loss.backward()
                    optimizer.step()

        return budget.run(train_fn, len(train.y), epochs)

    @torch.no_grad()
    def predict(self, test):
        self.model.eval()
        codes = torch.from_numpy(test.codes)
        starts = range(0, len(codes), BATCH_SIZE)
        parts = [self.model(codes[i : i + BATCH_SIZE].to(self.device)) for i in starts]
        return torch.cat(parts).cpu().numpy()

    def one_row(self, test):
        row = torch.from_numpy(test.codes[:1])

        @torch.no_grad()
        def call():
            return self.model(row.to(self.device)).cpu()

        return call


class Sklearn:
    """LightGBM on pandas categories, or one-hot + LogisticRegression, on the CPU."""

    def __init__(self, kind):
        self.kind = kind
        self.encoded = kind == "lightgbm"
        self.name = {
            "lightgbm": "LightGBM, categorical, defaults (100 trees)",
            "logreg": "one-hot LogisticRegression",
        }[kind]

    def _X(self, split):
        return split.categories if self.kind == "lightgbm" else split.frame

    def fit(self, train, epochs, budget, started):
        if self.kind == "lightgbm":
            import lightgbm as lgb

            self.model = lgb.LGBMClassifier(verbose=-1, random_state=0)
        else:
            self.model = make_pipeline(
                OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=1000)
            )
        self.model.fit(self._X(train), train.y)
        return len(train.y)

    def predict(self, test):
        return self.model.predict_proba(self._X(test))[:, 1]

    def one_row(self, test):
        row = self._X(test).iloc[[0]]
        return lambda: self.model.predict_proba(row)


def measure(runner, train, test, *, device, epochs, budget=None, encode_s=0.0, latency_calls=0):
    """Fit ``runner`` and time it; score it on ``test``; one-row latency if asked.

    A short untimed fit on the first rows comes first, so that no model pays
    for the lazy imports and first-call set-up that a process does once
    (about a second of torch imports for whichever model runs first).
    """
    runner.fit(train.head(2048), 1, None, time.perf_counter())
    with PeakMemory(device) as memory:
        _sync(device)
        started = time.perf_counter()
        rows = runner.fit(train, epochs, budget, started)
        _sync(device)
        fit_s = time.perf_counter() - started
    _sync(device)
    started = time.perf_counter()
    proba = np.asarray(runner.predict(test), dtype=np.float64).ravel()
    _sync(device)
    predict_s = time.perf_counter() - started
    latency_ms = float("nan")
    if latency_calls:
        call = runner.one_row(test)
        call()
        latencies = []
        for _ in range(latency_calls):
            started = time.perf_counter()
            call()
            _sync(device)
            latencies.append(time.perf_counter() - started)
        latency_ms = 1000 * float(np.median(latencies))
    # skdeepfm encodes inside fit: its training time is the time of its
    # training loop (timing_training); the others were fed encoded data.
    train_s = getattr(runner, "train_s", fit_s)
    share = min(1.0, rows / len(train.y))
    return {
        "model": runner.name,
        "auc": roc_auc_score(test.y, proba),
        "logloss": log_loss(test.y, np.clip(proba, 1e-7, 1 - 1e-7)),
        "rows": rows,
        "encode_s": encode_s,
        "fit_s": fit_s,
        "train_rows_s": rows / max(train_s, 1e-9),
        "total_rows_s": rows / (fit_s + (encode_s * share if runner.encoded else 0.0)),
        "predict_rows_s": len(test.y) / predict_s,
        "one_row_ms": latency_ms,
        "peak_mb": memory.mb,
        "cuda_mb": memory.cuda_mb,
    }


def make_runners(names, device, field_dims, has_mixed_precision):
    """(name, runner) pairs for the ``--only`` names, in the order of MODELS."""
    runners = []
    for name in names:
        if name == "skdeepfm":
            runners.append((name, SkDeepFM(device)))
        elif name == "skdeepfm-fp32" and has_mixed_precision:
            runners.append((name, SkDeepFM(device, fp32=True)))
        elif name == "deepctr":
            runners.append((name, DeepCTR(device, field_dims)))
        elif name in ("torchfm", "seed"):
            runners.append((name, PlainLoop(device, field_dims, name)))
        elif name in ("lightgbm", "logreg"):
            runners.append((name, Sklearn(name)))
    return runners


# -- the two benchmarks -------------------------------------------------------


def _fmt(value, spec):
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)


def run_frappe(args, names, has_mixed_precision):
    X_train, y_train = load_libfm(args.data_dir / "frappe.validation.libfm.gz")
    X_test, y_test = load_libfm(args.data_dir / "frappe.test.libfm.gz")
    codes_train, codes_test, field_dims, ordinal_s = ordinal_codes(X_train, X_test)
    (cat_train, _, cat_test, _), category_s = timed(lambda: _as_categories(X_train, y_train, X_test, y_test))
    _, field_encoder_s = timed(lambda: FieldEncoder().fit_transform(X_train))
    train = Split(X_train, y_train, codes_train, cat_train)
    test = Split(X_test, y_test, codes_test, cat_test)
    encode_s = {"skdeepfm": field_encoder_s, "lightgbm": category_s, "logreg": 0.0}
    print(f"frappe: train {X_train.shape}, test {X_test.shape}, {args.epochs} epochs", flush=True)
    results = []
    for key, runner in make_runners(names, args.device, field_dims, has_mixed_precision):
        device = "cpu" if isinstance(runner, Sklearn) else args.device
        result = measure(
            runner,
            train,
            test,
            device=device,
            epochs=1 if isinstance(runner, Sklearn) else args.epochs,
            encode_s=encode_s.get(key.split("-")[0], ordinal_s),
            latency_calls=args.latency_calls,
        )
        results.append(result)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, flush=True)
    lines = [
        "| model | test AUC | test log-loss | encode s | fit s | train rows/s | rows/s incl. encoding "
        "| predict rows/s | one-row ms | fit peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        gpu = f" (+{r['cuda_mb']:.0f} GPU)" if r["cuda_mb"] is not None else ""
        lines.append(
            f"| {r['model']} | {r['auc']:.4f} | {r['logloss']:.4f} | {r['encode_s']:.2f} | "
            f"{r['fit_s']:.1f} | {r['train_rows_s']:,.0f} | {r['total_rows_s']:,.0f} | "
            f"{r['predict_rows_s']:,.0f} | {_fmt(r['one_row_ms'], '.2f')} | {r['peak_mb']:,.0f}{gpu} |"
        )
    lines += ["", *_ratio_lines(results, "frappe")]
    return lines


def _ratio_lines(results, where):
    ours = next((r for r in results if r["model"] == "skdeepfm DeepFMClassifier"), None)
    peers = [r for r in results if r["model"].startswith(("DeepCTR", "pytorch-fm"))]
    if ours is None or not peers:
        return []
    best = max(peers, key=lambda r: r["train_rows_s"])
    best_total = max(peers, key=lambda r: r["total_rows_s"])
    seed = next((r for r in results if r["model"] == "seed notebook loop"), None)
    against_seed = f"; {ours['train_rows_s'] / seed['train_rows_s']:.2f}x the seed loop's" if seed else ""
    return [
        f"{where}: skdeepfm trains at {ours['train_rows_s'] / best['train_rows_s']:.2f}x the rows/s of the "
        f"fastest DeepFM peer ({best['model']}), {ours['total_rows_s'] / best_total['total_rows_s']:.2f}x "
        f"counting encoding{against_seed}."
    ]


def run_generated(args, names, has_mixed_precision):
    n_test = max(args.rows // 10, 1000)
    networks = [n for n in names if n in NETWORKS]
    sweep, encoders, memory_lines, ratio_lines = [], [], [], []
    for vocabulary in args.vocab:
        (X, y), gen_s = timed(lambda v=vocabulary: make_fields(args.rows + n_test, v))
        X_train, X_test = X.iloc[: args.rows], X.iloc[args.rows :].reset_index(drop=True)
        y_train, y_test = y[: args.rows], y[args.rows :]
        del X
        frame_mb = X_train.memory_usage(deep=True).sum() / 2**20
        distinct = X_train.nunique().mean()
        print(
            f"V={vocabulary:,}: generated in {gen_s:.1f} s, {distinct:,.0f} distinct values per field, "
            f"DataFrame {frame_mb:,.0f} MB ({X_train.dtypes.iloc[0]})",
            flush=True,
        )
        _, field_encoder_s = timed(lambda X_train=X_train: FieldEncoder().fit_transform(X_train))
        codes_train, codes_test, field_dims, ordinal_s = ordinal_codes(X_train, X_test)
        encoders.append((vocabulary, distinct, field_encoder_s, ordinal_s))
        print(f"  FieldEncoder {field_encoder_s:.2f} s, OrdinalEncoder {ordinal_s:.2f} s", flush=True)
        train = Split(X_train, y_train, codes_train)
        test = Split(X_test, y_test, codes_test)
        results = []
        for _, runner in make_runners(networks, args.device, field_dims, has_mixed_precision):
            is_ours = isinstance(runner, SkDeepFM)
            result = measure(
                runner,
                train,
                test,
                device=args.device,
                epochs=1,
                budget=None if is_ours else args.time_budget,
                encode_s=field_encoder_s if is_ours else ordinal_s,
            )
            result.update(vocabulary=vocabulary, distinct=distinct)
            results.append(result)
            sweep.append(result)
            print(
                f"  {result['model']}: {result['rows']:,} rows in {result['fit_s']:.1f} s, "
                f"{result['train_rows_s']:,.0f} rows/s, AUC {result['auc']:.4f}, "
                f"peak {result['peak_mb']:,.0f} MB",
                flush=True,
            )
            if is_ours and not runner.extra:
                memory_lines.append(
                    f"| {vocabulary:,} | {frame_mb:,.0f} | {result['peak_mb']:,.0f} | "
                    f"{result['peak_mb'] / frame_mb:.2f} |"
                )
        ratio_lines += _ratio_lines(results, f"V={vocabulary:,}")
        del X_train, X_test, train, test, codes_train, codes_test
    return sweep, encoders, memory_lines, ratio_lines


def generated_lines(args, sweep, encoders, memory_lines, ratio_lines):
    lines = [
        "| V | distinct values per field | model | rows trained | train s | train rows/s | test AUC "
        "| fit peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sweep:
        lines.append(
            f"| {r['vocabulary']:,} | {r['distinct']:,.0f} | {r['model']} | {r['rows']:,} | "
            f"{r['fit_s']:.1f} | {r['train_rows_s']:,.0f} | {r['auc']:.4f} | {r['peak_mb']:,.0f} |"
        )
    lines += ["", *ratio_lines]
    ours = {r["vocabulary"]: r for r in sweep if r["model"] == "skdeepfm DeepFMClassifier"}
    if len(ours) > 1:
        low, high = min(ours), max(ours)
        ratio = ours[high]["train_rows_s"] / ours[low]["train_rows_s"]
        lines.append(f"skdeepfm's train rows/s at V={high:,} is {ratio:.2f}x its rows/s at V={low:,}.")
    lines += [
        "",
        f"Encoders on the {args.rows:,} x 26 training DataFrame (fit_transform):",
        "",
        "| V | distinct values per field | FieldEncoder s | OrdinalEncoder s | ratio |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {v:,} | {d:,.0f} | {f:.2f} | {o:.2f} | {o / f:.1f}x |" for v, d, f, o in encoders]
    if memory_lines:
        lines += [
            "",
            "skdeepfm's peak fit memory (one epoch) against the training DataFrame's "
            "`memory_usage(deep=True).sum()`:",
            "",
            "| V | DataFrame MB | fit peak MB | ratio |",
            "|---|---|---|---|",
            *memory_lines,
        ]
    return lines


def plot(sweep, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in dict.fromkeys(r["model"] for r in sweep):
        points = sorted((r["vocabulary"], r["train_rows_s"]) for r in sweep if r["model"] == model)
        ax.plot(*zip(*points, strict=True), marker="o", label=model)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("vocabulary size V per field")
    ax.set_ylabel("training rows / second")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine_line(device):
    versions = []
    for package in ("deepctr-torch", "torchfm", "lightgbm"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    gpu = f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads{gpu}; "
        f"skdeepfm {skdeepfm.__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"pandas {pd.__version__}, {', '.join(versions)}; {datetime.date.today().isoformat()}"
    )


def _vocabularies(text):
    return [int(float(v)) for v in text.split(",")]


def main():
    global BATCH_SIZE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="frappe folder, read in place")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every network on frappe")
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows of the generated data")
    parser.add_argument("--vocab", type=_vocabularies, default=_vocabularies("1e3,1e4,1e5,1e6"))
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds of training per peer and V")
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--skip-frappe", action="store_true")
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="rows per batch of every network")
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section and the plot")
    parser.add_argument(
        "--section", default="peers", help="RESULTS.md section to write; the plot is <section>_throughput.png"
    )
    args = parser.parse_args()
    BATCH_SIZE = args.batch_size
    plot_path = HERE / f"{args.section}_throughput.png"
    names = MODELS if args.only is None else [n for n in MODELS if n in args.only.split(",")]
    unknown = sorted(set(args.only.split(",")) - set(MODELS)) if args.only else []
    if unknown:
        parser.error(f"--only got {unknown}; expected names among {MODELS}.")
    has_mixed_precision = "mixed_precision" in DeepFMClassifier().get_params()
    if not has_mixed_precision and "skdeepfm-fp32" in names:
        print("DeepFMClassifier has no mixed_precision parameter: skdeepfm-fp32 skipped", flush=True)
    machine = machine_line(args.device)
    command = " ".join(["python benchmarks/bench_peers.py", *sys.argv[1:]])
    print(machine, flush=True)
    lines = [
        "## DeepFM peers: skdeepfm, DeepCTR-Torch, pytorch-fm, the seed loop, LightGBM, LR",
        "",
        f"`{command}` on {args.device}.",
        f"Machine: {machine}.",
        "",
        f"Every DeepFM: embedding {EMBEDDING_DIM}, DNN {'-'.join(map(str, HIDDEN))}, dropout {DROPOUT}, "
        f"batch {BATCH_SIZE}, Adam lr {LEARNING_RATE}, no early stopping, each library's other defaults "
        "(skdeepfm: BatchNorm, weight decay 1e-2 on the DNN and 1e-4 on the tables; DeepCTR-Torch: L2 1e-5 "
        "on the embedding and linear tables, no BatchNorm; pytorch-fm: BatchNorm; seed: neither).",
        "Peers and the seed loop are fed OrdinalEncoder codes: `encode s` is that encoding, apart from "
        "`fit s`. skdeepfm's fit and predict include its own encoding; its `encode s` is a separate "
        "`FieldEncoder().fit_transform` timing, and its train rows/s counts the time inside its "
        "training loop (`skdeepfm._training.train`, wrapped: optimiser set-up and epochs). "
        "LightGBM's `encode s` converts to pandas categories; LR one-hot encodes in its "
        "pipeline. Peak memory: RSS sampled every 5 ms, minus RSS before the fit.",
    ]
    if not args.skip_frappe:
        lines += [
            "",
            f"### frappe, {args.epochs} epoch{'s' if args.epochs > 1 else ''}",
            "",
            "Train on `frappe.validation.libfm` (57,722 rows), test on `frappe.test.libfm` "
            "(28,860 rows), the split of the frappe section. `one-row ms`: median of "
            f"{args.latency_calls} `predict_proba` calls on a one-row DataFrame (skdeepfm, LightGBM, LR) or "
            "the peer's predict on one encoded row.",
            "",
            *run_frappe(args, names, has_mixed_precision),
        ]
    if not args.skip_generated and any(n in NETWORKS for n in names):
        sweep, encoders, memory_lines, ratio_lines = run_generated(args, names, has_mixed_precision)
        lines += [
            "",
            f"### Generated: {args.rows:,} rows x 26 string fields, vocabulary V per field",
            "",
            "Values Zipf-like (exponent 1.05) over V per field, labels from a planted factorization "
            f"machine; test on {max(args.rows // 10, 1000):,} more rows. Peers: one epoch or "
            f"{args.time_budget:g} s of training (model construction included), whichever ends first, "
            "counting rows processed. skdeepfm: one full epoch (`max_iter=1`) on all rows, fit including "
            "encoding; train rows/s counts its training loop only. The test AUC after so little training "
            "is a sanity check, not a comparison.",
            "",
            *generated_lines(args, sweep, encoders, memory_lines, ratio_lines),
        ]
        if args.write:
            plot(sweep, plot_path, f"{args.rows:,} rows x 26 fields, {args.device}, {machine.split(';')[0]}")
            lines += ["", f"![training rows/s against V]({plot_path.name})"]
    print("\n".join(lines))
    if args.write:
        write_section(args.section, "\n".join(lines))


if __name__ == "__main__":
    main()
