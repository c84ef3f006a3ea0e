"""The quality panel: real tables with a fixed train/test split each, read from ``../shared/data``.

Each loader returns a :class:`Table` of raw columns (strings, floats, lists), the way a user
would hand them to ``DeepFMClassifier``; nothing is encoded here. The files' licences forbid
copying them into this repository, so they are read from ``--data-dir``.

Tables:

* ``frappe_full``: ``frappe-full/train_raw.csv.gz`` (202,027 rows) to train,
  ``test_raw.csv.gz`` (28,860) to test; ``valid_raw.csv.gz`` is the published protocol's
  early-stopping file (:attr:`Table.validation`), used only by the recipe run;
* ``frappe_small``: ``frappe-full/valid_raw.csv.gz`` (57,722 rows) to train, the same test file;
* ``movielens``: ``movielens-latest-small``, label ``rating >= 4``; fields user, movie, genres (a
  list field), the year parsed from the title, the hour of the rating; each user's last 20 % of
  ratings by time is the test set;
* ``criteo``: ``criteo/sample.train.gz``, first 8,000 rows to train, last 2,000 to test, I1..I13
  numeric, C1..C26 categorical;
* ``avazu``: ``avazu/train.gz``, first 7,200 rows to train, the rest to test, every column a code;
* ``ad_clicks_2k``, ``ad_clicks_5k``, ``ad_clicks_50k``: ``make_ad_clicks`` with that many rows
  (``random_state=0``) to train and 20,000 rows (``random_state=1``) to test.

Check splits (:data:`CHECK_TABLES`), to see whether a default chosen on the panel carries over:
``criteo_last8k`` and ``avazu_last`` (the files' other rows to test), ``criteo_4k`` (half the
training rows), ``ad_clicks_3k_other`` / ``12k_other`` / ``20k_other`` (``random_state`` 2 and 3).
They are re-splits of the panel's sources, not independent tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skdeepfm.datasets import make_ad_clicks

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FRAPPE_FIELDS = [
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
]


@dataclass
class Table:
    """One table of the panel: raw training and test columns, 0/1 labels."""

    name: str
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    split: str
    #: (X, y) of a separate early-stopping file, where the published protocol has one.
    validation: tuple | None = None


def _read_frappe(path):
    data = pd.read_csv(path, dtype=str, keep_default_na=False)
    return data[FRAPPE_FIELDS], data["label"].astype(np.int64).to_numpy()


def load_frappe_full(data_dir):
    folder = Path(data_dir) / "frappe-full"
    X_train, y_train = _read_frappe(folder / "train_raw.csv.gz")
    X_test, y_test = _read_frappe(folder / "test_raw.csv.gz")
    validation = _read_frappe(folder / "valid_raw.csv.gz")
    split = "frappe-full: `train_raw` (202,027 rows) to train, `test_raw` (28,860) to test"
    return Table("frappe_full", X_train, y_train, X_test, y_test, split, validation)


def load_frappe_small(data_dir):
    folder = Path(data_dir) / "frappe-full"
    X_train, y_train = _read_frappe(folder / "valid_raw.csv.gz")
    X_test, y_test = _read_frappe(folder / "test_raw.csv.gz")
    split = "frappe-small: `valid_raw` (57,722 rows) to train, `test_raw` (28,860) to test"
    return Table("frappe_small", X_train, y_train, X_test, y_test, split)


def load_movielens(data_dir, test_fraction=0.2):
    folder = Path(data_dir) / "movielens-latest-small"
    ratings = pd.read_csv(folder / "ratings.csv.gz")
    movies = pd.read_csv(folder / "movies.csv.gz")
    years = movies["title"].str.extract(r"\((\d{4})\)\s*$", expand=False)
    genres = movies["genres"].map(lambda text: [] if text == "(no genres listed)" else text.split("|"))
    by_movie = pd.DataFrame({"movieId": movies["movieId"], "year": years, "genres": genres})
    data = ratings.merge(by_movie, on="movieId", how="left")
    data = data.sort_values(["userId", "timestamp", "movieId"], kind="stable").reset_index(drop=True)
    # Each user's last test_fraction of ratings (by time) is the test set.
    position = data.groupby("userId").cumcount()
    count = data.groupby("userId")["movieId"].transform("size")
    is_test = position >= np.ceil(count * (1 - test_fraction))
    X = pd.DataFrame(
        {
            "user": data["userId"].astype(str),
            "movie": data["movieId"].astype(str),
            "genres": data["genres"],
            "year": data["year"].fillna("unknown").astype(str),
            "hour": pd.to_datetime(data["timestamp"], unit="s").dt.hour.astype(str),
        }
    )
    y = (data["rating"] >= 4).astype(np.int64).to_numpy()
    train, test = ~is_test.to_numpy(), is_test.to_numpy()
    split = (
        f"movielens-latest-small, label rating >= 4: each user's first 80 % of ratings by time "
        f"({train.sum():,} rows) to train, last 20 % ({test.sum():,}) to test"
    )
    return Table(
        "movielens",
        X[train].reset_index(drop=True),
        y[train],
        X[test].reset_index(drop=True),
        y[test],
        split,
    )


def load_criteo(data_dir, n_train=8_000):
    integers = [f"I{i}" for i in range(1, 14)]
    names = ["label", *integers, *[f"C{i}" for i in range(1, 27)]]
    data = pd.read_csv(
        Path(data_dir) / "criteo" / "sample.train.gz",
        sep="\t",
        header=None,
        names=names,
        dtype=dict.fromkeys(integers, "float64"),
    )
    X, y = data.drop(columns="label"), data["label"].to_numpy()
    split = f"Criteo `sample.train.gz`: first {n_train:,} rows to train, last {len(X) - n_train:,} to test"
    return Table(
        "criteo", X.iloc[:n_train], y[:n_train], X.iloc[n_train:].reset_index(drop=True), y[n_train:], split
    )


def load_avazu(data_dir, n_train=7_200):
    data = pd.read_csv(Path(data_dir) / "avazu" / "train.gz")
    X, y = data.drop(columns=["id", "click"]).astype(str), data["click"].to_numpy()
    split = f"Avazu `train.gz`: first {n_train:,} rows to train, last {len(X) - n_train:,} to test"
    return Table(
        "avazu", X.iloc[:n_train], y[:n_train], X.iloc[n_train:].reset_index(drop=True), y[n_train:], split
    )


def load_ad_clicks(n_train, n_test=20_000, seeds=(0, 1), name=None):
    X_train, y_train = make_ad_clicks(n_train, random_state=seeds[0])
    X_test, y_test = make_ad_clicks(n_test, random_state=seeds[1])
    split = (
        f"`make_ad_clicks`: {n_train:,} rows (random_state={seeds[0]}) to train, {n_test:,} "
        f"(random_state={seeds[1]}) to test"
    )
    name = name or f"ad_clicks_{n_train // 1000}k"
    return Table(name, X_train, np.asarray(y_train), X_test, np.asarray(y_test), split)


def _swapped(table, name, n_test, description):
    """``table``'s rows, the first ``n_test`` of them to test and the rest to train."""
    X = pd.concat([table.X_train, table.X_test], ignore_index=True)
    y = np.concatenate([table.y_train, table.y_test])
    return Table(
        name, X.iloc[n_test:].reset_index(drop=True), y[n_test:], X.iloc[:n_test], y[:n_test], description
    )


def load_criteo_last(data_dir):
    table = load_criteo(data_dir)
    split = "Criteo `sample.train.gz`: last 8,000 rows to train, first 2,000 to test"
    return _swapped(table, "criteo_last8k", 2_000, split)


def load_criteo_4k(data_dir):
    table = load_criteo(data_dir, n_train=4_000)
    split = "Criteo `sample.train.gz`: first 4,000 rows to train, last 2,000 to test"
    return Table(
        "criteo_4k",
        table.X_train,
        table.y_train,
        table.X_test.iloc[-2_000:].reset_index(drop=True),
        table.y_test[-2_000:],
        split,
    )


def load_avazu_last(data_dir):
    table = load_avazu(data_dir)
    split = "Avazu `train.gz`: rows 1,800 on to train, first 1,800 to test"
    return _swapped(table, "avazu_last", 1_800, split)


LOADERS = {
    "frappe_full": load_frappe_full,
    "frappe_small": load_frappe_small,
    "movielens": load_movielens,
    "criteo": load_criteo,
    "avazu": load_avazu,
    "ad_clicks_2k": lambda data_dir: load_ad_clicks(2_000),
    "ad_clicks_5k": lambda data_dir: load_ad_clicks(5_000),
    "ad_clicks_50k": lambda data_dir: load_ad_clicks(50_000),
}
#: The public panel of the quality targets, then the calibration tables.
TABLES = list(LOADERS)

#: Splits kept aside to check a candidate default chosen on the panel: other rows of the
#: panel's files and generated tables of other sizes and seeds (not independent tables).
CHECK_LOADERS = {
    "criteo_last8k": load_criteo_last,
    "criteo_4k": load_criteo_4k,
    "avazu_last": load_avazu_last,
    **{
        f"ad_clicks_{n // 1000}k_other": (
            lambda data_dir, n=n: load_ad_clicks(n, seeds=(2, 3), name=f"ad_clicks_{n // 1000}k_other")
        )
        for n in (3_000, 12_000, 20_000)
    },
}
CHECK_TABLES = list(CHECK_LOADERS)


def load(name, data_dir=DEFAULT_DATA):
    """The table ``name`` (a key of :data:`LOADERS` or :data:`CHECK_LOADERS`)."""
    loaders = {**LOADERS, **CHECK_LOADERS}
    if name not in loaders:
        raise ValueError(f"Unknown table {name!r}; expected one of {', '.join(loaders)}.")
    return loaders[name](Path(data_dir))
