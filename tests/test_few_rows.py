"""The cell-by-cell encoding of a few rows gives the general path's codes, values and errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import skdeepfm._base as base_module
from skdeepfm import DeepFMClassifier, FieldEncoder
from skdeepfm._few_rows import MAX_ROWS, few_rows_encoding, frame_arrays
from skdeepfm._fields import validate_fields

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

WORDS = ["a", "b", "c", "d", "é", "日本", "", "a b"]
MIXED = ["a", "b", 1, 2, 2.5, True, None, "\ud800", {"k": 1}]


def training_frame(n_samples=80, seed=0):
    rng = np.random.default_rng(seed)
    words = rng.choice(WORDS, n_samples).tolist()
    words[::9] = [None] * len(words[::9])
    return pd.DataFrame(
        {
            "s": pd.array(words, dtype="str"),
            "obj": pd.Series([MIXED[i] for i in rng.integers(0, len(MIXED), n_samples)], dtype=object),
            "i": rng.integers(0, 6, n_samples),
            "b": rng.integers(0, 2, n_samples).astype(bool),
            "c": pd.Categorical(rng.choice(WORDS[:4], n_samples)),
            "one": pd.array(["only"] * n_samples, dtype="str"),
            "x": np.where(rng.random(n_samples) < 0.1, np.nan, rng.normal(size=n_samples)),
            "n": rng.integers(-50, 50, n_samples),
        }
    )


def request_frame(rng, n_rows):
    """Rows of seen, unseen, infrequent, missing and other-typed cells, in varied dtypes."""

    def pick(pool):
        return [pool[i] for i in rng.integers(0, len(pool), n_rows)]

    ints = pick([0, 3, 5, 7, -1])
    columns = {
        "s": pd.array(pick([*WORDS, "new", None]), dtype="str"),
        "obj": pd.Series(pick([*MIXED, "new", 3, np.nan, pd.NA, float("inf"), b"a"]), dtype=object),
        "i": np.array(ints) if rng.random() < 0.7 else np.array(pick([0.0, 3.0, 9.0, np.nan])),
        "b": np.array(pick([True, False])),
        "c": pd.Categorical(pick(["a", "d", "new", None])),
        "one": pd.array(pick(["only", "other", None]), dtype="str"),
        "x": np.array(pick([0.0, -1.5, 2.0, np.nan, 1e308, -1e308])),
        "n": np.array(pick([0, 10, -(2**40), 2**40])),
    }
    if rng.random() < 0.3:
        columns["s"] = pd.Series(pick([*WORDS, "new", None, 1]), dtype=object)
    if rng.random() < 0.3:
        columns["x"] = np.array(pick([1, 2, -3]))
    return pd.DataFrame(columns)


def general_encoding(encoder, X):
    return encoder._encode_columns(validate_fields(encoder, X, reset=False))


def assert_same_encoding(fast, general):
    assert fast.codes.dtype == general.codes.dtype
    np.testing.assert_array_equal(fast.codes, general.codes)
    assert (fast.values is None) == (general.values is None)
    if general.values is not None:
        assert fast.values.dtype == general.values.dtype
        np.testing.assert_array_equal(fast.values, general.values)
    assert not general.bags
    assert not fast.bags


@pytest.mark.parametrize("parameters", [{}, {"min_frequency": 12}, {"max_categories": 4}])
def test_few_rows_encode_as_the_general_path(parameters):
    encoder = FieldEncoder(numeric_features=["x", "n"], **parameters).fit(training_frame())
    rng = np.random.default_rng(1)
    taken = 0
    for trial in range(300):
        X = request_frame(rng, 1 if trial % 2 else 1 + trial % MAX_ROWS)
        fast = few_rows_encoding(encoder, X)
        if fast is not None:
            taken += 1
            assert_same_encoding(fast, general_encoding(encoder, X))
    # Most requests take the cell-by-cell path; the others hold an infinity,
    # or a number where a vocabulary has no more categories than rows.
    assert taken > 150


def test_one_string_row_takes_the_few_rows_path():
    X = training_frame()[["s", "c", "one"]]
    encoder = FieldEncoder().fit(X)
    for i in range(len(X)):
        row = X.iloc[[i]]
        assert_same_encoding(few_rows_encoding(encoder, row), general_encoding(encoder, row))
    built = pd.DataFrame({"s": ["new"], "c": ["a"], "one": [None]})  # a request built afresh
    assert_same_encoding(few_rows_encoding(encoder, built), general_encoding(encoder, built))


def test_few_rows_leave_other_inputs_to_the_general_path():
    X = training_frame()
    encoder = FieldEncoder(numeric_features=["x", "n"]).fit(X)
    assert few_rows_encoding(encoder, X) is None  # too many rows
    assert few_rows_encoding(encoder, X.iloc[:0]) is None
    assert few_rows_encoding(encoder, X.iloc[:1].to_numpy()) is None
    assert few_rows_encoding(encoder, X.iloc[:1, ::-1]) is None  # columns in another order
    assert few_rows_encoding(FieldEncoder().fit(X[["s"]].to_numpy()), X[["s"]].iloc[:1]) is None
    hashed = FieldEncoder(numeric_features=["x", "n"], hash_buckets=50).fit(X)
    assert few_rows_encoding(hashed, X.iloc[:1]) is None
    lists = pd.DataFrame({"tags": [["a"], ["b", "c"], []] * 5, "s": ["x", "y", "z"] * 5})
    assert few_rows_encoding(FieldEncoder().fit(lists), lists.iloc[:1]) is None


def test_frame_arrays_follow_the_columns():
    X = training_frame(20)
    X["when"] = pd.date_range("2024-01-01", periods=20, tz="UTC")
    X.insert(0, "first", np.arange(20.0))
    for frame in (X, X.iloc[[3, 1]], X[X.columns[::-1]], X.assign(i=X["i"] * 2)):
        arrays = frame_arrays(frame)
        assert len(arrays) == frame.shape[1]
        for array, name in zip(arrays, frame.columns, strict=True):
            expected = frame[name].array
            assert len(array) == len(frame)
            same = pd.Series(array, dtype=expected.dtype, copy=False)
            assert same.equals(pd.Series(expected, dtype=expected.dtype, copy=False)), name


@pytest.fixture(scope="module")
def fitted():
    X = training_frame(300).drop(columns=["obj"])
    rng = np.random.default_rng(0)
    y = np.where(rng.random(len(X)) < 0.4, "click", "skip")
    clf = DeepFMClassifier(
        numeric_features=["x", "n"], hidden_layer_sizes=(8,), embedding_dim=4, max_iter=3, random_state=0
    ).fit(X, y)
    return clf, X


def test_predictions_of_a_few_rows_are_the_general_paths(fitted, monkeypatch):
    clf, X = fitted
    rng = np.random.default_rng(2)
    requests = [X.iloc[[i]] for i in range(0, 40, 7)]
    requests += [request_frame(rng, n).drop(columns=["obj"]) for n in (1, 1, 3, MAX_ROWS)]
    assert all(few_rows_encoding(clf, r) is not None for r in requests[:6])
    outputs = [(clf.predict_proba(r), clf.decision_function(r), clf.predict(r)) for r in requests]
    monkeypatch.setattr(base_module, "few_rows_encoding", lambda estimator, X: None)
    for request, (proba, scores, labels) in zip(requests, outputs, strict=True):
        np.testing.assert_array_equal(proba, clf.predict_proba(request))
        np.testing.assert_array_equal(scores, clf.decision_function(request))
        np.testing.assert_array_equal(labels, clf.predict(request))


def test_bad_rows_get_the_general_paths_errors(fitted):
    clf, X = fitted
    row = X.iloc[[0]]
    with pytest.raises(ValueError, match="infinity in column 'x'"):
        clf.predict_proba(row.assign(x=np.inf))
    with pytest.raises(ValueError, match="infinity in column 'i'"):
        clf.predict_proba(row.assign(i=-np.inf))
    with pytest.raises(ValueError, match="Column 'n' is numeric .* not a number"):
        clf.predict_proba(row.assign(n="ten"))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict_proba(row.drop(columns=["s"]))
    with pytest.raises(NotFittedError):
        DeepFMClassifier().predict_proba(row)
