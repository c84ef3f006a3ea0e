"""Random tables of awkward cells: every call works or raises a clear ValueError/TypeError."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skdeepfm import DeepFMClassifier, FieldEncoder

SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 60)),
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
        event(f"{fn.__name__}: {type(exc).__name__}")
        if not str(exc):
            raise AssertionError(f"{type(exc).__name__} without a message from {fn.__name__}") from exc
        return exc
    event(f"{fn.__name__}: ok")
    return None


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


@SETTINGS
@given(data=st.data())
def test_failed_calls_leave_a_fitted_model_unchanged(fitted_model, data):
    clf, X_fit = fitted_model
    before = clf.predict_proba(X_fit)
    X = data.draw(frames(names=["a", "b", "c"]))
    call(clf.predict_proba, X)
    refit = DeepFMClassifier(**clf.get_params())
    refit.__dict__.update(clf.__dict__)
    if call(refit.fit, X, data.draw(labels(len(X)))) is not None:
        np.testing.assert_array_equal(refit.predict_proba(X_fit), before)
    np.testing.assert_array_equal(clf.predict_proba(X_fit), before)
