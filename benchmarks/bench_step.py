"""Training-step speed: the training loop with each optimisation on and off.

Times ``skdeepfm._training.train`` (one epoch, synthetic encoded rows, DNN
400-400-400, dropout 0.2, batch 1,024, Adam 1e-3 with the default L2) and a
copy of the loop as it was before the optimisations (dense Adam on the whole
tables, ``bernoulli_`` dropout masks, float32), on:

- frappe-like rows: 10 fields with frappe's vocabulary sizes, embedding 10;
- generated rows: 26 fields of ``V`` values each (Zipf-like), embedding 10,
  for each ``V`` in ``--vocab``; each field's table has as many rows as
  the encoder of ``--table-rows-of`` generated rows would give it (the
  distinct values among them), as in the 1,000,000-row peers benchmark.

Where the estimators update small tables whole (``use_dense_tables``), the
lazy table Adam is also timed on them. Only the optimiser steps are timed
(the time from the first batch to the end of the last), not building the
network or moving the data. Variants run interleaved, ``--rounds`` times
each, and the best round counts: the machine is shared, so compare ratios
within one run.

Run by hand::

    python benchmarks/bench_step.py [--rounds 3] [--vocab 1e3,1e6] [--write]

``--write`` replaces the ``speed`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time

import numpy as np
import torch
from _results import write_section
from torch.nn import functional as F

import skdeepfm
from skdeepfm import DeepFMNetwork, _network, _optim, _training
from skdeepfm._encoder import EncodedFields
from skdeepfm._training import TrainingConfig, bfloat16_supported, seeded_generator

BATCH_SIZE = 1024
HIDDEN = (400, 400, 400)
EMBEDDING_DIM = 10
#: Frappe's fields' vocabulary sizes (user, item, daytime, weekday, isweekend,
#: homework, cost, weather, country, city) plus the three reserved codes.
FRAPPE_DIMS = [957, 4082, 7, 7, 2, 3, 2, 9, 80, 233]


def zipf_probabilities(n_values):
    """Probability of each of ``n_values`` values, Zipf-like (exponent 1.05)."""
    weights = 1.0 / np.arange(1, n_values + 1) ** 1.05
    return weights / weights.sum()


def generated(field_dims, n_rows, seed=0):
    """Codes drawn Zipf-like from each field's vocabulary, and random labels."""
    rng = np.random.default_rng(seed)
    columns = [rng.choice(dim, size=n_rows, p=zipf_probabilities(dim)) for dim in field_dims]
    return EncodedFields(np.stack(columns, 1).astype(np.int64)), rng.integers(0, 2, n_rows)


def distinct_values(vocab, n_rows, seed=0):
    """How many of ``vocab`` Zipf-like values ``n_rows`` draws hit: a fitted field's vocabulary."""
    if not n_rows:
        return int(vocab)
    rng = np.random.default_rng(seed)
    return len(np.unique(rng.choice(int(vocab), size=n_rows, p=zipf_probabilities(int(vocab)))))


def config(mixed_precision):
    return TrainingConfig(
        batch_size=BATCH_SIZE,
        learning_rate=1e-3,
        max_iter=1,
        alpha=1e-2,
        embedding_alpha=1e-4,
        n_iter_no_change=5,
        tol=0.0,
        shuffle=True,
        verbose=0,
        seed=0,
        mixed_precision=mixed_precision,
        # The estimators' default (TrainingConfig's own is plain backpropagation).
        dnn_gradient_scale=0.01,
    )


def bernoulli_mask(shape, p, generator, dtype, device):
    """The mask as drawn before: one float per element from ``bernoulli_``."""
    return torch.empty(shape, dtype=dtype, device=device).bernoulli_(1.0 - p, generator=generator) / (1.0 - p)


class StepClock:
    """Stands in for tqdm in the training loop: times the batches only."""

    def __init__(self):
        self.seconds = 0.0
        self.steps = 0

    def __call__(self, iterable, **kwargs):
        clock = self

        class Timed:
            def __iter__(self):
                started = time.perf_counter()
                for item in iterable:
                    yield item
                    clock.steps += 1
                clock.seconds += time.perf_counter() - started

        return Timed()


@contextlib.contextmanager
def patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def time_train(field_dims, data, y, *, mixed_precision=False, bits=True, fused=True, lazy=False):
    """Rows per second of the optimiser steps of ``train``; ``lazy``: lazy table Adam at any size."""
    network = DeepFMNetwork(field_dims, EMBEDDING_DIM, HIDDEN, 0.2, True, generator=seeded_generator(0))
    clock = StepClock()
    original = _training.DeepFMOptimizer

    def optimizer(*args, **kwargs):
        return original(*args, **{**kwargs, "fused": fused and kwargs["fused"]})

    with contextlib.ExitStack() as stack:
        stack.enter_context(patched(_training, "tqdm", clock))
        stack.enter_context(patched(_training, "DeepFMOptimizer", optimizer))
        if not bits:
            stack.enter_context(patched(_network, "dropout_mask", bernoulli_mask))
        if lazy:
            stack.enter_context(patched(_optim, "DENSE_ROWS_PER_LOOKUP", 0))
        _training.train(
            network, data, y, np.ones(len(y)), config(mixed_precision), device=torch.device("cpu")
        )
    return clock.steps * BATCH_SIZE / clock.seconds


def time_old_loop(field_dims, data, y, max_steps=None):
    """Rows per second of the loop before the optimisations (dense Adam on the tables)."""
    network = DeepFMNetwork(field_dims, EMBEDDING_DIM, HIDDEN, 0.2, True, generator=seeded_generator(0))
    tables = [network.embedding.weight, network.linear.weight]
    dense = [p for p in network.parameters() if all(p is not t for t in tables)]
    optimizer = torch.optim.Adam(
        [{"params": tables, "weight_decay": 1e-4}, {"params": dense, "weight_decay": 1e-2}], lr=1e-3
    )
    codes = torch.as_tensor(data.codes)
    targets = torch.as_tensor(y, dtype=torch.float32)
    generator = seeded_generator(1)
    order = torch.randperm(len(codes), generator=seeded_generator(0))
    bounds = _training.batch_bounds(len(codes), BATCH_SIZE)[:max_steps]
    network.train()
    with patched(_network, "dropout_mask", bernoulli_mask):
        started = time.perf_counter()
        for start, stop in bounds:
            batch = order[start:stop]
            logits = network(codes[batch], generator=generator)
            loss = F.binary_cross_entropy_with_logits(logits.squeeze(1), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
    return len(bounds) * BATCH_SIZE / seconds


def variants(bf16):
    """(name, function of (field_dims, data, y)) in the order they run."""
    out = [
        ("before (dense Adam, bernoulli_ dropout, float32)", time_old_loop),
        ("now, float32", lambda *a: time_train(*a)),
        ("now, float32, bernoulli_ dropout", lambda *a: time_train(*a, bits=False)),
        ("now, float32, for-loop dense Adam", lambda *a: time_train(*a, fused=False)),
    ]
    if bf16:
        out.insert(
            1, ("now, bfloat16 autocast (default here)", lambda *a: time_train(*a, mixed_precision=True))
        )
        out.append(
            ("now, bfloat16, bernoulli_ dropout", lambda *a: time_train(*a, mixed_precision=True, bits=False))
        )
        out.append(
            ("now, bfloat16, lazy table Adam", lambda *a: time_train(*a, mixed_precision=True, lazy=True))
        )
    return out


def bench_frappe_like(rounds, n_rows):
    data, y = generated(FRAPPE_DIMS, n_rows)
    runs = variants(bfloat16_supported("cpu"))
    best = {name: 0.0 for name, _ in runs}
    for _ in range(rounds):
        for name, run in runs:
            best[name] = max(best[name], run(FRAPPE_DIMS, data, y))
            print(f"  frappe-like {name}: {best[name]:,.0f} rows/s", flush=True)
    return best


def bench_vocab(rounds, vocabs, n_rows, old_steps, table_rows_of):
    """Best rows/s of the current default and of the old loop, per vocabulary size."""
    bf16 = bfloat16_supported("cpu")
    results = {}
    field_dims = {vocab: distinct_values(vocab, table_rows_of) + 3 for vocab in vocabs}
    for _ in range(rounds):
        for vocab in vocabs:
            dims = [field_dims[vocab]] * 26
            data, y = generated(dims, n_rows, seed=1)
            now = time_train(dims, data, y, mixed_precision=bf16)
            whole = _optim.use_dense_tables(sum(dims), BATCH_SIZE * len(dims), "cpu")
            lazy = time_train(dims, data, y, mixed_precision=bf16, lazy=True) if whole else now
            old = time_old_loop(dims, data, y, max_steps=old_steps)
            prev = results.get(vocab, (0.0, 0.0, 0.0))
            results[vocab] = (max(prev[0], now), max(prev[1], lazy), max(prev[2], old), sum(dims), whole)
            print(
                f"  26 fields x {vocab:.0e}: now {results[vocab][0]:,.0f}, lazy tables "
                f"{results[vocab][1]:,.0f}, before {results[vocab][2]:,.0f} rows/s",
                flush=True,
            )
            del data, y
    return results


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=30_720, help="rows per timed epoch")
    parser.add_argument("--vocab", default="1e3,1e6", help="values per field of the 26-field data")
    parser.add_argument("--old-steps", type=int, default=5, help="steps of the old loop on the 26-field data")
    parser.add_argument(
        "--table-rows-of",
        type=int,
        default=1_000_000,
        help="size the 26-field tables as the encoder of this many generated rows would (0: V rows)",
    )
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    vocabs = [float(v) for v in args.vocab.split(",")]

    frappe = bench_frappe_like(args.rounds, args.rows)
    vocab = bench_vocab(args.rounds, vocabs, args.rows, args.old_steps, args.table_rows_of)

    before = frappe["before (dense Adam, bernoulli_ dropout, float32)"]
    lines = [
        "## Training-step speed (optimisations on and off)",
        "",
        "`python benchmarks/bench_step.py --write`: rows per second of the optimiser steps of one epoch",
        f"({args.rows:,} synthetic rows, batch {BATCH_SIZE}, embedding {EMBEDDING_DIM}, "
        "DNN 400-400-400, dropout 0.2),",
        f"best of {args.rounds} interleaved rounds on a shared machine: compare the ratios.",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"bfloat16 native: {bfloat16_supported('cpu')}; "
        f"skdeepfm {skdeepfm.__version__}, torch {torch.__version__}.",
        "",
        "Frappe-like rows (10 fields, frappe's vocabulary sizes):",
        "",
        "| variant | rows/s | vs before |",
        "|---|---|---|",
    ]
    for name, rate in frappe.items():
        lines.append(f"| {name} | {rate:,.0f} | {rate / before:.2f}x |")
    lines += [
        "",
        "26 fields, each of `V` values (Zipf-like); each table holds the values that "
        f"{args.table_rows_of:,} rows draw (0: all V); " + '"before" timed over '
        f"{args.old_steps} steps (dense Adam touches every row of every table):",
        "",
        "| values per field | table rows | table Adam (now) | now rows/s | lazy table Adam rows/s "
        "| before rows/s | now vs before |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, (now, lazy, old, table_rows, whole) in vocab.items():
        mode = "whole" if whole else "lazy"
        rates = f"{now:,.0f} | {lazy:,.0f} | {old:,.0f} | {now / old:.2f}x"
        lines.append(f"| {v:.0e} | {table_rows:,} | {mode} | {rates} |")
    if len(vocab) > 1:
        rates = list(vocab.values())
        lines += [
            "",
            f"Now, largest vocabulary vs smallest: {rates[-1][0] / rates[0][0]:.2f}x the rows/s "
            f"(lazy table Adam at both: {rates[-1][1] / rates[0][1]:.2f}x).",
        ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("speed", text)


if __name__ == "__main__":
    main()
