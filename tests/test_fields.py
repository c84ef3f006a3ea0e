"""Field kinds: numeric, multi-valued and infrequent categories, alone and mixed."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skdeepfm import INFREQUENT_INDEX, MISSING_INDEX, UNKNOWN_INDEX, FieldEncoder
from skdeepfm._encoder import EncodedFields
from skdeepfm._fields import (
    N_RESERVED,
    NUMERIC_CLIP,
    NUMERIC_INDEX,
    CategoricalField,
    flatten_cells,
    infrequent_mask,
)

# --- numeric fields --------------------------------------------------------


def test_numeric_fields_are_robustly_standardised():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])
    enc = FieldEncoder().fit(pd.DataFrame({"x": values}))
    assert enc.field_kinds_.tolist() == ["numeric"]
    assert enc.field_dims_.tolist() == [N_RESERVED + 1]
    q25, median, q75 = np.percentile(values[:5], [25, 50, 75])
    assert enc.numeric_center_[0] == median
    assert enc.numeric_scale_[0] == pytest.approx((q75 - q25) / 1.349)
    encoded = enc._encode_columns([values])
    np.testing.assert_array_equal(encoded.codes[:, 0], [NUMERIC_INDEX] * 5 + [MISSING_INDEX])
    expected = (values[:5] - median) / ((q75 - q25) / 1.349)
    np.testing.assert_allclose(encoded.values[:5, 0], expected, rtol=1e-6)
    assert encoded.values[5, 0] == 1.0  # the missing vector, unscaled
    out = enc.transform(pd.DataFrame({"x": values}))
    assert out.dtype == np.float64
    assert np.isnan(out[5, 0])


def test_outliers_are_clipped_and_do_not_move_the_scaling():
    rng = np.random.default_rng(0)
    base = rng.normal(10, 2, 1000)
    enc = FieldEncoder().fit(pd.DataFrame({"x": np.append(base, 1e12)}))
    assert enc.numeric_center_[0] == pytest.approx(np.median(base), abs=0.05)
    assert enc.numeric_scale_[0] == pytest.approx(2.0, rel=0.1)
    scaled = enc.transform(pd.DataFrame({"x": [1e12, -1e300, 10.0]}))[:, 0]
    assert scaled[0] == NUMERIC_CLIP
    assert scaled[1] == -NUMERIC_CLIP
    assert abs(scaled[2]) < 0.1


@pytest.mark.parametrize(
    ("column", "scale"),
    [([3.0, 3.0, 3.0, 3.0], 1.0), ([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], np.std([0] * 7 + [1]))],
    ids=["constant", "zero-iqr"],
)
def test_constant_and_zero_iqr_columns_get_a_finite_scale(column, scale):
    enc = FieldEncoder().fit(pd.DataFrame({"x": column}))
    assert enc.numeric_scale_[0] == pytest.approx(scale)
    assert np.isfinite(enc.transform(pd.DataFrame({"x": column}))).all()


def test_all_missing_numeric_column():
    enc = FieldEncoder().fit(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert (enc.numeric_center_[0], enc.numeric_scale_[0]) == (0.0, 1.0)
    assert np.isnan(enc.transform(pd.DataFrame({"x": [np.nan, 2.0]}))[0, 0])


def test_numeric_features_selects_by_name_index_or_mask():
    X = pd.DataFrame({"age": [20, 30, 40], "city": ["a", "b", "a"], "score": [0.1, 0.2, 0.3]})
    assert FieldEncoder().fit(X).field_kinds_.tolist() == ["categorical", "categorical", "numeric"]
    assert FieldEncoder(numeric_features=None).fit(X).field_kinds_.tolist() == ["categorical"] * 3
    for spec in (["age"], [0], [True, False, False]):
        kinds = FieldEncoder(numeric_features=spec).fit(X).field_kinds_.tolist()
        assert kinds == ["numeric", "categorical", "categorical"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["nope"], "numeric_features names column 'nope', which is not a column of X"),
        ([7], r"numeric_features must hold column names, indices in \[0, 2\)"),
        ([True], "numeric_features as a boolean mask must have 2 entries"),
        (["city"], "Column 'city' is numeric .* not a number"),
    ],
)
def test_bad_numeric_features_are_clear_errors(spec, message):
    X = pd.DataFrame({"age": [20, 30], "city": ["a", "b"]})
    with pytest.raises(ValueError, match=message):
        FieldEncoder(numeric_features=spec).fit(X)


def test_a_field_cannot_be_numeric_and_multivalued():
    X = pd.DataFrame({"a": [[1], [2]]})
    with pytest.raises(ValueError, match="Column 'a' is in both numeric_features and multivalue_features"):
        FieldEncoder(numeric_features=["a"], multivalue_features=["a"]).fit(X)


def test_non_numeric_value_at_transform_names_the_column():
    enc = FieldEncoder().fit(pd.DataFrame({"price": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="Column 'price' is numeric"):
        enc.transform(pd.DataFrame({"price": ["cheap", "dear"]}))


# --- multi-valued fields -----------------------------------------------------


def test_multivalued_cells_of_every_list_type():
    column = pd.Series(
        [["sports", "music"], ("music",), {"art"}, np.array(["sports"]), [], None, "music"], dtype=object
    )
    enc = FieldEncoder().fit(column.to_frame("interests"))
    assert enc.field_kinds_.tolist() == ["multivalue"]
    assert enc.categories_[0].tolist() == ["art", "music", "sports"]
    encoded = enc._encode_columns([column])
    elements, lengths = encoded.bags[0]
    art, music, sports = N_RESERVED, N_RESERVED + 1, N_RESERVED + 2
    np.testing.assert_array_equal(lengths, [2, 1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(elements, [sports, music, music, art, sports, MISSING_INDEX, music])
    cells = enc.transform(column.to_frame("interests"))[:, 0]
    assert [c.tolist() for c in cells] == [
        [sports, music],
        [music],
        [art],
        [sports],
        [],
        [MISSING_INDEX],
        [music],
    ]


def test_unseen_elements_never_raise():
    enc = FieldEncoder().fit(pd.DataFrame({"tags": [["a"], ["b"]]}))
    cells = enc.transform(pd.DataFrame({"tags": [["a", "zzz"], ["qqq"]]}))[:, 0]
    assert [c.tolist() for c in cells] == [[N_RESERVED, UNKNOWN_INDEX], [UNKNOWN_INDEX]]


def test_multivalue_features_none_treats_lists_as_categories():
    X = pd.DataFrame({"tags": [["a", "b"], ["a", "b"], ["c"]]})
    enc = FieldEncoder(multivalue_features=None).fit(X)
    assert enc.field_kinds_.tolist() == ["categorical"]
    codes = enc.transform(X)[:, 0]
    assert codes[0] == codes[1] != codes[2]


def test_inverse_transform_of_every_kind():
    X = pd.DataFrame({"city": ["x", None], "price": [1.0, np.nan], "tags": [["a", "b"], []]})
    enc = FieldEncoder().fit(X)
    back = enc.inverse_transform(enc.transform(X))
    assert back[0, 0] == "x"
    assert back[1, 0] is None
    assert back[0, 1] == pytest.approx(1.0)
    assert np.isnan(back[1, 1])
    assert back[0, 2] == ["a", "b"]
    assert back[1, 2] == []


# --- infrequent categories ---------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "min_frequency", "max_categories", "expected"),
    [
        ([5, 1, 3, 1], 2, None, [False, True, False, True]),
        ([5, 1, 3, 1], 0.2, None, [False, True, False, True]),  # 0.2 * 10 rows = 2
        ([5, 1, 3, 1], None, 3, [False, True, False, True]),  # 2 kept + the infrequent code
        ([5, 1, 3, 1], None, 5, [False, False, False, False]),
        ([2, 2, 2], None, 2, [False, True, True]),  # ties: the first in sorted order is kept
        ([4, 4], None, 1, [True, True]),
    ],
)
def test_infrequent_mask_follows_one_hot_encoder(counts, min_frequency, max_categories, expected):
    mask = infrequent_mask(np.array(counts), 10, min_frequency, max_categories)
    np.testing.assert_array_equal(mask, expected)


def test_infrequent_categories_share_a_code_distinct_from_unknown_and_missing():
    X = pd.DataFrame({"ad": ["a"] * 5 + ["b"] * 3 + ["c", "d", None]})
    enc = FieldEncoder(min_frequency=2).fit(X)
    assert enc.categories_[0].tolist() == ["a", "b"]
    assert enc.n_infrequent_categories_.tolist() == [2]
    assert enc.field_dims_.tolist() == [N_RESERVED + 2]
    codes = enc.transform(pd.DataFrame({"ad": ["a", "b", "c", "d", None, "never-seen"]}))[:, 0]
    # An unseen category joins the trained infrequent code in a field that has one.
    np.testing.assert_array_equal(
        codes,
        [N_RESERVED, N_RESERVED + 1, INFREQUENT_INDEX, INFREQUENT_INDEX, MISSING_INDEX, INFREQUENT_INDEX],
    )
    assert len({INFREQUENT_INDEX, UNKNOWN_INDEX, MISSING_INDEX}) == 3


def test_max_categories_bounds_the_vocabulary_of_a_huge_field():
    rng = np.random.default_rng(0)
    # A Zipf head and a tail of 50,000 values seen once.
    ids = np.concatenate(
        [rng.zipf(1.5, 250_000).astype(str), np.char.add("u", np.arange(50_000).astype(str))]
    )
    assert len(np.unique(ids)) > 50_000
    enc = FieldEncoder(max_categories=1000).fit(pd.DataFrame({"user": ids}))
    assert enc.field_dims_.tolist() == [999 + N_RESERVED]
    assert len(enc.categories_[0]) == 999
    assert len(pickle.dumps(enc)) < 200_000
    kept = set(enc.categories_[0])
    top = pd.Series(ids).value_counts().index[:900]
    assert set(top) <= kept


def test_min_frequency_applies_to_elements_of_multivalued_fields():
    X = pd.DataFrame({"tags": [["a", "b"], ["a"], ["a", "c"], ["b"]]})
    enc = FieldEncoder(min_frequency=2).fit(X)
    assert enc.categories_[0].tolist() == ["a", "b"]
    cells = enc.transform(pd.DataFrame({"tags": [["c", "a"]]}))[:, 0]
    assert cells[0].tolist() == [INFREQUENT_INDEX, N_RESERVED]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"min_frequency": 0}, "min_frequency"),
        ({"min_frequency": 1.5}, "min_frequency"),
        ({"max_categories": 0}, "max_categories"),
    ],
)
def test_frequency_parameters_are_validated(params, name):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of FieldEncoder"):
        FieldEncoder(**params).fit(pd.DataFrame({"a": ["x"]}))


# --- every kind in one DataFrame ------------------------------------------------


def mixed_frame():
    return pd.DataFrame(
        {
            "user": ["u1", "u2", "u1", None],
            "hour": [9.5, 22.0, np.nan, 13.25],
            "interests": [["music"], ["sports", "music"], [], None],
            "device": pd.Series(["phone", "tv", "phone", "phone"], dtype="category"),
        }
    )


def test_every_kind_in_one_dataframe():
    X = mixed_frame()
    enc = FieldEncoder().fit(X)
    assert enc.field_kinds_.tolist() == ["categorical", "numeric", "multivalue", "categorical"]
    np.testing.assert_array_equal(enc.get_feature_names_out(), ["user", "hour", "interests", "device"])
    out = enc.transform(X)
    assert out.dtype == object
    assert out.shape == (4, 4)
    assert out[:, 0].tolist() == [N_RESERVED, N_RESERVED + 1, N_RESERVED, MISSING_INDEX]
    assert np.isnan(out[2, 1])
    assert out[1, 2].tolist() == [N_RESERVED + 1, N_RESERVED]
    np.testing.assert_array_equal(enc.fit_transform(X)[:, 0], out[:, 0])
    restored = pickle.loads(pickle.dumps(enc))
    assert restored.transform(X)[1, 2].tolist() == out[1, 2].tolist()


def test_encoded_fields_take_keeps_the_bags_of_the_rows_taken():
    X = mixed_frame()
    encoded = FieldEncoder().fit(X)._encode_columns([X[name] for name in X])
    part = encoded.take([1, 3, 1])
    elements, lengths = part.bags[2]
    np.testing.assert_array_equal(lengths, [2, 1, 2])
    full_elements, full_lengths = encoded.bags[2]
    row1 = full_elements[full_lengths[0] : full_lengths[0] + full_lengths[1]]
    np.testing.assert_array_equal(elements, np.concatenate([row1, [MISSING_INDEX], row1]))
    np.testing.assert_array_equal(part.codes, encoded.codes[[1, 3, 1]])
    np.testing.assert_array_equal(part.values, encoded.values[[1, 3, 1]])
    assert isinstance(part, EncodedFields)
    assert len(part) == 3


@pytest.mark.parametrize(
    "cells",
    [
        ["a", "b", None, "zz", np.nan, "c", "a", pd.NA],
        [1, 2, 3, 99, None, 2.0, True, "1"],
        [b"x", ("t", 1), {"k": 1}, None, "x", 7, 1.5, b"x"],
    ],
)
def test_encoding_a_few_rows_matches_encoding_many(cells):
    # Few values are looked up in the field's cached vocabulary index, many are
    # factorized together with the vocabulary: both must give the same codes.
    field = CategoricalField()
    vocabulary = np.array(cells[:3] + [f"v{i}" for i in range(40)], dtype=object)
    field.fit_encode(vocabulary, len(vocabulary))
    values = np.array(cells * 10, dtype=object)
    many = field.encode(values)
    assert len(values) >= len(field.categories)
    few = np.concatenate([field.encode(values[i : i + 1]) for i in range(len(values))])
    np.testing.assert_array_equal(few, many)
    assert many[cells.index(None)] == MISSING_INDEX


def test_sorted_vocabularies_follow_pandas_order_for_any_strings():
    # Strings are sorted by pyarrow when it can encode them: the order must be
    # pandas' (Python's code point order), lone surrogates and NULs included.
    from skdeepfm._fields import _factorize

    rng = np.random.default_rng(0)
    alphabet = [*"abcXYZ019 éß中", "\U0001f600", "\ud800", "", "\x00"]
    for trial in range(100):
        cells = ["".join(rng.choice(alphabet, rng.integers(0, 4))) for _ in range(rng.integers(1, 60))]
        if trial % 2:
            cells = [c.replace("\ud800", "") for c in cells]
        cells[0] = None if trial % 5 == 0 else cells[0]
        values = np.array(cells, dtype=object)
        expected_codes, expected_uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
        codes, uniques = _factorize(values, sort=True)
        assert list(uniques) == list(expected_uniques)
        np.testing.assert_array_equal(codes, expected_codes)


@pytest.mark.parametrize(
    ("cells", "kind"),
    [
        (["a", None, "b", "c"], "categorical"),
        ([1, 2, None, 3], "categorical"),
        ([b"x", b"y", None, b"x"], "categorical"),
        (["a", ["b", "c"], None, "d"], "multivalue"),
        ([1, (2, 3), 4, 5], "multivalue"),
        ([2.5, {1, 2}, None, 1.0], "multivalue"),
        ([np.array(["a"]), "b", None, "c"], "multivalue"),
        ([[], ["a"], ["b"], None], "multivalue"),
    ],
)
def test_auto_detects_list_cells_in_object_columns(cells, kind):
    X = pd.DataFrame({"f": pd.Series(cells, dtype=object)})
    assert FieldEncoder(numeric_features=None).fit(X).field_kinds_.tolist() == [kind]


def test_set_cells_pool_their_elements_in_sorted_order():
    cells = np.empty(3, dtype=object)
    # {8, 1} iterates as 8, 1 whatever the hash seed (ints hash to themselves).
    cells[:] = [{"tech", "art", "music"}, frozenset({8, "x", 1}), ["z", "a"]]
    flat, lengths = flatten_cells(cells)
    # Sets in a total order (numbers before strings); lists keep theirs.
    assert flat.tolist() == ["art", "music", "tech", 1, 8, "x", "z", "a"]
    assert lengths.tolist() == [3, 3, 2]


SET_SCRIPT = """
import warnings
import numpy as np
import pandas as pd
import torch
from skdeepfm import DeepFMClassifier
warnings.simplefilter("ignore")
torch.set_num_threads(1)
rng = np.random.default_rng(0)
topics = [f"topic{i}" for i in range(12)]
tags = [set(rng.choice(topics, size=rng.integers(1, 6), replace=False).tolist()) for _ in range(300)]
X = pd.DataFrame({"tags": tags, "ad": rng.choice(["a", "b", "c"], 300)})
y = [int(len(t) > 3) for t in tags]
clf = DeepFMClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu").fit(X, y)
print(clf.predict_proba(X).tobytes().hex())
"""


def test_fits_on_set_cells_do_not_depend_on_the_python_hash_seed():
    import os
    import subprocess
    import sys

    import torch

    # This process and one with another hash seed iterate the same sets in different orders.
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    other = subprocess.run(
        [sys.executable, "-c", SET_SCRIPT],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    printed = []
    threads = torch.get_num_threads()
    try:
        exec(SET_SCRIPT.replace("print(", "printed.append("), {"printed": printed})
    finally:
        torch.set_num_threads(threads)
    assert printed == [other]
