"""The quality panel: DeepFMClassifier with default parameters against LightGBM, CatBoost and one-hot LR.

Every table of ``_panel.TABLES`` (a fixed train/test split of raw columns each) runs in a fresh
process of its own, so that one table's memory and threads do not reach the next. Models:

* ``deepfm``: ``DeepFMClassifier(random_state=seed)``, the default parameters, over ``--seeds``;
* ``fm``: ``DeepFMClassifier(hidden_layer_sizes=(), random_state=seed)``, the same without the
  DNN, over the same seeds;
* ``lightgbm``: ``LGBMClassifier(verbose=-1, random_state=0)``, the library's defaults;
  categorical columns as pandas categories of the training values;
* ``catboost``: ``CatBoostClassifier(verbose=0, random_seed=0, thread_count=2)``, the library's
  defaults; categorical columns as ``cat_features`` of strings, a missing cell ``"<missing>"``;
* ``lr``: ``skdeepfm._baseline.linear_baseline``, one-hot, multi-hot and scaled numeric columns
  into a logistic regression.

For LightGBM and CatBoost a float column is numeric and a list column becomes one 0/1 column per
element seen in training. Each model gets the test ROC AUC, the test log-loss and the wall-clock
seconds of ``fit``; the DeepFM models also ``n_iter_`` and their mean predicted probability
against the test base rate.

``--params JSON`` is passed to the ``deepfm`` and ``fm`` models (``fm`` keeps
``hidden_layer_sizes=()``), so the script also compares candidate defaults; ``--label`` names
such a run in the output. ``--json-dir`` keeps each table's results as ``TABLE.json``;
``--from-json`` reads them back instead of fitting. ``--checks`` runs the check splits of
``_panel.CHECK_TABLES`` instead of the panel (printed, never written): a candidate chosen on the
panel should hold on them too.

Run by hand, not by pytest::

    python benchmarks/bench_quality.py [--data-dir DIR] [--tables criteo avazu ...]
        [--models deepfm fm lightgbm catboost lr] [--seeds 0 1 2]
        [--params '{"embedding_dim": 10}'] [--label NAME]
        [--json-dir DIR | --from-json DIR] [--write]

``--write`` replaces the quality section of ``benchmarks/RESULTS.md`` and writes
``benchmarks/quality_margin.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _panel
import numpy as np
from _peer_inputs import for_catboost, for_lightgbm
from _results import write_section
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, roc_auc_score

HERE = Path(__file__).resolve().parent
PNG = HERE / "quality_margin.png"
MODELS = ["deepfm", "fm", "lightgbm", "catboost", "lr"]
DEEPFM_MODELS = ("deepfm", "fm")
PEERS = ("lightgbm", "catboost", "lr")
NAMES = {"deepfm": "DeepFM", "fm": "FM", "lightgbm": "LightGBM", "catboost": "CatBoost", "lr": "one-hot LR"}
#: Published test scores on the same split, where known.
PUBLISHED = {
    "frappe_full": {"auc": 0.98395, "logloss": 0.1495, "source": "BARS, DeepFM on Frappe_x1"},
}


# ---------------------------------------------------------------- one table, in its own process


def _deepfm_params(args, model, seed):
    params = {key: tuple(value) if isinstance(value, list) else value for key, value in args.params.items()}
    if model == "fm":
        params["hidden_layer_sizes"] = ()
    return {**params, "random_state": seed}


def evaluate(model, X_train, y_train, X_test, y_test):
    """Fit ``model`` and score it on the test set: AUC, log-loss, fit seconds, mean probability."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        model.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - started
    converged = True
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            # Stopping at max_iter is part of the defaults being measured: recorded, not shown.
            converged = False
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    proba = model.predict_proba(X_test)[:, 1]
    return {
        "auc": float(roc_auc_score(y_test, proba)),
        "logloss": float(log_loss(y_test, proba, labels=[0, 1])),
        "fit_s": fit_seconds,
        "mean_proba": float(np.mean(proba)),
        "converged": converged,
    }


def _report(args, table, row):
    line = (
        f"  {args.prefix}{table['name']} {row['model']}"
        + (f" seed {row['seed']}" if row["seed"] is not None else "")
        + f": AUC {row['auc']:.4f}, log-loss {row['logloss']:.4f}, fit {row['fit_s']:.1f} s"
    )
    if "n_iter" in row:
        stopped = "" if row["converged"] else " (max_iter)"
        line += (
            f", {row['n_iter']} epochs{stopped}, mean p {row['mean_proba']:.4f} "
            f"vs base rate {table['base_rate']:.4f}"
        )
    print(line, flush=True)


def run_table(args):
    """Fit every model of ``args.models`` on the table ``args.one_table``; a dict of its results."""
    from skdeepfm._baseline import column_kinds, linear_baseline

    data = _panel.load(args.one_table, args.data_dir)
    kinds = column_kinds(data.X_train)
    counts = ", ".join(f"{len(kinds[kind])} {kind}" for kind in ("categorical", "numeric", "multivalue"))
    table = {
        "name": data.name,
        "label": args.label,
        "params": args.params,
        "split": data.split,
        "counts": counts,
        "n_train": len(data.X_train),
        "n_test": len(data.X_test),
        "base_rate": float(np.mean(data.y_test)),
        "environment": environment(),
        "results": [],
    }
    print(
        f"\n{args.prefix}{data.name}: train {data.X_train.shape}, test {data.X_test.shape}; "
        f"columns: {counts}; test base rate {table['base_rate']:.4f}",
        flush=True,
    )

    def record(model, seed, make_model, X_train, X_test):
        row = {"model": model, "seed": seed}
        fitted = make_model()
        row.update(evaluate(fitted, X_train, data.y_train, X_test, data.y_test))
        if model in DEEPFM_MODELS:
            row["n_iter"] = int(fitted.n_iter_)
        table["results"].append(row)
        _report(args, table, row)

    for model in (m for m in args.models if m in DEEPFM_MODELS):
        from skdeepfm import DeepFMClassifier

        for seed in args.seeds:
            params = _deepfm_params(args, model, seed)
            record(model, seed, lambda params=params: DeepFMClassifier(**params), data.X_train, data.X_test)
    if "lightgbm" in args.models:
        from lightgbm import LGBMClassifier

        train, test = for_lightgbm(data.X_train, data.X_test, kinds)
        record("lightgbm", None, lambda: LGBMClassifier(verbose=-1, random_state=0), train, test)
    if "catboost" in args.models:
        from catboost import CatBoostClassifier

        train, test, cat_features = for_catboost(data.X_train, data.X_test, kinds)
        # allow_writing_files=False: no catboost_info/ folder in the working directory.
        record(
            "catboost",
            None,
            lambda: CatBoostClassifier(
                verbose=0, random_seed=0, thread_count=2, cat_features=cat_features, allow_writing_files=False
            ),
            train,
            test,
        )
    if "lr" in args.models:
        record("lr", None, lambda: linear_baseline(data.X_train, random_state=0), data.X_train, data.X_test)
    return table


def environment():
    """Versions and machine, as a dict of strings."""
    import sklearn
    import torch

    import skdeepfm

    versions = {
        "python": platform.python_version(),
        "skdeepfm": skdeepfm.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
    }
    for name in ("lightgbm", "catboost"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
    return {"versions": versions, "machine": machine}


# ---------------------------------------------------------------- the panel, one process a table


def _child_command(args, name, path):
    command = [sys.executable, str(Path(__file__).resolve()), "--one-table", name, "--json-out", str(path)]
    command += ["--data-dir", str(args.data_dir), "--models", *args.models]
    command += ["--seeds", *map(str, args.seeds), "--params", json.dumps(args.params)]
    if args.label:
        command += ["--label", args.label]
    return command


def run_panel(args, json_dir):
    """Run each table of ``args.tables`` in a fresh process; the list of their results."""
    tables = []
    for name in args.tables:
        path = json_dir / f"{name}.json"
        status = subprocess.run(_child_command(args, name, path), check=False).returncode
        if status != 0:
            print(f"  {args.prefix}{name}: the process failed with exit status {status}", flush=True)
            continue
        tables.append(json.loads(path.read_text()))
    return tables


def read_panel(args, json_dir):
    """The results of ``args.tables`` that ``json_dir`` holds, as written by ``--json-dir``."""
    tables = []
    for name in args.tables:
        path = json_dir / f"{name}.json"
        if path.exists():
            tables.append(json.loads(path.read_text()))
        else:
            print(f"  {args.prefix}{name}: no {path}", flush=True)
    return tables


# ---------------------------------------------------------------- summaries


def summarize(table):
    """Per model: AUC and log-loss mean and std over seeds, fit seconds, epochs, mean probability."""
    summary = {}
    for model in MODELS:
        rows = [row for row in table["results"] if row["model"] == model]
        if not rows:
            continue
        stats = {"n": len(rows)}
        for key in ("auc", "logloss", "fit_s", "mean_proba", "n_iter"):
            values = np.array([row[key] for row in rows if key in row], dtype=float)
            if len(values):
                stats[key] = float(values.mean())
                stats[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        stats["aucs"] = [row["auc"] for row in rows]
        stats["converged"] = sum(row["converged"] for row in rows)
        summary[model] = stats
    return summary


def _mean_std(stats, key, digits=4):
    if stats["n"] == 1:
        return f"{stats[key]:.{digits}f}"
    return f"{stats[key]:.{digits}f} ± {stats[f'{key}_std']:.{digits}f}"


def markdown_table(table):
    """One data set: a row per model."""
    summary = summarize(table)
    lines = [
        f"### {table['name']}",
        "",
        f"{table['split']}; columns: {table['counts']}; test base rate {table['base_rate']:.4f}.",
        "",
        "| model | seeds | test AUC | test log-loss | fit s | epochs (`n_iter_`) | mean p / base rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, stats in summary.items():
        if model in DEEPFM_MODELS:
            stopped = stats["n"] - stats["converged"]
            epochs = f"{stats['n_iter']:.0f}" + (f" ({stopped} at max_iter)" if stopped else "")
            calibration = f"{stats['mean_proba']:.4f} / {table['base_rate']:.4f}"
        else:
            epochs = calibration = "—"
        lines.append(
            f"| {model} | {stats['n']} | {_mean_std(stats, 'auc')} | {_mean_std(stats, 'logloss')} "
            f"| {stats['fit_s']:.1f} | {epochs} | {calibration} |"
        )
    return "\n".join(lines)


def _holds(left, right, better):
    if left is None or right is None:
        return "—"
    return "yes" if better(left, right) else "no"


def summary_table(tables):
    """One row per data set: every model's AUC, the published score, log-loss and the targets."""
    lines = [
        "| table | deepfm AUC | fm AUC | LightGBM AUC | CatBoost AUC | LR AUC | published AUC / log-loss "
        "| deepfm log-loss | LR log-loss | AUC ≥ LightGBM | AUC ≥ LR | log-loss ≤ LR |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for table in tables:
        summary = summarize(table)

        def value(model, key, summary=summary):
            return summary[model][key] if model in summary else None

        aucs = [_mean_std(summary[m], "auc") if m in summary else "—" for m in MODELS]
        published = PUBLISHED.get(table["name"])
        reference = (
            f"{published['auc']} / {published['logloss']} ({published['source']})" if published else "—"
        )
        losses = [f"{value(m, 'logloss'):.4f}" if m in summary else "—" for m in ("deepfm", "lr")]
        targets = [
            _holds(value("deepfm", "auc"), value("lightgbm", "auc"), float.__ge__),
            _holds(value("deepfm", "auc"), value("lr", "auc"), float.__ge__),
            _holds(value("deepfm", "logloss"), value("lr", "logloss"), float.__le__),
        ]
        lines.append("| " + " | ".join([table["name"], *aucs, reference, *losses, *targets]) + " |")
    return "\n".join(lines)


def margins(tables):
    """Per table with deepfm and a peer: (name, best peer, mean and std over seeds of the AUC margin)."""
    rows = []
    for table in tables:
        summary = summarize(table)
        peers = [model for model in PEERS if model in summary]
        if "deepfm" not in summary or not peers:
            continue
        best = max(peers, key=lambda model: summary[model]["auc"])
        differences = np.array(summary["deepfm"]["aucs"]) - summary[best]["auc"]
        spread = float(differences.std(ddof=1)) if len(differences) > 1 else 0.0
        rows.append((table["name"], best, float(differences.mean()), spread))
    return rows


def plot_margin(tables, path, label=None):
    """Bars of deepfm's test AUC minus the best peer's, per table, with the seeds' spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = margins(tables)
    names = [name for name, _, _, _ in rows]
    means = np.array([mean for _, _, mean, _ in rows])
    spreads = [spread for _, _, _, spread in rows]
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 2), 4.8), layout="constrained")
    colours = ["tab:green" if mean >= 0 else "tab:red" for mean in means]
    positions = np.arange(len(rows))
    axes.bar(positions, means, yerr=spreads, capsize=4, color=colours, alpha=0.8)
    axes.axhline(0.0, color="black", linewidth=0.8)
    extent = max(np.abs(means).max() + max(spreads), 1e-3) if rows else 1e-3
    for position, (_, best, mean, spread) in zip(positions, rows, strict=True):
        offset = (spread + 0.04 * extent) * (1 if mean >= 0 else -1)
        axes.annotate(
            f"{mean:+.4f}\nvs {NAMES[best]}",
            (position, mean + offset),
            ha="center",
            va="bottom" if mean >= 0 else "top",
            fontsize=9,
        )
    axes.set_ylim(-1.35 * extent, 1.35 * extent)
    axes.set_xticks(positions, names, rotation=20, ha="right")
    axes.set_ylabel("test AUC: DeepFM minus the best peer")
    title = "DeepFM's test AUC minus the best peer's (LightGBM, CatBoost, one-hot LR)"
    note = "error bars: std over seeds" + (f"; {label}" if label else "")
    axes.set_title(f"{title}\n{note}", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=150)
    plt.close(figure)


def section(args, tables):
    """The quality section of RESULTS.md."""
    command = shlex.join(["python", "benchmarks/bench_quality.py", *sys.argv[1:]])
    env = tables[0]["environment"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    params = f"`{json.dumps(args.params)}`" if args.params else "default parameters"
    header = [
        "## Quality panel: default parameters against LightGBM, CatBoost and one-hot LR",
        "",
        f"`{command}` — each table in a fresh process, on its fixed train/test split:",
        "",
        f"* `deepfm`: `DeepFMClassifier(random_state=seed)` with {params};",
        "* `fm`: the same with `hidden_layer_sizes=()`;",
        "* `lightgbm`: `LGBMClassifier(verbose=-1, random_state=0)`, categorical columns as pandas",
        "  categories of the training values;",
        "* `catboost`: `CatBoostClassifier(verbose=0, random_seed=0, thread_count=2)`, categorical",
        '  columns as `cat_features` of strings (missing as `"<missing>"`);',
        "* `lr`: `skdeepfm._baseline.linear_baseline`, one-hot logistic regression.",
        "",
        "For LightGBM and CatBoost a float column is numeric and a list column one 0/1 column per",
        "element seen in training. AUC and log-loss are means ± std over seeds (LightGBM, CatBoost",
        "and LR are fitted once); fit s is the wall clock of `fit`.",
        "",
        f"Versions: {versions}. Date: {datetime.date.today().isoformat()}. Machine: {env['machine']}.",
    ]
    if args.label:
        header += ["", f"Run: {args.label}."]
    summary = [
        "### Summary",
        "",
        "The targets compare deepfm's mean over seeds with LightGBM's and LR's.",
        "",
        summary_table(tables),
        "",
        "![deepfm's test AUC minus the best peer's, per table](quality_margin.png)",
    ]
    parts = ["\n".join(header), "\n".join(summary), *(markdown_table(table) for table in tables)]
    return "\n\n".join(parts)


# ---------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=_panel.DEFAULT_DATA)
    tables = _panel.TABLES + _panel.CHECK_TABLES
    parser.add_argument("--tables", nargs="+", choices=tables, default=_panel.TABLES)
    parser.add_argument("--checks", action="store_true", help="run the check splits instead of the panel")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", type=json.loads, default={}, help="JSON object for deepfm and fm")
    parser.add_argument("--label", default="", help="a name for this run, in the output and the JSON")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json-dir", type=Path, help="keep each table's results as DIR/TABLE.json")
    group.add_argument("--from-json", type=Path, help="read the results from DIR/TABLE.json, fit nothing")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md and the PNG")
    parser.add_argument("--one-table", choices=tables, help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not isinstance(args.params, dict):
        parser.error(f"--params must be a JSON object; got {args.params!r}.")
    if args.checks:
        args.tables = _panel.CHECK_TABLES
    if args.write and set(args.tables) & set(_panel.CHECK_TABLES):
        parser.error("--write writes the panel's section; the check splits are printed only.")
    args.prefix = f"[{args.label}] " if args.label else ""
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.one_table:
        args.json_out.write_text(json.dumps(run_table(args), indent=1) + "\n")
        return 0
    if args.from_json:
        tables = read_panel(args, args.from_json)
    elif args.json_dir:
        args.json_dir.mkdir(parents=True, exist_ok=True)
        tables = run_panel(args, args.json_dir)
    else:
        with tempfile.TemporaryDirectory() as folder:
            tables = run_panel(args, Path(folder))
    if not tables:
        print("No results.", flush=True)
        return 1
    print(f"\n{args.prefix}Summary\n")
    print(summary_table(tables))
    print()
    print("\n\n".join(markdown_table(table) for table in tables), flush=True)
    if args.write:
        plot_margin(tables, PNG, args.label)
        write_section("quality", section(args, tables))
    return 0 if len(tables) == len(args.tables) else 1


if __name__ == "__main__":
    sys.exit(main())
