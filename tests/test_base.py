"""Behaviour the estimators share: partial_fit, warm_start, continuing after pickling."""

import pickle
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import make_ad_clicks

from .conftest import make_interaction_data

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(embedding_dim=4, hidden_layer_sizes=(32,), random_state=0, device="cpu", early_stopping=False)


def _chunks(X, y, size):
    for start in range(0, len(X), size):
        yield X.iloc[start : start + size], y[start : start + size]


@pytest.fixture(scope="module")
def ad_clicks_split():
    X, y = make_ad_clicks(8000, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_partial_fit_over_chunks_matches_a_single_fit(ad_clicks_split):
    X_train, X_test, y_train, y_test = ad_clicks_split
    params = dict(SMALL, hidden_layer_sizes=(64, 64), batch_size=128)
    single = DeepFMClassifier(**params, max_iter=4).fit(X_train, y_train)

    streamed = DeepFMClassifier(**params)
    for _ in range(4):
        for X_chunk, y_chunk in _chunks(X_train, y_train, 1000):
            streamed.partial_fit(X_chunk, y_chunk, classes=[0, 1])
    assert streamed.n_iter_ == 4 * 6
    assert len(streamed.loss_curve_) == streamed.n_iter_

    auc_single = roc_auc_score(y_test, single.predict_proba(X_test)[:, 1])
    auc_streamed = roc_auc_score(y_test, streamed.predict_proba(X_test)[:, 1])
    assert auc_single > 0.75
    assert auc_streamed > auc_single - 0.01


def test_partial_fit_needs_classes_first_and_checks_them_later(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL)
    with pytest.raises(ValueError, match="'classes' argument is required on the first call"):
        clf.partial_fit(X, y)
    assert not hasattr(clf, "network_")
    clf.partial_fit(X[:100], y[:100], classes=["click", "skip"])
    np.testing.assert_array_equal(clf.classes_, ["click", "skip"])
    with pytest.raises(ValueError, match="is not the same as the classes of the fitted model"):
        clf.partial_fit(X, y, classes=["click", "skip", "later"])
    with pytest.raises(ValueError, match=r"labels \['view'\] that are not in classes"):
        clf.partial_fit(X[:4], ["click", "view", "skip", "click"])
    with pytest.raises(ValueError, match="n_samples=1; with batch_norm=True"):
        clf.partial_fit(X[:1], y[:1])


def test_partial_fit_with_a_class_missing_from_the_first_chunk(interaction_data):
    X, y = interaction_data
    clicks = y == "click"
    clf = DeepFMClassifier(**SMALL).partial_fit(X[clicks][:50], y[clicks][:50], classes=["click", "skip"])
    assert clf.predict_proba(X[:3]).shape == (3, 2)
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.95


def test_partial_fit_after_fit_continues_the_same_network(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL, max_iter=2).fit(X, y)
    before = clf.predict_proba(X)
    encoder = clf.encoder_
    clf.partial_fit(X, y)
    assert clf.encoder_ is encoder
    assert clf.n_iter_ == 3
    assert not np.allclose(clf.predict_proba(X), before)


def test_categories_first_seen_later_map_to_the_unknown_code_by_default(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL)
    first = X["user"] != "u5"
    clf.partial_fit(X[first], y[first], classes=["click", "skip"])
    dims = clf.field_dims_.copy()
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(clf.field_dims_, dims)
    assert "u5" not in list(clf.encoder_.categories_[0])


def test_warm_start_continues_the_loss_curve(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL, max_iter=3, warm_start=True).fit(X, y)
    first_curve = list(clf.loss_curve_)
    network = clf.network_
    clf.fit(X, y)
    assert clf.n_iter_ == 6
    assert clf.loss_curve_[:3] == first_curve
    # Continuing: the next epochs start below where a fresh fit starts.
    assert clf.loss_curve_[3] < first_curve[0]
    assert clf.loss_curve_[-1] < first_curve[-1]
    assert clf.network_ is not network

    cold = DeepFMClassifier(**SMALL, max_iter=3).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 3
    assert cold.loss_curve_ == first_curve


def test_warm_start_refuses_a_changed_architecture(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL, max_iter=1, warm_start=True).fit(X, y)
    proba = clf.predict_proba(X)
    clf.set_params(embedding_dim=8)
    with pytest.raises(ValueError, match="'embedding_dim' parameter changed from 4 to 8"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    # The FM term's multiplier is part of the function the network learned.
    clf.set_params(embedding_dim=4, fm_scale=100.0)
    with pytest.raises(ValueError, match="'fm_scale' parameter changed from 1.0 to 100.0"):
        clf.partial_fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_warm_start_keeps_the_classes(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL, max_iter=1, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="not in classes"):
        clf.fit(X, np.where(y == "click", "buy", y))


def test_training_continues_identically_after_a_pickle_round_trip(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL).partial_fit(X, y, classes=["click", "skip"])
    copy = pickle.loads(pickle.dumps(clf))
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    assert copy.loss_curve_ == clf.loss_curve_


def test_a_failed_partial_fit_leaves_the_model_unchanged(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL).partial_fit(X, y, classes=["click", "skip"])
    proba, n_iter = clf.predict_proba(X), clf.n_iter_
    bad = X.assign(user=np.inf)
    with pytest.raises(ValueError, match="user"):
        clf.partial_fit(bad, y)
    with pytest.raises(ValueError, match="diverged"):
        clf.set_params(learning_rate_init=1e30).partial_fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert clf.n_iter_ == n_iter


def test_class_weight_balanced_raises_minority_recall():
    rng = np.random.default_rng(0)
    n = 4000
    X = pd.DataFrame({"a": rng.choice(list("abcdefgh"), n), "b": rng.choice(list("xyz"), n)})
    score = X["a"].isin(["a", "b"]).astype(float) + (X["b"] == "x") + rng.normal(0, 0.8, n)
    y = (score > 1.6).astype(int)
    assert 0.02 < y.mean() < 0.2
    plain = DeepFMClassifier(**SMALL, max_iter=10).fit(X, y)
    balanced = DeepFMClassifier(**SMALL, max_iter=10, class_weight="balanced").fit(X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X)) + 0.2


def test_class_weight_dict_equals_sample_weight(interaction_data):
    X, y = interaction_data
    weights = {"click": 3.0, "skip": 1.0}
    by_class = DeepFMClassifier(**SMALL, max_iter=2, class_weight=weights).fit(X, y)
    by_row = DeepFMClassifier(**SMALL, max_iter=2).fit(X, y, sample_weight=np.where(y == "click", 3.0, 1.0))
    np.testing.assert_array_equal(by_class.predict_proba(X), by_row.predict_proba(X))
    with pytest.raises(ValueError, match="balanced' is not supported by partial_fit"):
        DeepFMClassifier(**SMALL, class_weight="balanced").partial_fit(X, y, classes=["click", "skip"])


def test_class_weights_reach_the_validation_score(monkeypatch):
    X, y = make_interaction_data(3000, seed=1)
    seen = []
    original = DeepFMClassifier._validation_score

    def spy(self, y_val, logits, sample_weight):
        seen.append(np.unique(sample_weight))
        return original(self, y_val, logits, sample_weight)

    monkeypatch.setattr(DeepFMClassifier, "_validation_score", spy)
    DeepFMClassifier(**dict(SMALL, early_stopping=True), max_iter=1, class_weight={"click": 5.0}).fit(X, y)
    assert sorted(seen[0]) == [1.0, 5.0]


def test_hash_buckets_learn_categories_first_seen_in_a_later_chunk(interaction_data):
    X, y = interaction_data
    # Two new users of opposite groups: one shared unknown code cannot fit both.
    new_user = X["user"].isin(["u4", "u5"])
    first, classes = ~new_user, ["click", "skip"]
    learned = DeepFMClassifier(**SMALL).partial_fit(X[first], y[first], classes=classes)
    hashed = DeepFMClassifier(**SMALL, hash_buckets=1000).partial_fit(X[first], y[first], classes=classes)
    for _ in range(20):
        learned.partial_fit(X, y)
        hashed.partial_fit(X, y)
    assert hashed.score(X[new_user], y[new_user]) > 0.95
    assert learned.score(X[new_user], y[new_user]) < 0.8
    assert hashed.encoder_.categories_[0] is None


def test_hash_buckets_with_min_frequency_is_refused_naming_the_estimator(interaction_data):
    X, y = interaction_data
    with pytest.raises(ValueError, match="'hash_buckets' parameter of DeepFMClassifier cannot be combined"):
        DeepFMClassifier(**SMALL, hash_buckets=10, min_frequency=2).fit(X, y)


def test_warm_start_keeps_the_validation_split_of_the_first_fit(interaction_data, monkeypatch):
    X, y = interaction_data
    held_out = []
    split = DeepFMClassifier._split_validation

    def recording_split(self, targets, rng):
        train_idx, validation_idx = split(self, targets, rng)
        held_out.append(sorted(validation_idx))
        return train_idx, validation_idx

    monkeypatch.setattr(DeepFMClassifier, "_split_validation", recording_split)
    params = dict(SMALL, early_stopping=True, max_iter=2, warm_start=True)
    clf = DeepFMClassifier(**params).fit(X, y)
    clf.fit(X, y)
    # A new split would validate on rows the network trained on in the first fit.
    assert held_out[1] == held_out[0]
    restored = pickle.loads(pickle.dumps(clf))
    restored.fit(X, y)
    assert held_out[2] == held_out[0]
    # A fit that starts over draws its split afresh, the same for the same random_state.
    clf.set_params(warm_start=False, random_state=1).fit(X, y)
    assert held_out[3] != held_out[0]
    DeepFMClassifier(**dict(params, random_state=1)).fit(X, y)
    assert held_out[4] == held_out[3]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("hash_buckets", 1000),
        ("min_frequency", 5),
        ("max_categories", 3),
        ("numeric_features", ["noise"]),
        ("multivalue_features", None),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_continued_training_refuses_changed_encoder_parameters(interaction_data, name, value, method):
    X, y = interaction_data
    clf = DeepFMClassifier(**SMALL, max_iter=1, warm_start=True).fit(X, y)
    proba = clf.predict_proba(X)
    clf.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"'{name}' parameter changed from .* to {re.escape(repr(value))}"):
        getattr(clf, method)(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    # Setting it back continues as before.
    clf.set_params(**{name: DeepFMClassifier().get_params()[name]})
    getattr(clf, method)(X, y)


def test_convergence_warning_points_at_the_callers_line(interaction_data):
    X, y = interaction_data
    with pytest.warns(ConvergenceWarning, match="max_iter=1") as record:
        DeepFMClassifier(**SMALL, max_iter=1).fit(X, y)
    assert [w.filename for w in record if w.category is ConvergenceWarning] == [__file__]
