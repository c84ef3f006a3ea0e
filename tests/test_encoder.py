import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skdeepfm import MISSING_INDEX, UNKNOWN_INDEX, FieldEncoder
from skdeepfm._fields import _ARROW_VOCABULARIES, N_RESERVED


def test_vocabulary_is_sorted_and_codes_follow_it():
    X = pd.DataFrame({"color": ["red", "blue", "green", "blue"], "size": [3, 1, 2, 1]})
    enc = FieldEncoder().fit(X)
    assert list(enc.categories_[0]) == ["blue", "green", "red"]
    assert list(enc.categories_[1]) == [1, 2, 3]
    np.testing.assert_array_equal(enc.field_dims_, [3 + N_RESERVED, 3 + N_RESERVED])
    codes = enc.transform(X)
    np.testing.assert_array_equal(codes[:, 0], np.array([2, 0, 1, 0]) + N_RESERVED)
    np.testing.assert_array_equal(codes[:, 1], np.array([2, 0, 1, 0]) + N_RESERVED)
    assert codes.dtype == np.int64


def test_vocabulary_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(["x", "y", "z", "w"], 200), "b": rng.integers(0, 50, 200)})
    shuffled = X.sample(frac=1.0, random_state=1)
    a, b = FieldEncoder().fit(X), FieldEncoder().fit(shuffled)
    for left, right in zip(a.categories_, b.categories_, strict=True):
        np.testing.assert_array_equal(left, right)


def test_unknown_categories_map_to_the_reserved_index_without_raising():
    enc = FieldEncoder().fit(pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}))
    codes = enc.transform(pd.DataFrame({"a": ["never", "x"], "b": [99, 2]}))
    np.testing.assert_array_equal(codes, [[UNKNOWN_INDEX, UNKNOWN_INDEX], [N_RESERVED, N_RESERVED + 1]])


def test_every_missing_kind_shares_the_missing_index():
    X = pd.DataFrame({"a": pd.Series(["x", None, np.nan, pd.NA, "y"], dtype=object)})
    enc = FieldEncoder().fit(X)
    assert list(enc.categories_[0]) == ["x", "y"]
    np.testing.assert_array_equal(
        enc.transform(X)[:, 0], [N_RESERVED, MISSING_INDEX, MISSING_INDEX, MISSING_INDEX, N_RESERVED + 1]
    )
    # Missing at transform time although never seen in fit.
    enc2 = FieldEncoder().fit(pd.DataFrame({"a": ["x"]}))
    np.testing.assert_array_equal(
        enc2.transform(pd.DataFrame({"a": [None, "x"]}))[:, 0], [MISSING_INDEX, N_RESERVED]
    )


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["b", "a", None, "b"], dtype="string"),
        pd.Series(["b", "a", None, "b"], dtype="str"),
        pd.Series(["b", "a", None, "b"], dtype=object),
        pd.Series(["b", "a", None, "b"], dtype="category"),
    ],
    ids=["string", "str", "object", "category"],
)
def test_string_like_dtypes_give_the_same_codes(column):
    enc = FieldEncoder().fit(column.to_frame("f"))
    assert list(enc.categories_[0]) == ["a", "b"]
    np.testing.assert_array_equal(
        enc.transform(column.to_frame("f"))[:, 0], [N_RESERVED + 1, N_RESERVED, MISSING_INDEX, N_RESERVED + 1]
    )


def test_ints_bools_and_floats_with_nan():
    X = pd.DataFrame(
        {
            "i": np.array([5, -1, 5], dtype=np.int32),
            "b": [True, False, True],
            "f": [0.5, np.nan, 2.0],
            "nullable": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    enc = FieldEncoder(numeric_features=None).fit(X)
    assert list(enc.categories_[0]) == [-1, 5]
    assert list(enc.categories_[1]) == [False, True]
    assert list(enc.categories_[2]) == [0.5, 2.0]
    assert list(enc.categories_[3]) == [1, 3]
    expected = np.array([[1, 1, 0, 0], [0, 0, -1, -1], [1, 1, 1, 1]]) + N_RESERVED
    expected[expected == N_RESERVED - 1] = MISSING_INDEX
    np.testing.assert_array_equal(enc.transform(X), expected)


@pytest.mark.filterwarnings("ignore:Column .* holds numbers with fractions beside other values")
def test_mixed_types_in_one_column_are_ordered_deterministically():
    X = np.array([["b"], [1], [2.5], ["a"], [None]], dtype=object)
    enc = FieldEncoder().fit(X)
    assert list(enc.categories_[0]) == [1, 2.5, "a", "b"]
    np.testing.assert_array_equal(
        enc.transform(X)[:, 0], [N_RESERVED + 3, N_RESERVED, N_RESERVED + 1, N_RESERVED + 2, MISSING_INDEX]
    )


def test_unhashable_cells_fall_back_to_their_repr():
    X = np.empty((3, 1), dtype=object)
    X[0, 0], X[1, 0], X[2, 0] = {"k": 1}, {"k": 2}, {"k": 1}
    enc = FieldEncoder().fit(X)
    assert enc.field_dims_[0] == 2 + N_RESERVED
    codes = enc.transform(X)[:, 0]
    assert codes[0] == codes[2] != codes[1]
    assert enc.transform(np.array([[{"k": 3}]], dtype=object))[0, 0] == UNKNOWN_INDEX


def test_numpy_arrays_and_feature_names():
    X = np.array([["a", "x"], ["b", "y"]], dtype=object)
    enc = FieldEncoder().fit(X)
    assert enc.n_features_in_ == 2
    assert not hasattr(enc, "feature_names_in_")
    np.testing.assert_array_equal(enc.get_feature_names_out(), ["x0", "x1"])
    df = pd.DataFrame(X, columns=["user", "ad"])
    enc = FieldEncoder().fit(df)
    np.testing.assert_array_equal(enc.feature_names_in_, ["user", "ad"])
    np.testing.assert_array_equal(enc.get_feature_names_out(), ["user", "ad"])


def test_set_output_pandas_names_the_fields():
    df = pd.DataFrame({"user": ["a", "b"], "ad": ["x", "y"]})
    out = FieldEncoder().set_output(transform="pandas").fit_transform(df)
    assert list(out.columns) == ["user", "ad"]
    assert out.shape == (2, 2)


def test_fit_transform_equals_fit_then_transform():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(["x", "y", None], 100), "b": rng.integers(0, 7, 100)})
    np.testing.assert_array_equal(FieldEncoder().fit_transform(X), FieldEncoder().fit(X).transform(X))


def test_inverse_transform_round_trips_known_categories():
    X = pd.DataFrame({"a": ["x", "y", None], "b": [1, 2, 1]})
    enc = FieldEncoder().fit(X)
    back = enc.inverse_transform(enc.transform(X))
    assert back.tolist() == [["x", 1], ["y", 2], [None, 1]]
    with pytest.raises(ValueError, match="Column 'a' of X must hold integer codes"):
        enc.inverse_transform(np.array([[99, 2]]))


def test_code_counts_count_training_values_per_code():
    X = pd.DataFrame(
        {
            "ad": ["a", "a", "b", "c", None, "a"],
            "price": [1.0, np.nan, 2.0, 3.0, 4.0, np.nan],
            "tags": [["x", "y"], ["x"], [], None, ["y", "z"], ["x"]],
        }
    )
    enc = FieldEncoder(min_frequency=2).fit(X)
    assert [len(c) for c in enc.code_counts_] == enc.field_dims_.tolist()
    assert all(c.dtype == np.int64 for c in enc.code_counts_)
    ad, price, tags = (c.tolist() for c in enc.code_counts_)
    # unknown, missing, infrequent ("b", "c"), "a"
    assert ad == [0, 1, 2, 3]
    # unknown, missing, infrequent, the numeric code
    assert price == [0, 2, 0, 4]
    # elements: unknown, missing (the None cell), infrequent ("z"), "x", "y"
    assert tags == [0, 1, 1, 3, 2]
    enc.transform(pd.DataFrame({"ad": ["new"], "price": [1.0], "tags": [["new"]]}))
    assert enc.code_counts_[0].tolist() == ad


def test_wrong_columns_at_transform_raise_sklearns_errors():
    enc = FieldEncoder().fit(np.array([["x", "y"]], dtype=object))
    with pytest.raises(ValueError, match="X has 1 features, but FieldEncoder is expecting 2 features"):
        enc.transform(np.array([["x"]], dtype=object))
    enc = FieldEncoder().fit(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(ValueError, match="feature names"):
        enc.transform(pd.DataFrame({"a": ["x"], "c": ["y"]}))


@pytest.mark.parametrize("numeric_features", ["auto", None])
def test_infinity_is_rejected_with_the_column_name(numeric_features):
    with pytest.raises(ValueError, match="infinity in column 'price'"):
        FieldEncoder(numeric_features=numeric_features).fit(pd.DataFrame({"price": [1.0, np.inf]}))
    enc = FieldEncoder(numeric_features=numeric_features).fit(pd.DataFrame({"price": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="infinity in column 'price'"):
        enc.transform(pd.DataFrame({"price": [-np.inf]}))


def test_empty_input_is_rejected():
    with pytest.raises(ValueError, match="0 sample"):
        FieldEncoder().fit(pd.DataFrame({"a": pd.Series([], dtype=object)}))
    with pytest.raises(ValueError, match="0 feature"):
        FieldEncoder().fit(pd.DataFrame(index=[0, 1]))


def test_pickle_and_clone():
    X = pd.DataFrame({"a": ["x", "y", None]})
    enc = FieldEncoder().fit(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(enc)).transform(X), enc.transform(X))
    assert not hasattr(clone(enc), "categories_")


def test_large_string_columns_are_encoded_vectorised():
    # 200k rows x 3 fields: a per-row Python loop would take seconds; the
    # hash-table path encodes them in a fraction of that. Checked by value.
    rng = np.random.default_rng(0)
    n = 200_000
    X = pd.DataFrame({f"c{j}": rng.integers(0, 5000, n).astype(str) for j in range(3)})
    codes = FieldEncoder().fit_transform(X)
    assert codes.shape == (n, 3)
    assert codes.min() >= N_RESERVED


@pytest.mark.filterwarnings("ignore:Column .* holds numbers with fractions beside other values")
def test_cells_pandas_cannot_order_still_get_a_deterministic_vocabulary():
    cells = [b"raw", 1.5, True, ("t", 1), "s", {"k": 1}, 2]
    X = pd.DataFrame({"a": pd.Series(cells, dtype=object)})
    enc = FieldEncoder(multivalue_features=None).fit(X)  # the tuple is one category here
    assert enc.categories_[0].tolist() == [1.5, 2, True, "s", b"raw", ("<unhashable>", "{'k': 1}"), ("t", 1)]
    reordered = FieldEncoder(multivalue_features=None).fit(X.iloc[::-1])
    assert reordered.categories_[0].tolist() == enc.categories_[0].tolist()
    codes = enc.transform(X)[:, 0]
    assert sorted(codes.tolist()) == list(range(N_RESERVED, N_RESERVED + 7))


@pytest.mark.parametrize(
    "dtype", ["str", "string[pyarrow]", pd.ArrowDtype(__import__("pyarrow").large_string())]
)
@pytest.mark.parametrize("min_frequency", [None, 2])
def test_pyarrow_string_columns_encode_as_object_strings_do(dtype, min_frequency):
    # Arrow-backed columns are factorized and looked up in pyarrow, without a
    # Python string per cell: the vocabulary and every code must be the same.
    rng = np.random.default_rng(3)
    words = np.array(["b", "a", "é", "z", "ab", "", "A", "日本"], dtype=object)
    train = words[rng.integers(0, 6, 300)]
    train[::17] = None
    test = np.concatenate([words[rng.integers(0, 8, 300)], [None, "unseen"]]).astype(object)
    frames = {}
    for kind, values in (("train", train), ("test", test)):
        plain = pd.DataFrame(
            {"f": pd.Series(values, dtype=object), "g": pd.Series(values[::-1], dtype=object)}
        )
        frames[kind] = (plain, plain.astype(dtype))
    plain_enc = FieldEncoder(min_frequency=min_frequency).fit(frames["train"][0])
    arrow_enc = FieldEncoder(min_frequency=min_frequency).fit(frames["train"][1])
    for left, right in zip(plain_enc.categories_, arrow_enc.categories_, strict=True):
        assert left.dtype == right.dtype == object
        assert left.tolist() == right.tolist()
    np.testing.assert_array_equal(arrow_enc.code_counts_[0], plain_enc.code_counts_[0])
    for kind in ("train", "test"):
        expected = plain_enc.transform(frames[kind][0])
        np.testing.assert_array_equal(arrow_enc.transform(frames[kind][1]), expected)
        # Few rows (a hash lookup per row) and many (one pyarrow pass) agree.
        np.testing.assert_array_equal(arrow_enc.transform(frames[kind][1].head(3)), expected[:3])
    assert MISSING_INDEX in arrow_enc.transform(frames["test"][1])[:, 0]
    assert all(field in _ARROW_VOCABULARIES for field in arrow_enc._fields)  # the pyarrow path ran


def test_pyarrow_strings_against_a_vocabulary_of_other_types():
    # Fitted on ints, then given strings: nothing matches, as with object columns.
    enc = FieldEncoder().fit(pd.DataFrame({"f": list(range(5)) * 2}))
    strings = pd.DataFrame({"f": pd.Series(["1", "2", None] * 4, dtype="str")})
    np.testing.assert_array_equal(enc.transform(strings)[:, 0], enc.transform(strings.astype(object))[:, 0])
    assert set(enc.transform(strings)[:, 0]) == {UNKNOWN_INDEX, MISSING_INDEX}


def test_codes_are_int32_inside_and_int64_outside():
    # int32 halves the memory of the encoded training set; transform keeps int64.
    X = pd.DataFrame({"a": ["x", "y", "z"] * 4, "b": [1, 2, 3, 4] * 3})
    from skdeepfm._fields import validate_fields

    enc = FieldEncoder().fit(X)
    assert enc._encode_columns(validate_fields(enc, X, reset=False)).codes.dtype == np.int32
    assert enc.transform(X).dtype == np.int64
    # More hash buckets than int32 holds: int64 inside too.
    wide = FieldEncoder(hash_buckets=2**31).fit(X)
    encoded = wide._encode_columns(validate_fields(wide, X, reset=False))
    assert encoded.codes.dtype == np.int64
    np.testing.assert_array_equal(encoded.codes, wide.transform(X))
