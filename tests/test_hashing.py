"""Hashed fields (FieldEncoder(hash_buckets=...)): stable codes for values never seen in fit."""

import hashlib
import json
import os
import pickle
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skdeepfm import INFREQUENT_INDEX, MISSING_INDEX, UNKNOWN_INDEX, FieldEncoder
from skdeepfm._fields import N_RESERVED, NUMERIC_INDEX
from skdeepfm._hashing import canonical_bytes, hash_codes, stable_hash


def code(value, buckets):
    """The code the documented formula gives."""
    return N_RESERVED + stable_hash(value) % buckets


def column_codes(values, buckets=2**20):
    """Codes of one categorical column, fitted and encoded by a hashing encoder."""
    X = pd.DataFrame({"a": pd.Series(values, dtype=object)})
    encoder = FieldEncoder(hash_buckets=buckets, numeric_features=None, multivalue_features=None)
    return encoder.fit_transform(X)[:, 0]


# --- the hash itself ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        ("red", b"sred", 0xC31F00AAEC0D775E),
        ("", b"s", 0xDE6ECFAAC38449E6),
        ("café", "scafé".encode(), 0x61D58D2C3190F4C2),
        (1, b"i1", 0x0ACF11BAFF1E2AAE),
        (-7, b"i-7", 0x08C03DB5E13850AF),
        (0.5, b"q1/2", 0xB0936157D49CF568),
        (b"1", b"b1", 0xDAFC1E327E9A2E99),
        (("a", 1), b"t2:sa2:i1", 0x079FFAF2664F1535),
    ],
)
def test_the_hash_is_blake2b_of_the_canonical_bytes_and_never_changes(value, key, expected):
    # Pinned values: a change here would silently re-code every trained model.
    assert canonical_bytes(value) == key
    assert stable_hash(value) == int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
    assert stable_hash(value) == expected


SCRIPT = """
import json
import numpy as np
import pandas as pd
from skdeepfm import FieldEncoder
X = pd.DataFrame({
    "user": ["u1", "u2", "zoé", None, "u1"],
    "id": [7, -3, 10**12, 0, 7],
    "raw": pd.Series([b"x", ("t", 1), 2.5, True, "x"], dtype=object),
    "tags": [["a", "b"], [], ["c"], None, ["b"]],
})
out = FieldEncoder(hash_buckets=1000, multivalue_features=["tags"]).fit_transform(X)
print(json.dumps({
    "python_hash": hash("u1"),
    "codes": [[c.tolist() if isinstance(c, np.ndarray) else int(c) for c in row] for row in out],
}))
"""


def test_codes_are_the_same_in_processes_with_different_hash_seeds():
    root = Path(__file__).resolve().parents[1]
    runs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0]["python_hash"] != runs[1]["python_hash"]  # the seeds did change hash()
    assert runs[0]["codes"] == runs[1]["codes"]
    assert runs[0]["codes"][0] == [
        code("u1", 1000),
        code(7, 1000),
        code(b"x", 1000),
        [code("a", 1000), code("b", 1000)],
    ]


# --- codes --------------------------------------------------------------------------


def test_codes_follow_the_formula_and_stay_in_range():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"user": rng.choice([f"u{i}" for i in range(300)], 2000), "n": rng.integers(0, 99, 2000)}
    )
    enc = FieldEncoder(hash_buckets=50).fit(X)
    np.testing.assert_array_equal(enc.field_dims_, [N_RESERVED + 50, N_RESERVED + 50])
    codes = enc.transform(X)
    assert codes.dtype == np.int64
    assert codes.min() >= N_RESERVED
    assert codes.max() < N_RESERVED + 50
    np.testing.assert_array_equal(codes[:, 0], [code(v, 50) for v in X["user"]])
    np.testing.assert_array_equal(codes[:, 1], [code(int(v), 50) for v in X["n"]])
    assert enc.n_infrequent_categories_.tolist() == [0, 0]


def test_a_value_has_one_code_in_fit_in_transform_and_in_every_encoder():
    first = pd.DataFrame({"city": ["paris", "oslo", "rome", "oslo"]})
    second = pd.DataFrame({"city": ["lima", "oslo", "paris"]})
    a, b = FieldEncoder(hash_buckets=97), FieldEncoder(hash_buckets=97)
    fitted_codes = a.fit_transform(first)[:, 0]
    b.fit(second)
    probe = pd.DataFrame({"city": ["oslo", "paris", "rome", "lima"]})
    np.testing.assert_array_equal(a.transform(probe), b.transform(probe))
    np.testing.assert_array_equal(fitted_codes, a.transform(first)[:, 0])
    assert fitted_codes[1] == fitted_codes[3] == a.transform(probe)[0, 0]


def test_values_unseen_in_fit_get_real_codes():
    enc = FieldEncoder(hash_buckets=2**16).fit(pd.DataFrame({"ad": ["a1", "a2"], "tags": [["x"], ["y"]]}))
    later = pd.DataFrame({"ad": ["new-ad", "a1", "other"], "tags": [["z", "x"], ["w"], []]})
    out = enc.transform(later)
    assert out[:, 0].tolist() == [code("new-ad", 2**16), code("a1", 2**16), code("other", 2**16)]
    assert [c.tolist() for c in out[:, 1]] == [[code("z", 2**16), code("x", 2**16)], [code("w", 2**16)], []]
    reserved = {UNKNOWN_INDEX, MISSING_INDEX, INFREQUENT_INDEX}
    assert not reserved & set(out[:, 0].tolist())


def test_missing_values_keep_the_missing_index():
    values = ["x", None, np.nan, pd.NA, pd.NaT, "x"]
    codes = column_codes(values)
    assert codes.tolist() == [code("x", 2**20)] + [MISSING_INDEX] * 4 + [code("x", 2**20)]
    assert column_codes([None, np.nan]).tolist() == [MISSING_INDEX, MISSING_INDEX]
    enc = FieldEncoder(hash_buckets=8).fit(pd.DataFrame({"tags": [["a", None], None, []]}))
    cells = enc.transform(pd.DataFrame({"tags": [["a", None], None, []]}))[:, 0]
    assert [c.tolist() for c in cells] == [[code("a", 8), MISSING_INDEX], [MISSING_INDEX], []]


def test_multivalued_fields_are_hashed_element_by_element():
    X = pd.DataFrame({"tags": [["sports", "music"], ("music",), {"art"}, np.array(["sports"]), "music"]})
    enc = FieldEncoder(hash_buckets=1000).fit(X)
    assert enc.field_kinds_.tolist() == ["multivalue"]
    assert enc.field_dims_.tolist() == [N_RESERVED + 1000]
    cells = [c.tolist() for c in enc.transform(X)[:, 0]]
    sports, music, art = code("sports", 1000), code("music", 1000), code("art", 1000)
    assert cells == [[sports, music], [music], [art], [sports], [music]]
    single = FieldEncoder(hash_buckets=1000).fit_transform(pd.DataFrame({"tag": ["sports", "music"]}))
    assert single[:, 0].tolist() == [sports, music]


def test_numeric_fields_are_learned_as_without_hashing():
    X = pd.DataFrame({"price": [1.0, 2.0, 3.0, np.nan, 10.0], "shop": list("abcab")})
    hashed, learned = FieldEncoder(hash_buckets=16).fit(X), FieldEncoder().fit(X)
    assert hashed.field_kinds_.tolist() == ["numeric", "categorical"]
    assert hashed.field_dims_.tolist() == [N_RESERVED + 1, N_RESERVED + 16]
    np.testing.assert_array_equal(hashed.numeric_center_, learned.numeric_center_)
    np.testing.assert_array_equal(hashed.numeric_scale_, learned.numeric_scale_)
    np.testing.assert_array_equal(hashed.transform(X)[:, 0], learned.transform(X)[:, 0])


# --- which values share a code ---------------------------------------------------


def test_distinct_types_are_not_conflated():
    codes = column_codes(["1", 1, b"1", ("1",), 1.5, "1.5", "True"])
    assert len(set(codes.tolist())) == 7


def test_equal_numbers_share_a_code_as_in_the_learned_vocabulary():
    # The learned vocabulary holds 1, 1.0 and True as one category (Python
    # equality): so does hashing, whatever the dtype of the column.
    ones = [1, 1.0, True, np.int8(1), np.float32(1.0), np.bool_(True), Decimal(1), Fraction(1), complex(1, 0)]
    assert len(set(column_codes(ones).tolist())) == 1
    halves = [0.5, np.float16(0.5), Decimal("0.5"), Fraction(1, 2)]
    assert len(set(column_codes(halves).tolist())) == 1
    assert column_codes([0.1])[0] != column_codes([Decimal("0.1")])[0]  # 0.1 is not exactly 1/10
    # An int column, the same ids as floats (after a NaN), as bools, as nullable Int64.
    enc = FieldEncoder(hash_buckets=2**20, numeric_features=None).fit(pd.DataFrame({"id": [0, 1, 2]}))
    as_int = enc.transform(pd.DataFrame({"id": [0, 1, 2]}))[:, 0]
    as_float = enc.transform(pd.DataFrame({"id": [0.0, 1.0, 2.0, np.nan]}))[:, 0]
    as_nullable = enc.transform(pd.DataFrame({"id": pd.array([0, 1, 2, None], dtype="Int64")}))[:, 0]
    as_bool = enc.transform(pd.DataFrame({"id": [False, True]}))[:, 0]
    np.testing.assert_array_equal(as_float, np.append(as_int, MISSING_INDEX))
    np.testing.assert_array_equal(as_nullable, as_float)
    np.testing.assert_array_equal(as_bool, as_int[:2])


def test_hashed_and_learned_codes_group_the_same_cells():
    cells = ["b", 1, 2.5, "a", None, True, 1.0, b"a", ("t", 1), ("t", 1.0), np.str_("b"), -0.0, 0]
    learned = FieldEncoder(numeric_features=None, multivalue_features=None).fit_transform(
        pd.DataFrame({"a": pd.Series(cells, dtype=object)})
    )[:, 0]
    hashed = column_codes(cells)
    for i in range(len(cells)):
        for j in range(len(cells)):
            assert (learned[i] == learned[j]) == (hashed[i] == hashed[j]), (cells[i], cells[j])


def test_codes_do_not_depend_on_the_order_of_the_rows():
    # pd.factorize keeps the first of equal values (1 or True): the code must not care.
    assert column_codes([1, True]).tolist() == column_codes([True, 1]).tolist()
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(["x", "y", "z"], 50), "b": rng.integers(0, 5, 50)})
    enc = FieldEncoder(hash_buckets=13)
    shuffled = X.sample(frac=1.0, random_state=1)
    np.testing.assert_array_equal(enc.fit_transform(X)[shuffled.index], enc.fit_transform(shuffled))


def test_datetimes_share_a_code_with_their_equal_instants():
    # Datetimes are hashed as instants where they are categories (cells of mixed columns, elements).
    def codes(values):
        return hash_codes(np.array(values, dtype=object), 2**20)

    naive = [datetime(2020, 1, 1), pd.Timestamp("2020-01-01"), np.datetime64("2020-01-01")]
    assert len(set(codes(naive).tolist())) == 1
    aware = [pd.Timestamp("2020-01-01 01:00", tz="Europe/Paris"), datetime(2020, 1, 1, tzinfo=timezone.utc)]
    assert len(set(codes(aware).tolist())) == 1
    assert codes(naive[:1])[0] != codes(aware[:1])[0]
    # A datetime column is numeric, hashed or not: never one hashed code per timestamp.
    enc = FieldEncoder(hash_buckets=2**20).fit(pd.DataFrame({"day": pd.to_datetime(["2020-01-01", None])}))
    assert enc.field_kinds_.tolist() == ["numeric"]


def test_unhashable_cells_are_keyed_by_their_repr_as_in_the_learned_vocabulary():
    X = np.empty((4, 1), dtype=object)
    X[0, 0], X[1, 0], X[2, 0], X[3, 0] = {"k": 1}, {"k": 2}, {"k": 1}, "{'k': 1}"
    codes = FieldEncoder(hash_buckets=2**20).fit_transform(X)[:, 0]
    assert codes[0] == codes[2] == code(("<unhashable>", "{'k': 1}"), 2**20)
    assert len({codes[0], codes[1], codes[3]}) == 3
    lists = FieldEncoder(hash_buckets=2**20, multivalue_features=None).fit_transform(
        pd.DataFrame({"tags": [["a", "b"], ["a", "b"], ["c"]]})
    )[:, 0]
    assert lists[0] == lists[1] != lists[2]


@pytest.mark.parametrize("buckets", [64, 1000])
@pytest.mark.parametrize(
    "values",
    [
        [f"user_{i:06d}" for i in range(40_000)],  # near-identical strings
        list(range(40_000)),  # consecutive integers
        [i + 0.25 for i in range(40_000)],
    ],
    ids=["strings", "ints", "floats"],
)
def test_buckets_are_filled_uniformly(values, buckets):
    codes = hash_codes(np.array(values, dtype=object), buckets) - N_RESERVED
    counts = np.bincount(codes, minlength=buckets)
    expected = len(values) / buckets
    chi2 = ((counts - expected) ** 2 / expected).sum()
    # chi2 has buckets - 1 degrees of freedom: mean buckets - 1, sd sqrt(2 (buckets - 1)).
    assert abs(chi2 - (buckets - 1)) < 6 * np.sqrt(2 * (buckets - 1))


def test_collisions_are_as_rare_as_for_a_random_function():
    n, buckets = 3000, 2**16
    codes = hash_codes(np.array([f"item-{i}" for i in range(n)], dtype=object), buckets)
    expected_distinct = buckets * (1 - (1 - 1 / buckets) ** n)  # about n - n**2 / (2 buckets)
    assert abs(len(np.unique(codes)) - expected_distinct) < 25


def test_large_columns_are_hashed_once_per_distinct_value():
    rng = np.random.default_rng(0)
    n = 200_000
    X = pd.DataFrame({f"c{j}": rng.integers(0, 5000, n).astype(str) for j in range(3)})
    codes = FieldEncoder(hash_buckets=1 << 12).fit_transform(X)
    lookup = {v: code(v, 1 << 12) for v in np.unique(X.to_numpy())}
    np.testing.assert_array_equal(codes[:1000], np.vectorize(lookup.get)(X.to_numpy()[:1000]))
    assert codes.min() >= N_RESERVED


# --- fitted attributes and parameters ------------------------------------------------


def test_categories_are_none_and_inverse_transform_says_hashing_is_one_way():
    X = pd.DataFrame({"price": [1.0, 2.0], "shop": ["a", "b"], "tags": [["x"], []]})
    enc = FieldEncoder(hash_buckets=16).fit(X)
    assert enc.categories_[0].tolist() == []
    assert enc.categories_[1] is None
    assert enc.categories_[2] is None
    with pytest.raises(
        ValueError, match=r"Column 'shop' is hashed \(hash_buckets=16\) and hashing is one-way"
    ):
        enc.inverse_transform(enc.transform(X))
    numeric_only = FieldEncoder(hash_buckets=16).fit(X[["price"]])
    back = numeric_only.inverse_transform(numeric_only.transform(X[["price"]]))[:, 0]
    assert back.tolist() == pytest.approx([1.0, 2.0])


def test_code_counts_count_training_values_per_hashed_code():
    X = pd.DataFrame(
        {
            "shop": ["a", "b", "a", None, "c"],
            "price": [1.0, np.nan, 2.0, 3.0, np.nan],
            "tags": [["x", "y"], ["x"], [], None, ["y", "y"]],
        }
    )
    enc = FieldEncoder(hash_buckets=8).fit(X)
    shop, price, tags = enc.code_counts_
    assert [c.dtype for c in enc.code_counts_] == [np.int64] * 3
    assert [len(c) for c in enc.code_counts_] == enc.field_dims_.tolist()
    expected = np.zeros(N_RESERVED + 8, dtype=np.int64)
    for value, count in [("a", 2), ("b", 1), ("c", 1)]:
        expected[code(value, 8)] += count
    expected[MISSING_INDEX] = 1
    np.testing.assert_array_equal(shop, expected)
    np.testing.assert_array_equal(price, [0, 2, 0, 3])
    expected = np.zeros(N_RESERVED + 8, dtype=np.int64)
    expected[code("x", 8)] += 2
    expected[code("y", 8)] += 3
    expected[MISSING_INDEX] = 1
    np.testing.assert_array_equal(tags, expected)
    assert price[NUMERIC_INDEX] == 3


@pytest.mark.parametrize("buckets", [0, -1, 1.5, "64"])
def test_hash_buckets_is_validated(buckets):
    with pytest.raises(InvalidParameterError, match="The 'hash_buckets' parameter of FieldEncoder must be"):
        FieldEncoder(hash_buckets=buckets).fit(pd.DataFrame({"a": ["x"]}))


@pytest.mark.parametrize("params", [{"min_frequency": 2}, {"max_categories": 10}])
def test_hash_buckets_cannot_be_combined_with_infrequent_categories(params):
    with pytest.raises(
        ValueError,
        match="The 'hash_buckets' parameter of FieldEncoder cannot be combined with 'min_frequency' or "
        "'max_categories'",
    ):
        FieldEncoder(hash_buckets=8, **params).fit(pd.DataFrame({"a": ["x"]}))


def test_pickle_and_clone_keep_the_hashing():
    X = pd.DataFrame({"a": ["x", "y", None], "tags": [["p"], ["q", "p"], []]})
    enc = FieldEncoder(hash_buckets=32).fit(X)
    restored = pickle.loads(pickle.dumps(enc))
    new = pd.DataFrame({"a": ["never-seen"], "tags": [["r"]]})
    assert restored.transform(new)[0, 0] == enc.transform(new)[0, 0] == code("never-seen", 32)
    assert clone(enc).hash_buckets == 32
