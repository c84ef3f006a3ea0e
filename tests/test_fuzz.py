"""Random tables of awkward cells: every call works or raises a clear ValueError/TypeError.

Every failing fit or predict_proba must raise ValueError or TypeError whose
message names the argument or column at fault, never an internal error, and
must leave an already fitted model predicting as before.
"""

import contextlib
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from skdeepfm import DeepFMClassifier, FieldEncoder

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = st.one_of(
    st.text(max_size=5),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=4),
    st.sampled_from([None, np.nan, pd.NA, pd.NaT, "", "é", "日本"]),
)
cells = st.one_of(
    scalars,
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2),
)
columns_of_one_kind = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=8),
    st.lists(st.text(max_size=4), min_size=1, max_size=8),
    st.lists(st.integers(-5, 5), min_size=1, max_size=8),
    st.lists(cells, min_size=1, max_size=8),
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny networks: on a busy machine, several threads spin more than they compute.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@st.composite
def frames(draw, n_rows=None, names=None):
    names = names or draw(
        st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3, unique=True)
    )
    n_rows = n_rows or draw(st.integers(1, 8))
    data = {}
    for name in names:
        values = draw(columns_of_one_kind)
        column = pd.Series((values * n_rows)[:n_rows], dtype=object)
        if draw(st.booleans()):
            column = column.infer_objects()
        data[name] = column
    return pd.DataFrame(data)


LABEL_KINDS = [[0, 1], ["click", "skip", "view"], [0.0, 1.0, np.nan]]


@st.composite
def labels(draw, n_rows):
    """Labels for ``n_rows`` rows, of one kind; now and then of another length."""
    options = draw(st.sampled_from(LABEL_KINDS))
    length = n_rows if draw(st.integers(0, 9)) else draw(st.integers(1, 9))
    return draw(st.lists(st.sampled_from(options), min_size=length, max_size=length))


def call(fn, *args, **kwargs):
    """Run ``fn``; None on success, else the ValueError/TypeError it raised (anything else fails)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        record(f"{fn.__name__}: {type(exc).__name__}")
        if not str(exc):
            raise AssertionError(f"{type(exc).__name__} without a message from {fn.__name__}") from exc
        return exc
    record(f"{fn.__name__}: ok")
    return None


def record(text):
    """A hypothesis event; nothing outside hypothesis tests."""
    with contextlib.suppress(InvalidArgument):
        event(text)


@SETTINGS
@given(data=st.data())
def test_encoder_fit_and_transform_never_crash(data):
    X = data.draw(frames())
    enc = FieldEncoder()
    if call(enc.fit, X) is not None:
        return
    X_new = data.draw(frames(names=list(X.columns)))
    error = call(enc.transform, X_new)
    if error is None:
        assert enc.transform(X_new).shape == X_new.shape


@SETTINGS
@given(data=st.data())
def test_classifier_fit_and_predict_never_crash(data):
    X = data.draw(frames())
    y = data.draw(labels(len(X)))
    clf = DeepFMClassifier(embedding_dim=2, hidden_layer_sizes=(4,), max_iter=1, random_state=0, device="cpu")
    if call(clf.fit, X, y) is not None:
        return
    X_new = data.draw(frames(names=list(X.columns)))
    if call(clf.predict_proba, X_new) is None:
        proba = clf.predict_proba(X_new)
        assert proba.shape == (len(X_new), len(clf.classes_))
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(1), 1.0)


@SETTINGS
@given(data=st.data())
def test_partial_fit_and_predict_never_crash(data):
    X = data.draw(frames())
    y = data.draw(labels(len(X)))
    classes = data.draw(st.sampled_from(LABEL_KINDS))
    clf = DeepFMClassifier(
        embedding_dim=2, hidden_layer_sizes=(4,), random_state=0, device="cpu", hash_buckets=16
    )
    if call(clf.partial_fit, X, y, classes=classes) is not None:
        assert not hasattr(clf, "network_")
        return
    before = clf.predict_proba(X)
    X_next = data.draw(frames(names=list(X.columns)))
    y_next = data.draw(labels(len(X_next)))
    if call(clf.partial_fit, X_next, y_next) is not None:
        np.testing.assert_array_equal(clf.predict_proba(X), before)
    X_new = data.draw(frames(names=list(X.columns)))
    if call(clf.predict_proba, X_new) is None:
        proba = clf.predict_proba(X_new)
        assert proba.shape == (len(X_new), len(clf.classes_))
        assert np.isfinite(proba).all()


@pytest.fixture(scope="module")
def fitted_model():
    X = pd.DataFrame(
        {
            "a": ["x", "y", "z", "x"] * 10,
            "b": [1.0, 2.0, np.nan, 4.0] * 10,
            "c": [["p"], [], None, ["q"]] * 10,
        }
    )
    y = [0, 1, 1, 0] * 10
    clf = DeepFMClassifier(embedding_dim=2, hidden_layer_sizes=(4,), max_iter=2, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clf.fit(X, y), X


def fit_a_fitted_copy(clf, X_fit, X, y, **fit_params):
    """Fit copies of the fitted ``clf`` (``warm_start`` False and True) on ``X, y``.

    Returns the error of the first failed fit, or None. A copy whose fit
    failed, and ``clf`` itself, must predict ``X_fit`` exactly as before; so
    must a copy whose ``partial_fit`` on the same rows failed.
    """
    before = clf.predict_proba(X_fit)
    first_error = None
    for warm_start in (False, True):
        refit = DeepFMClassifier(**clf.get_params())
        refit.__dict__.update(clf.__dict__)
        refit.warm_start = warm_start
        error = call(refit.fit, X, y, **fit_params)
        if error is not None:
            np.testing.assert_array_equal(refit.predict_proba(X_fit), before)
            first_error = first_error or error
    streamed = DeepFMClassifier(**clf.get_params())
    streamed.__dict__.update(clf.__dict__)
    if call(streamed.partial_fit, X, y, **fit_params) is not None:
        np.testing.assert_array_equal(streamed.predict_proba(X_fit), before)
    np.testing.assert_array_equal(clf.predict_proba(X_fit), before)
    return first_error


def assert_names_a_subject(error, subjects):
    """The message of ``error`` contains one of ``subjects`` (argument or column names)."""
    message = str(error)
    assert any(subject in message for subject in subjects), f"{message!r} names none of {subjects}"


@SETTINGS
@given(data=st.data())
def test_failed_calls_leave_a_fitted_model_unchanged(fitted_model, data):
    clf, X_fit = fitted_model
    before = clf.predict_proba(X_fit)
    X = data.draw(frames(names=["a", "b", "c"]))
    call(clf.predict_proba, X)
    fit_a_fitted_copy(clf, X_fit, X, data.draw(labels(len(X))))
    np.testing.assert_array_equal(clf.predict_proba(X_fit), before)


# -- sample weights, labels and batch sizes ----------------------------------------

weight_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-320, 1e300]),
)


@st.composite
def sample_weights(draw, n_rows):
    """None, a scalar, a list of weights of ``n_rows`` entries, or of another length."""
    kind = draw(st.sampled_from(["none", "scalar", "list", "list", "list", "wrong-length"]))
    if kind == "none":
        return None
    if kind == "scalar":
        return draw(weight_values)
    length = n_rows if kind == "list" else draw(st.integers(0, 9).filter(lambda n: n != n_rows))
    return draw(st.lists(weight_values, min_size=length, max_size=length))


AWKWARD_LABELS = [[0, 1], ["a", "b", ""], [0.0, np.nan], ["a", None], [7], [1, "1"], [True, False]]

#: What an error about the training data may name.
SUBJECTS = [
    "sample_weight",
    "ample weights",
    "Input y",
    "y contains",
    "class",
    "label",
    "X ",
    "Input X",
    "column",
]
SUBJECTS += ["feature", "batch_size", "batch_norm", "n_samples", "inconsistent numbers of samples"]
# scikit-learn's wording for the shape of X and y.
SUBJECTS += ["y should be", "0 sample(s)", "0 feature(s)", "2D array", "2-dimensional"]


@SETTINGS
@given(data=st.data())
def test_weights_labels_and_batch_sizes_work_or_name_the_argument(fitted_model, data):
    clf, X_fit = fitted_model
    X = data.draw(frames())
    options = data.draw(st.sampled_from(AWKWARD_LABELS))
    length = len(X) if data.draw(st.integers(0, 5)) else data.draw(st.integers(0, 9))
    y = data.draw(st.lists(st.sampled_from(options), min_size=length, max_size=length))
    sample_weight = data.draw(sample_weights(len(X)))
    params = dict(
        batch_size=data.draw(st.sampled_from([2, 3, "auto", 10_000])),
        batch_norm=data.draw(st.booleans()),
    )
    fresh = DeepFMClassifier(**{**clf.get_params(), **params})
    error = call(fresh.fit, X, y, sample_weight=sample_weight)
    if error is None:
        proba = fresh.predict_proba(X)
        assert proba.shape == (len(X), len(fresh.classes_))
        assert np.isfinite(proba).all()
    else:
        assert_names_a_subject(error, SUBJECTS + [repr(str(name)) for name in X.columns])
    error = fit_a_fitted_copy(clf, X_fit, X, y, sample_weight=sample_weight)
    if error is not None:
        assert_names_a_subject(error, SUBJECTS + [repr(str(name)) for name in X.columns])


# -- fit: every listed input, its meaning or its message ----------------------------

N_ROWS = 12


def base_frame(n_rows=N_ROWS):
    return pd.DataFrame(
        {
            "a": (["x", "y", "z", None] * n_rows)[:n_rows],
            "b": ([1.0, 2.0, np.nan, 4.0] * n_rows)[:n_rows],
            "c": ([["p"], [], None, ["q", "p"]] * n_rows)[:n_rows],
        }
    )


def base_labels(n_rows=N_ROWS):
    return np.array([0, 1, 1] * n_rows)[:n_rows]


def odd_cells(n_rows=N_ROWS):
    """bytes, unicode, empty strings, NUL, a lone surrogate and nested objects."""
    strings = [b"x", "é", "", "日本", b"", "\x00", "\ud800", "a b", "😀"]
    nested = [[{"k": [1]}], [], None, [("t", b"b")], [[1, [2]]], [set()], [np.array([1, 2])], [{1: {2: 3}}]]
    return base_frame(n_rows).assign(
        a=[strings[i % len(strings)] for i in range(n_rows)],
        c=[nested[i % len(nested)] for i in range(n_rows)],
    )


def renamed(X, **names):
    return X.rename(columns=names)


OK = None
FIT_CASES = {
    # sample_weight
    "sample-weight-negative": (dict(sample_weight=np.r_[-1.0, np.ones(N_ROWS - 1)]), "sample_weight"),
    "sample-weight-nan": (
        dict(sample_weight=np.r_[np.nan, np.ones(N_ROWS - 1)]),
        "sample_weight contains NaN",
    ),
    "sample-weight-inf": (
        dict(sample_weight=np.r_[np.inf, np.ones(N_ROWS - 1)]),
        "sample_weight contains infinity",
    ),
    "sample-weight-all-zero": (dict(sample_weight=np.zeros(N_ROWS)), "(?i)sample weights"),
    "sample-weight-scalar-zero": (dict(sample_weight=0.0), "(?i)sample weights"),
    "sample-weight-too-short": (dict(sample_weight=np.ones(N_ROWS - 1)), "sample_weight"),
    "sample-weight-too-long": (dict(sample_weight=np.ones(N_ROWS + 1)), "sample_weight"),
    "sample-weight-2d": (dict(sample_weight=np.ones((N_ROWS, 2))), "(?i)sample weights"),
    "sample-weight-none-cells": (dict(sample_weight=[None] * N_ROWS), "sample_weight contains NaN"),
    # Documented meanings: a scalar weighs every row alike; zero-weight rows do not count.
    "sample-weight-scalar": (dict(sample_weight=2.5), OK),
    "sample-weight-zero-but-one-row": (dict(sample_weight=np.r_[1.0, np.zeros(N_ROWS - 1)]), OK),
    "sample-weight-tiny": (dict(sample_weight=np.full(N_ROWS, 1e-320)), OK),
    # labels
    "labels-nan": (dict(y=np.r_[np.nan, np.ones(N_ROWS - 1)]), "Input y contains missing values"),
    "labels-none": (
        dict(y=np.array([None] + ["a", "b"] * 6, dtype=object)[:N_ROWS]),
        "Input y contains missing",
    ),
    "labels-pd-na": (
        dict(y=pd.array([pd.NA] + [0, 1] * 6, dtype="Int64")[:N_ROWS]),
        "Input y contains missing",
    ),
    "labels-nan-among-strings": (
        dict(y=np.array([np.nan] + ["a", "b"] * 6, dtype=object)[:N_ROWS]),
        "Input y contains missing",
    ),
    "labels-one-class": (dict(y=np.zeros(N_ROWS)), "at least 2 classes"),
    "labels-continuous": (dict(y=np.linspace(0, 1, N_ROWS)), "label type"),
    "labels-mixed-types": (dict(y=np.array([1, "1"] * 6, dtype=object)), "label type"),
    "labels-bytes": (dict(y=[b"a", b"b"] * 6), "labels"),
    "labels-2d": (dict(y=np.zeros((N_ROWS, 2))), "y should be a 1d array"),
    "labels-empty-strings-and-bools": (dict(y=["", "b"] * 6), OK),
    "labels-bools": (dict(y=[True, False] * 6), OK),
    # X and y of different lengths
    "y-longer": (dict(y=np.r_[base_labels(), 0]), "inconsistent numbers of samples"),
    "y-shorter": (dict(y=base_labels()[:-1]), "inconsistent numbers of samples"),
    "y-empty": (dict(y=[]), "inconsistent numbers of samples"),
    # batch sizes
    "batch-size-larger-than-data": (dict(params=dict(batch_size=10_000)), OK),
    "batch-size-larger-without-batch-norm": (dict(params=dict(batch_size=10_000, batch_norm=False)), OK),
    "batch-size-one-without-batch-norm": (dict(params=dict(batch_size=1, batch_norm=False)), OK),
    # shapes and names of X
    "duplicated-column-names": (
        dict(X=lambda X: X.set_axis(["a", "a", "c"], axis=1)),
        "duplicated column names",
    ),
    "duplicated-integer-column-names": (
        dict(X=lambda X: X.set_axis([0, 0, 1], axis=1)),
        "duplicated column names",
    ),
    "mixed-type-column-names": (dict(X=lambda X: X.set_axis(["a", 1, "c"], axis=1)), "feature names"),
    "empty-rows": (dict(X=lambda X: X.iloc[:0], y=[]), "0 sample"),
    "empty-columns": (dict(X=lambda X: X.iloc[:, :0]), "0 feature"),
    "empty-frame": (dict(X=lambda X: pd.DataFrame(), y=[]), "0 sample"),
    "one-row": (dict(X=lambda X: X.iloc[:1], y=[0]), "at least 2 classes"),
    "two-rows-with-batch-norm": (dict(X=lambda X: X.iloc[:2], y=[0, 1]), OK),
    "one-row-per-class-without-batch-norm": (
        dict(X=lambda X: X.iloc[:2], y=[0, 1], params=dict(batch_norm=False)),
        OK,
    ),
    "one-column": (dict(X=lambda X: X[["a"]]), OK),
    "one-numeric-column": (dict(X=lambda X: X[["b"]]), OK),
    "one-multivalue-column": (dict(X=lambda X: X[["c"]]), OK),
    "a-1d-array": (dict(X=lambda X: X["a"].to_numpy()), "2D array"),
    "a-series": (dict(X=lambda X: X["a"]), "2-dimensional"),
    "numpy-array": (dict(X=lambda X: X.to_numpy()), OK),
    # cells
    "bytes-unicode-empty-strings-and-nested-objects": (dict(X=lambda X: odd_cells()), OK),
    "huge-floats": (dict(X=lambda X: X.assign(b=[1e308, -1e308, 1.0, np.nan] * 3)), OK),
    "smallest-floats": (dict(X=lambda X: X.assign(b=[5e-324, -5e-324, 0.0, np.nan] * 3)), OK),
    "huge-integers-in-a-categorical-column": (dict(X=lambda X: X.assign(a=[10**400, -(2**70), 1] * 4)), OK),
    "inf-in-a-float-column": (dict(X=lambda X: X.assign(b=[np.inf, 1.0, 2.0] * 4)), "infinity in column 'b'"),
    "minus-inf-in-a-float-column": (
        dict(X=lambda X: X.assign(b=[-np.inf, 1.0, 2.0] * 4)),
        "infinity in column 'b'",
    ),
    "inf-in-an-object-numeric-column": (
        dict(
            X=lambda X: X.assign(b=pd.Series([np.inf, 1, 2.5] * 4, dtype=object)),
            params=dict(numeric_features=["b"]),
        ),
        "infinity in column 'b'",
    ),
    "inf-as-text-in-a-numeric-column": (
        dict(X=lambda X: X.assign(b=["1e400", "1", "2"] * 4), params=dict(numeric_features=["b"])),
        "infinity in column 'b'",
    ),
    "huge-integer-in-a-numeric-column": (
        dict(
            X=lambda X: X.assign(b=pd.Series([10**400, 1, 2] * 4, dtype=object)),
            params=dict(numeric_features=["b"]),
        ),
        "Column 'b' is numeric",
    ),
    "text-in-a-numeric-column": (
        dict(X=lambda X: X.assign(b=["x", "1", "2"] * 4), params=dict(numeric_features=["b"])),
        "Column 'b' is numeric",
    ),
    "inf-in-a-nullable-float-column": (
        dict(X=lambda X: X.assign(b=pd.array([np.inf, pd.NA, 1.0] * 4, dtype="Float64"))),
        "infinity in column 'b'",
    ),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_inputs_work_or_name_the_argument(fitted_model, case):
    spec, expected = FIT_CASES[case]
    clf, X_fit = fitted_model
    X = spec.get("X", lambda X: X)(base_frame())
    y = spec.get("y", base_labels())
    fit_params = {"sample_weight": spec["sample_weight"]} if "sample_weight" in spec else {}
    fresh = DeepFMClassifier(**{**clf.get_params(), **spec.get("params", {})})
    error = call(fresh.fit, X, y, **fit_params)
    if expected is OK:
        assert error is None, f"{case}: {error!r}"
        proba = fresh.predict_proba(X)
        assert proba.shape == (len(X), len(fresh.classes_))
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(1), 1.0)
    else:
        assert error is not None, f"{case} was accepted"
        assert re.search(expected, str(error)), f"{case}: {error!r}"
    # The same call on a fitted model: the same outcome, and no damage when it fails.
    copy_error = fit_a_fitted_copy(clf, X_fit, X, y, **fit_params)
    if expected is not OK and copy_error is not None:
        assert_names_a_subject(copy_error, SUBJECTS + ["'a'", "'b'", "'c'"])


# -- predict_proba on a fitted model ------------------------------------------------

PREDICT_CASES = {
    "columns-reordered": (lambda X: X[["c", "a", "b"]], "same order as they were in fit"),
    "a-column-renamed": (lambda X: renamed(X, a="A"), "Feature names unseen at fit time"),
    "all-columns-renamed": (
        lambda X: X.set_axis(["x", "y", "z"], axis=1),
        "Feature names unseen at fit time",
    ),
    "a-column-missing": (lambda X: X[["a", "b"]], "Feature names seen at fit time, yet now missing"),
    "an-extra-column": (lambda X: X.assign(d=1), "Feature names unseen at fit time"),
    "duplicated-column-names": (lambda X: X.set_axis(["a", "a", "c"], axis=1), "duplicated column names"),
    "empty-rows": (lambda X: X.iloc[:0], "0 sample"),
    "empty-columns": (lambda X: X.iloc[:, :0], "0 features"),
    "empty-frame": (lambda X: pd.DataFrame(), "0 features"),
    "a-1d-array": (lambda X: X["a"].to_numpy(), "2D array"),
    "one-row": (lambda X: X.iloc[:1], OK),
    "one-row-all-missing": (lambda X: pd.DataFrame({"a": [None], "b": [np.nan], "c": [None]}), OK),
    "unseen-categories": (lambda X: pd.DataFrame({"a": ["new"], "b": [3.0], "c": [["new", "p"]]}), OK),
    # Without names, columns are taken by position (scikit-learn warns).
    "numpy-array": (lambda X: X.to_numpy(), OK),
    "integer-column-names": (lambda X: X.set_axis([0, 1, 2], axis=1), OK),
    "bytes-unicode-empty-strings-and-nested-objects": (lambda X: odd_cells(len(X)), OK),
    "huge-floats": (lambda X: X.assign(b=([1e308, -1e308, 0.0, np.nan] * len(X))[: len(X)]), OK),
    "inf-in-the-numeric-column": (lambda X: X.assign(b=np.inf), "infinity in column 'b'"),
    "inf-in-an-object-numeric-column": (
        lambda X: X.assign(b=pd.Series([np.inf] * len(X), dtype=object)),
        "infinity in column 'b'",
    ),
    "text-in-the-numeric-column": (lambda X: X.assign(b="x"), "Column 'b' is numeric"),
    "floats-with-inf-in-a-categorical-column": (lambda X: X.assign(a=np.inf), "infinity in column 'a'"),
    "a-list-cell-in-a-categorical-column": (lambda X: X.assign(a=[["x"]] * len(X)), OK),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_predict_inputs_work_or_name_the_column(fitted_model, case):
    make, expected = PREDICT_CASES[case]
    clf, X_fit = fitted_model
    before = clf.predict_proba(X_fit)
    X = make(X_fit.iloc[:8].reset_index(drop=True))
    error = call(clf.predict_proba, X)
    if expected is OK:
        assert error is None, f"{case}: {error!r}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proba = clf.predict_proba(X)
        assert proba.shape == (len(X), 2)
        assert np.isfinite(proba).all()
    else:
        assert error is not None, f"{case} was accepted"
        assert re.search(expected, str(error)), f"{case}: {error!r}"
    np.testing.assert_array_equal(clf.predict_proba(X_fit), before)


def test_the_same_rows_in_the_same_order_predict_the_same(fitted_model):
    clf, X_fit = fitted_model
    X = X_fit.iloc[:8]
    # A DataFrame rebuilt column by column with the fit names and order is the same input.
    rebuilt = pd.DataFrame({name: X[name].tolist() for name in ["a", "b", "c"]})
    np.testing.assert_array_equal(clf.predict_proba(rebuilt), clf.predict_proba(X))
    np.testing.assert_array_equal(
        clf.predict_proba(X[["c", "a", "b"]][["a", "b", "c"]]), clf.predict_proba(X)
    )


# -- known failures: inputs the estimator does not handle yet ------------------------
# Each test states the wanted behaviour; see the module docstring.


def test_sample_weight_that_is_not_numeric_names_the_argument():
    # Found by fuzzing: numpy's "could not convert string to float: 'a'" named nothing.
    X, y = base_frame(), base_labels()
    for sample_weight in (["a"] * N_ROWS, [{"w": 1}] * N_ROWS):
        with pytest.raises((ValueError, TypeError), match="sample_weight"):
            DeepFMClassifier(hidden_layer_sizes=(4,), max_iter=1, device="cpu").fit(
                X, y, sample_weight=sample_weight
            )


def test_batch_size_one_with_batch_norm_names_the_parameters():
    # Found by fuzzing: torch's "Expected more than 1 value per channel when training".
    with pytest.raises(ValueError, match="batch_size"):
        DeepFMClassifier(hidden_layer_sizes=(4,), batch_size=1, max_iter=1, device="cpu").fit(
            base_frame(), base_labels()
        )


def test_negative_class_weight_is_refused():
    # Found by fuzzing: {0: -1, 1: 2} trained on negative row weights (the loss of class 0
    # is maximised); {0: -1, 1: 1} and {0: nan, 1: 1} said "sample weights sum to zero".
    for class_weight in ({0: -1.0, 1: 2.0}, {0: np.nan, 1: 1.0}):
        with pytest.raises(ValueError, match="class_weight"):
            DeepFMClassifier(
                hidden_layer_sizes=(4,), class_weight=class_weight, max_iter=1, device="cpu"
            ).fit(base_frame(), base_labels())


def test_huge_values_fit_without_overflow_warnings():
    # Found by fuzzing: RuntimeWarning "overflow encountered in scalar subtract / in
    # reduce" from NumericField.fit_encode (the IQR and the standard deviation of
    # 1e308 and -1e308) and from the mean of the sample weights in training.
    X = base_frame().assign(b=[1e308, -1e308, 1.0, np.nan] * 3)
    y = base_labels()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        FieldEncoder().fit(X)
        clf = DeepFMClassifier(hidden_layer_sizes=(4,), max_iter=2, device="cpu", random_state=0)
        clf.fit(base_frame(), y, sample_weight=np.full(N_ROWS, 1e308))
    # Weights of 1e308 mean the same as weights of 1: training must not stall.
    reference = DeepFMClassifier(hidden_layer_sizes=(4,), max_iter=2, device="cpu", random_state=0)
    reference.fit(base_frame(), y)
    np.testing.assert_allclose(clf.loss_curve_, reference.loss_curve_, rtol=1e-5)
