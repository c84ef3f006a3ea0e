"""The command line: the main job and the ``train``, ``predict`` and ``export`` commands.

``python -m skdeepfm`` (or ``skdeepfm``) without a command runs the main
job: fit DeepFMClassifier on generated ad clicks (or ``--data``) and compare
it with a one-hot logistic regression. With a command:

- ``train --data F --target T --model M``: fit on a CSV or Parquet file and
  write the model with :func:`skdeepfm.save`;
- ``predict --model M --data F --out O``: score a file in chunks, one output
  row per input row;
- ``export --model M --out model.onnx``: :func:`skdeepfm.to_onnx`.

Bad input (a missing file, an unknown column, a file that is not a model)
prints one line naming it and exits with status 2.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from ._tables import TableError, check_columns, iter_table, read_table, write_chunks

COMMANDS = ("train", "predict", "export")


class CommandError(Exception):
    """Bad input to a command: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), raised as :class:`CommandError`."""

    def error(self, message):
        raise CommandError(message)


def build_parser():
    """The main job's parser; ``--help`` documents every option and lists the commands."""
    parser = _Parser(
        prog="python -m skdeepfm",
        description=(
            "Fit DeepFMClassifier and compare it with a one-hot logistic regression. Commands: "
            "train, predict, export (python -m skdeepfm COMMAND --help)."
        ),
        epilog="Example: python -m skdeepfm --data clicks.csv --target clicked --save model.skdeepfm",
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
    parser.add_argument(
        "--save", type=Path, help="save the fitted DeepFMClassifier (skdeepfm.save) to this path"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument("--version", action="version", version=f"skdeepfm {__version__}")
    return parser


def build_command_parser(command):
    """The parser of one command (``train``, ``predict`` or ``export``)."""
    prog = f"python -m skdeepfm {command}"
    if command == "train":
        parser = _Parser(
            prog=prog, description="Fit a DeepFM estimator on a table and save it (skdeepfm.save)."
        )
        parser.add_argument("--data", type=Path, required=True, help="the training table, .csv or .parquet")
        parser.add_argument("--target", required=True, help="the label (or target) column of --data")
        parser.add_argument("--model", type=Path, required=True, help="where to write the fitted model")
        parser.add_argument(
            "--regression", action="store_true", help="fit DeepFMRegressor (default: DeepFMClassifier)"
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="an estimator parameter, e.g. --param max_iter=20 --param hidden_layer_sizes=[64,32] "
            "(values are Python literals; other text is a string)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    elif command == "predict":
        parser = _Parser(prog=prog, description="Score a table with a saved model, in chunks.")
        parser.add_argument(
            "--model", type=Path, required=True, help="a model written by train or skdeepfm.save"
        )
        parser.add_argument("--data", type=Path, required=True, help="the table to score, .csv or .parquet")
        parser.add_argument(
            "--out", type=Path, required=True, help="where to write the scores, .csv or .parquet"
        )
        parser.add_argument(
            "--keep", action="append", default=[], metavar="COLUMN", help="a column of --data to copy (an id)"
        )
        parser.add_argument(
            "--chunk-size", type=int, default=100_000, help="rows read and scored at a time (default: 100000)"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
    else:
        parser = _Parser(prog=prog, description="Export a saved model as one ONNX graph (skdeepfm.to_onnx).")
        parser.add_argument(
            "--model", type=Path, required=True, help="a model written by train or skdeepfm.save"
        )
        parser.add_argument("--out", type=Path, required=True, help="where to write the .onnx file")
        parser.add_argument(
            "--dtype", choices=("float32", "float64"), default="float32", help="precision (default: float32)"
        )
    return parser


def _parse_params(items):
    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--param {item!r} must be NAME=VALUE, e.g. --param max_iter=20")
        try:
            params[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[name] = text
    return params


def _load_model(path):
    from ._persistence import load

    if not path.is_file():
        raise CommandError(f"--model {str(path)!r}: no such file")
    return load(path)


def run_train(args):
    """``train``: fit on ``--data`` and save to ``--model``; returns the exit status."""
    from . import DeepFMClassifier, DeepFMRegressor
    from ._persistence import save

    estimator = DeepFMRegressor() if args.regression else DeepFMClassifier()
    params = _parse_params(args.param)
    valid = estimator.get_params()
    for name in params:
        if name not in valid:
            raise CommandError(
                f"--param {name!r} is not a parameter of {type(estimator).__name__}; "
                f"its parameters are {', '.join(sorted(valid))}"
            )
    estimator.set_params(**{"verbose": 0 if args.quiet else 1, **params})
    frame = read_table(args.data, "--data")
    check_columns(frame.columns, [args.target], args.data, "--target")
    y = frame[args.target]
    X = frame.drop(columns=[args.target])
    if y.isna().any():
        raise CommandError(
            f"--target {args.target!r} has {int(y.isna().sum())} missing values in {args.data.name}; "
            "drop those rows first"
        )
    if not args.regression and y.nunique() < 2:
        raise CommandError(
            f"--target {args.target!r} has one class ({y.iloc[0]!r}) in {args.data.name}; "
            "a classifier needs at least two (use --regression for a numeric target)"
        )
    if X.shape[1] == 0:
        raise CommandError(f"--data {args.data.name} has no column besides the target {args.target!r}")
    started = time.perf_counter()
    estimator.fit(X, y.to_numpy())
    save(estimator, args.model)
    print(
        f"Trained {type(estimator).__name__} on {len(X)} rows and {X.shape[1]} fields of {args.data.name} "
        f"in {time.perf_counter() - started:.1f} s ({estimator.n_iter_} epochs); saved to {args.model}."
    )
    return 0


def _score_columns(model, X):
    """The output columns for the rows of ``X``: each class's probability and the label, or the prediction."""
    if hasattr(model, "classes_"):
        proba = model.predict_proba(X)
        out = {f"proba_{c}": proba[:, i] for i, c in enumerate(model.classes_)}
        out["label"] = model.classes_[np.argmax(proba, axis=1)]
        return out
    return {"prediction": model.predict(X)}


def run_predict(args):
    """``predict``: score ``--data`` chunk by chunk into ``--out``; returns the exit status."""
    from tqdm.auto import tqdm

    if args.chunk_size < 1:
        raise CommandError(f"--chunk-size must be a positive number of rows; got {args.chunk_size}")
    model = _load_model(args.model)
    fields = [str(name) for name in getattr(model, "feature_names_in_", [])]
    if not fields:
        raise CommandError(f"--model {args.model.name} was trained without column names; predict needs them")
    chunks = iter_table(args.data, "--data", args.chunk_size, fields, args.keep, _string_fields(model))
    n_rows = 0
    with tqdm(desc="Scoring", unit=" rows", disable=args.quiet, file=sys.stderr) as progress:

        def scored():
            nonlocal n_rows
            for chunk in chunks:
                out = pd.DataFrame({name: chunk[name].to_numpy() for name in args.keep})
                for name, values in _score_columns(model, chunk[fields]).items():
                    out[name] = values
                n_rows += len(chunk)
                progress.update(len(chunk))
                yield out

        write_chunks(scored(), args.out, "--out")
    print(f"Scored {n_rows} rows of {args.data.name} into {args.out}.")
    return 0


def _string_fields(model):
    """Fields whose vocabulary is strings: read as text, so that a chunk never guesses numbers."""
    encoder = model.encoder_
    names = encoder.feature_names_in_
    out = []
    for j, categories in enumerate(encoder.categories_):
        learned = encoder.field_kinds_[j] != "numeric" and categories is not None and len(categories)
        if learned and all(isinstance(c, str) for c in categories):
            out.append(str(names[j]))
    return out


def run_export(args):
    """``export``: write ``--model`` as ONNX to ``--out``; returns the exit status."""
    from ._onnx import to_onnx

    model = _load_model(args.model)
    to_onnx(model, args.out, dtype=args.dtype)
    print(f"Exported {type(model).__name__} to {args.out} ({args.dtype}).")
    return 0


def run_main_job(args, parser):
    """The main job: DeepFMClassifier beside a one-hot logistic regression; returns the exit status."""
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    from . import DeepFMClassifier
    from ._baseline import linear_baseline
    from ._persistence import save
    from .datasets import make_ad_clicks

    if args.data is not None and args.target is None:
        parser.error("--target is required with --data")
    if args.data is None:
        X, y = make_ad_clicks(args.n_samples, random_state=args.random_state)
        source = f"generated ad clicks ({args.n_samples} rows, make_ad_clicks)"
    else:
        frame = read_table(args.data, "--data")
        check_columns(frame.columns, [args.target], args.data, "--target")
        X, y = frame.drop(columns=[args.target]), frame[args.target].to_numpy()
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

    def scores(proba):
        y01 = (y_test == positive).astype(int)
        return roc_auc_score(y01, proba), log_loss(y01, proba, labels=[0, 1])

    rows = [
        ("DeepFMClassifier", scores(model.predict_proba(X_test)[:, 1]), deepfm_seconds),
        ("LogisticRegression (one-hot)", scores(baseline.predict_proba(X_test)[:, 1]), baseline_seconds),
    ]
    print(f"\n{'model':<28} {'test AUC':>9} {'log-loss':>9} {'fit s':>7}")
    for name, (auc, loss), seconds in rows:
        print(f"{name:<28} {auc:>9.4f} {loss:>9.4f} {seconds:>7.1f}")
    device = model.network_.offsets.device
    if model.validation_scores_ is not None and len(model.validation_scores_) != model.n_iter_:
        print(
            f"DeepFMClassifier chose {model.n_iter_} epochs of {len(model.validation_scores_)} "
            f"by early stopping and refit on all training rows, on {device}."
        )
    else:
        print(f"DeepFMClassifier ran {model.n_iter_} epochs on {device}.")
    if args.save is not None:
        save(model, args.save)
        print(f"Saved the fitted model to {args.save} (load it with skdeepfm.load).")
    return 0


_RUN = {"train": run_train, "predict": run_predict, "export": run_export}


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv=None):
    """Run the command line; returns the process exit status (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    prog = "skdeepfm" if command is None else f"skdeepfm {command}"
    try:
        if command is None:
            parser = build_parser()
            return run_main_job(parser.parse_args(argv), parser)
        return _RUN[command](build_command_parser(command).parse_args(argv[1:]))
    except (CommandError, TableError, ValueError, TypeError, OSError, ImportError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
