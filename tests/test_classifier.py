import io
import pickle
import re
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skdeepfm import DeepFMClassifier, FieldEncoder
from skdeepfm._classifier import auto_batch_size
from skdeepfm.datasets import make_ad_clicks

from .conftest import make_interaction_data

# Several tests train for a few epochs on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Small and on the CPU, where fits are bit-for-bit repeatable; CUDA has its own tests below.
SMALL = dict(embedding_dim=4, hidden_layer_sizes=(32,), random_state=0, device="cpu", early_stopping=False)


@pytest.fixture(scope="module")
def fitted(interaction_data):
    X, y = interaction_data
    return DeepFMClassifier(**SMALL).fit(X, y)


def test_learns_an_interaction_and_returns_the_labels(fitted, interaction_data):
    X, y = interaction_data
    np.testing.assert_array_equal(fitted.classes_, ["click", "skip"])
    assert set(fitted.predict(X)) <= {"click", "skip"}
    assert fitted.score(X, y) > 0.97
    assert fitted.n_features_in_ == 3
    np.testing.assert_array_equal(fitted.feature_names_in_, ["user", "ad", "noise"])
    assert isinstance(fitted.encoder_, FieldEncoder)
    np.testing.assert_array_equal(fitted.field_dims_, fitted.encoder_.field_dims_)
    assert fitted.n_iter_ == len(fitted.loss_curve_)
    assert fitted.validation_scores_ is None
    assert fitted.best_validation_score_ is None


def test_probabilities_logits_and_predictions_agree(fitted, interaction_data):
    X, _ = interaction_data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X)), proba, rtol=1e-10)
    logit = fitted.decision_function(X)
    assert logit.shape == (len(X),)
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), proba[:, 1], rtol=1e-10)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[(proba[:, 1] > 0.5).astype(int)])


def test_multiclass_with_integer_labels():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.integers(0, 4, 1500), "b": rng.choice(list("xyz"), 1500)})
    y = (X["a"] + X["b"].map({"x": 0, "y": 1, "z": 2})) % 3 * 10
    clf = DeepFMClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 10, 20])
    assert clf.predict_proba(X).shape == (1500, 3)
    assert clf.decision_function(X).shape == (1500, 3)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)).sum(1), 1.0)
    assert clf.score(X, y) > 0.95
    assert clf.network_.n_outputs == 3


def test_unseen_and_missing_categories_at_predict_do_not_raise(fitted):
    X_new = pd.DataFrame(
        {"user": ["u0", "brand-new", None], "ad": ["zzz", "a1", None], "noise": [0, 99, None]}
    )
    proba = fitted.predict_proba(X_new)
    assert proba.shape == (3, 2)
    assert np.isfinite(proba).all()


def test_random_state_makes_fits_bit_identical_and_leaves_global_rngs_alone(interaction_data):
    X, y = interaction_data
    # The legacy global numpy state is what must not change.
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = DeepFMClassifier(**SMALL, max_iter=3).fit(X, y)
    b = DeepFMClassifier(**SMALL, max_iter=3).fit(X, y)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])  # noqa: NPY002
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_


def test_repeatability_holds_as_documented_at_any_thread_count(interaction_data):
    # The promise: the same thread count gives the same bits; a row's prediction
    # does not depend on its batch beyond float32 rounding.
    X, y = interaction_data
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = DeepFMClassifier(**SMALL, max_iter=2).fit(X, y)
        b = DeepFMClassifier(**SMALL, max_iter=2).fit(X, y)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    one_by_one = np.vstack([a.predict_proba(X.iloc[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, a.predict_proba(X)[:5], rtol=0, atol=1e-6)


def test_without_fm_term_or_dnn_gradient_the_embeddings_do_not_move(interaction_data):
    # dnn_gradient_scale reaches the training step: with it and the FM term
    # at zero (and no L2 on the tables), nothing moves the embeddings, so two
    # fits from the same seed on different labels keep the same ones.
    X, y = interaction_data
    frozen = dict(SMALL, max_iter=2, fm_scale=0.0, dnn_gradient_scale=0.0, embedding_alpha=0.0)
    a = DeepFMClassifier(**frozen).fit(X, y)
    b = DeepFMClassifier(**frozen).fit(X, y[::-1])
    assert torch.equal(a.network_.embedding.weight, b.network_.embedding.weight)
    assert not torch.equal(a.network_.linear.weight, b.network_.linear.weight)
    moved = DeepFMClassifier(**{**frozen, "dnn_gradient_scale": 1.0}).fit(X, y)
    assert not torch.equal(a.network_.embedding.weight, moved.network_.embedding.weight)


@pytest.mark.parametrize("scoring", ["loss", "roc_auc"])
@pytest.mark.parametrize("calibrate", [False, True])
def test_early_stopping_keeps_the_best_validation_epoch(interaction_data, scoring, calibrate):
    X, y = interaction_data
    clf = DeepFMClassifier(
        **{**SMALL, "early_stopping": True},
        scoring=scoring,
        calibrate=calibrate,
        n_iter_no_change=2,
        max_iter=50,
        refit=False,
    ).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # Recompute the kept epoch's score on the same held-out rows.
    _, val_idx = clf._split_validation(np.searchsorted(clf.classes_, y), np.random.RandomState(0))
    proba = clf.predict_proba(X.iloc[val_idx])[:, 1]
    y_val = y[val_idx] == clf.classes_[1]
    # The calibration keeps the ranking and can only lower the held-out log-loss.
    assert clf.best_validation_score_ == pytest.approx(
        roc_auc_score(y_val, proba) if scoring == "roc_auc" else -log_loss(y_val, proba),
        abs=1e-6 if not calibrate or scoring == "roc_auc" else np.inf,
    )
    if calibrate:
        raw = DeepFMClassifier(**clf.get_params()).set_params(calibrate=False).fit(X, y)
        raw_proba = raw.predict_proba(X.iloc[val_idx])[:, 1]
        assert log_loss(y_val, proba) < log_loss(y_val, raw_proba)
        assert np.all(np.diff(proba[np.argsort(raw_proba)]) >= -1e-12)
        assert not np.allclose(proba, raw_proba)


def test_refit_trains_a_new_network_on_all_rows_for_the_chosen_epochs(monkeypatch):
    import skdeepfm._base as base_module

    X, y = make_ad_clicks(3000, random_state=0)
    runs = []
    original = base_module.train

    def recording(network, data, *args, **kwargs):
        runs.append((len(data), args[-1], kwargs.get("validation") is not None))
        return original(network, data, *args, **kwargs)

    monkeypatch.setattr(base_module, "train", recording)
    params = dict(
        SMALL, early_stopping=True, max_iter=30, n_iter_no_change=3, learning_rate_decay=0.5, batch_size=270
    )
    # make_ad_clicks overfits 3,000 rows: the validation score peaks at epoch 11 of 14.
    chosen = DeepFMClassifier(**params, refit=False).fit(X, y)
    refit = DeepFMClassifier(**params).fit(X, y)
    assert len(runs) == 3
    (n_chosen, _, validated), (n_selection, _, _), (n_all, config, refit_validated) = runs
    assert validated
    assert not refit_validated
    assert n_chosen == n_selection < n_all == len(X)
    # The held-out rows chose the epochs (and the decays) of the new network.
    assert refit.validation_scores_ == chosen.validation_scores_
    best = int(np.argmax(chosen.validation_scores_)) + 1
    assert refit.loss_curve_ == chosen.loss_curve_
    assert refit.n_iter_ == config.max_iter == best < chosen.n_iter_
    assert False in config.schedule  # an epoch that decayed the learning rate
    assert torch.equal(refit.network_.logit_scale, chosen.network_.logit_scale)
    assert torch.equal(refit.network_.logit_shift, chosen.network_.logit_shift)
    assert not torch.equal(refit.network_.embedding.weight, chosen.network_.embedding.weight)
    # A warm start continues the fitted network: no second run.
    runs.clear()
    refit.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert len(runs) == 1


def test_an_interrupted_refit_keeps_the_network_early_stopping_chose(interaction_data, monkeypatch):
    import skdeepfm._base as base_module

    X, y = interaction_data
    original = base_module.train

    def interrupt_the_refit(network, data, *args, **kwargs):
        history = original(network, data, *args, **kwargs)
        history.interrupted = kwargs.get("validation") is None
        return history

    params = {**SMALL, "early_stopping": True, "max_iter": 5}
    chosen = DeepFMClassifier(**params, refit=False).fit(X, y)
    monkeypatch.setattr(base_module, "train", interrupt_the_refit)
    with pytest.warns(UserWarning, match="refit on all rows was interrupted"):
        kept = DeepFMClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(kept.predict_proba(X), chosen.predict_proba(X))
    assert kept.n_iter_ == chosen.n_iter_


def test_multiclass_roc_auc_scoring_is_one_against_the_rest():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.integers(0, 4, 1500), "b": rng.choice(list("xyz"), 1500)})
    y = (X["a"] + X["b"].map({"x": 0, "y": 1, "z": 2})) % 3
    clf = DeepFMClassifier(**{**SMALL, "early_stopping": True}, scoring="roc_auc", max_iter=5).fit(X, y)
    assert 0.5 < clf.best_validation_score_ <= 1.0


def test_auto_early_stopping_and_batch_size():
    assert auto_batch_size(270) == 32
    assert auto_batch_size(5000) == 250
    assert auto_batch_size(10_239) == 511
    assert auto_batch_size(20_479) == 1023
    assert auto_batch_size(20_480) == 1024
    assert auto_batch_size(81_919) == 1024
    assert auto_batch_size(100_000) == 2048
    assert auto_batch_size(181_824) == 4096  # frappe's 202,027 rows less the validation tenth
    assert auto_batch_size(1_000_000) == 4096
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.integers(0, 5, 1_001)})
    y = X["a"] % 2
    clf = DeepFMClassifier(**{**SMALL, "early_stopping": "auto"}, max_iter=2).fit(X, y)
    assert len(clf.validation_scores_) == 2
    clf = DeepFMClassifier(**{**SMALL, "early_stopping": "auto"}, max_iter=2).fit(X.iloc[:1000], y[:1000])
    assert clf.validation_scores_ is None


def test_sample_weight_decides_between_contradicting_rows():
    X = pd.DataFrame({"a": ["p", "q"] * 200})
    y = np.array([1, 0, 0, 1] * 100)
    w = np.tile([9.0, 9.0, 1.0, 1.0], 100)
    clf = DeepFMClassifier(**SMALL).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(clf.predict(pd.DataFrame({"a": ["p", "q"]})), [1, 0])
    clf_flipped = DeepFMClassifier(**SMALL).fit(X, y, sample_weight=10.0 - w)
    np.testing.assert_array_equal(clf_flipped.predict(pd.DataFrame({"a": ["p", "q"]})), [0, 1])


def test_pickle_and_joblib_round_trips_are_bit_identical(fitted, interaction_data):
    X, _ = interaction_data
    expected = fitted.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), expected)
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), expected)


def test_one_row_scores_the_same_alone_or_in_a_batch(fitted, interaction_data):
    X, _ = interaction_data
    full = fitted.predict_proba(X)
    for i in [0, 17, len(X) - 1]:
        np.testing.assert_allclose(fitted.predict_proba(X.iloc[[i]]), full[[i]], rtol=1e-6)


def test_clone_and_params():
    clf = DeepFMClassifier(embedding_dim=7, device="cpu")
    assert clf.get_params()["embedding_dim"] == 7
    copy = clone(clf).set_params(alpha=0.5)
    assert copy.alpha == 0.5
    assert copy.embedding_dim == 7
    with pytest.raises(NotFittedError):
        copy.predict(pd.DataFrame({"a": [1]}))


def test_pipeline_with_column_transformer_and_nested_params(interaction_data):
    X, y = interaction_data
    pipe = Pipeline(
        [
            (
                "select",
                ColumnTransformer([("keep", "passthrough", ["user", "ad"])], verbose_feature_names_out=False),
            ),
            ("model", DeepFMClassifier(**SMALL)),
        ]
    )
    pipe.set_params(model__max_iter=20)
    pipe.fit(X, y)
    assert pipe.named_steps["model"].n_features_in_ == 2
    assert pipe.score(X, y) > 0.95


def test_grid_search_and_cross_validation(interaction_data):
    X, y = interaction_data
    grid = GridSearchCV(
        DeepFMClassifier(**{**SMALL, "max_iter": 5}),
        {"embedding_dim": [2, 4]},
        cv=2,
        n_jobs=2,
        scoring="roc_auc",
    ).fit(X, y)
    assert grid.best_params_["embedding_dim"] in (2, 4)
    scores = cross_val_score(DeepFMClassifier(**SMALL), X, y, cv=3, scoring="roc_auc")
    assert scores.min() > 0.95


def test_calibrated_classifier(interaction_data):
    X, y = interaction_data
    calibrated = CalibratedClassifierCV(DeepFMClassifier(**{**SMALL, "max_iter": 10}), cv=2).fit(X, y)
    assert calibrated.predict_proba(X).shape == (len(X), 2)


def test_numpy_and_list_input():
    X = np.array([["a", "x"], ["b", "y"], ["a", "y"], ["b", "x"]] * 30, dtype=object)
    y = [0, 1, 1, 0] * 30
    clf = DeepFMClassifier(**SMALL).fit(X, y)
    assert not hasattr(clf, "feature_names_in_")
    assert clf.score(X.tolist(), y) > 0.9


def test_wrong_columns_at_predict_name_the_estimator(fitted, interaction_data):
    X, _ = interaction_data
    with pytest.raises(ValueError, match="X has 2 features, but DeepFMClassifier is expecting 3 features"):
        fitted.predict(X.iloc[:, :2].to_numpy())
    with pytest.raises(ValueError, match="feature names"):
        fitted.predict(X.rename(columns={"ad": "advert"}))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"embedding_dim": 0},
            "The 'embedding_dim' parameter of DeepFMClassifier must be an int in the range",
        ),
        ({"dropout": 1.0}, "The 'dropout' parameter"),
        ({"batch_size": "big"}, "The 'batch_size' parameter"),
        ({"early_stopping": "yes"}, "The 'early_stopping' parameter"),
    ],
)
def test_invalid_parameters(params, message):
    X, y = make_interaction_data(50)
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        DeepFMClassifier(**params).fit(X, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"hidden_layer_sizes": (10, 0)},
            "'hidden_layer_sizes' parameter of DeepFMClassifier must be a sequence",
        ),
        ({"device": "tpu"}, "'device' parameter must be"),
        (
            {"early_stopping": True, "validation_fraction": 0.01},
            "early_stopping=True with validation_fraction",
        ),
    ],
)
def test_cross_parameter_rules_are_checked_in_fit(params, message):
    X, y = make_interaction_data(50)
    clf = DeepFMClassifier(**params)  # __init__ validates nothing
    with pytest.raises(ValueError, match=re.escape(message)):
        clf.fit(X, y)


def test_bad_targets_and_weights():
    X, y = make_interaction_data(50)
    with pytest.raises(ValueError, match="at least 2 classes.*only one class: 'click'"):
        DeepFMClassifier().fit(X, np.full(50, "click"))
    with pytest.raises(ValueError, match="inconsistent numbers of samples: X has 50 rows, y has 49"):
        DeepFMClassifier().fit(X, y[:49])
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        DeepFMClassifier().fit(X, y, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        DeepFMClassifier().fit(X, y, sample_weight=np.zeros(50))
    with pytest.raises(ValueError, match="Unknown label type"):
        DeepFMClassifier().fit(X, np.linspace(0, 1, 50))


def test_a_failed_fit_leaves_the_fitted_model_unchanged(fitted, interaction_data):
    X, y = interaction_data
    model = pickle.loads(pickle.dumps(fitted))
    before = model.predict_proba(X)
    attributes = dict(model.__dict__)
    with pytest.raises(ValueError, match="only one class"):
        model.fit(X.iloc[:, :2], np.full(len(X), "click"))
    assert model.__dict__.keys() == attributes.keys()
    assert model.n_features_in_ == 3
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_infinity_in_a_float_column_names_the_column():
    X = pd.DataFrame({"price": [1.0, 2.0, np.inf, 1.0], "ad": ["a", "b", "a", "b"]})
    with pytest.raises(ValueError, match="infinity in column 'price'"):
        DeepFMClassifier().fit(X, [0, 1, 0, 1])


def test_verbose_prints_one_line_per_epoch(capsys, interaction_data):
    X, y = interaction_data
    DeepFMClassifier(**{**SMALL, "max_iter": 3}, verbose=1).fit(X, y)
    out = capsys.readouterr()
    lines = [
        line
        for line in (out.out + out.err).splitlines()
        if re.search(r"Epoch \d+/3: loss [\d.]+, [\d.]+ s", line)
    ]
    assert len(lines) == 3


def test_max_iter_reached_warns(interaction_data):
    X, y = interaction_data
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        DeepFMClassifier(**{**SMALL, "max_iter": 1}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        DeepFMClassifier(**{**SMALL, "max_iter": 200}).fit(X, y)


GPU = {**SMALL, "device": "cuda"}


@pytest.mark.gpu
def test_cuda_fit_predicts_like_cpu_and_pickles_to_cpu(interaction_data):
    X, y = interaction_data
    gpu = DeepFMClassifier(**GPU).fit(X, y)
    assert gpu.network_.offsets.device.type == "cuda"
    assert gpu.score(X, y) > 0.97
    restored = pickle.loads(pickle.dumps(gpu))
    assert restored.network_.offsets.device.type == "cpu"
    assert gpu.network_.offsets.device.type == "cuda"
    np.testing.assert_allclose(restored.predict_proba(X), gpu.predict_proba(X), atol=1e-5)


@pytest.mark.gpu
def test_cuda_early_stopping_multiclass_and_weights():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.integers(0, 4, 3000), "b": rng.choice(list("xyz"), 3000)})
    y = (X["a"] + X["b"].map({"x": 0, "y": 1, "z": 2})) % 3
    clf = DeepFMClassifier(**{**GPU, "early_stopping": True}).fit(
        X, y, sample_weight=rng.uniform(0.5, 2, 3000)
    )
    assert clf.score(X, y) > 0.95
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    state = torch.cuda.get_rng_state()
    DeepFMClassifier(**GPU, max_iter=2).fit(X, y)
    assert torch.equal(state, torch.cuda.get_rng_state())


@pytest.mark.gpu
def test_device_auto_picks_cuda(interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**{**SMALL, "device": "auto", "max_iter": 2}).fit(X, y)
    assert clf.network_.offsets.device.type == "cuda"


def test_pickling_does_not_change_the_live_model(fitted):
    before = dict(fitted.__dict__)
    pickle.dumps(fitted)
    assert fitted.__dict__.keys() == before.keys()
    assert all(fitted.__dict__[k] is v for k, v in before.items())


@pytest.mark.parametrize("sizes", [8, (), [8, 4]])
def test_hidden_layer_sizes_forms(sizes, interaction_data):
    X, y = interaction_data
    clf = DeepFMClassifier(**{**SMALL, "hidden_layer_sizes": sizes, "max_iter": 2}).fit(X, y)
    widths = [m.out_features for m in clf.network_.dnn if isinstance(m, torch.nn.Linear)]
    assert widths == list(np.atleast_1d(sizes))


def mixed_clicks(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    topics = np.array(["music", "sports", "tech", "travel"])
    X = pd.DataFrame(
        {
            "ad": rng.choice(["concert", "match", "phone", "flight"], n),
            "interests": [list(rng.choice(topics, rng.integers(0, 3), replace=False)) for _ in range(n)],
            "hour": np.where(rng.random(n) < 0.05, np.nan, rng.uniform(0, 24, n)),
        }
    )
    match = {"concert": "music", "match": "sports", "phone": "tech", "flight": "travel"}
    likes = np.array([match[a] in i for a, i in zip(X["ad"], X["interests"], strict=True)])
    evening = X["hour"].fillna(12).to_numpy() > 18
    y = np.where(likes | (evening & (X["ad"] == "concert")), "click", "skip")
    return X, y


def test_mixed_fields_are_learned_and_predicted():
    X, y = mixed_clicks()
    # Without early stopping, the training loss decides: a constant rate for 40 epochs.
    clf = DeepFMClassifier(**{**SMALL, "max_iter": 40}, learning_rate_decay=1.0, n_iter_no_change=40)
    clf.fit(X, y)
    assert clf.encoder_.field_kinds_.tolist() == ["categorical", "multivalue", "numeric"]
    # The label needs the ad x interests interaction (and hour for concerts).
    assert clf.score(X, y) > 0.92
    X_new = pd.DataFrame(
        {"ad": ["concert", "new-ad"], "interests": [["music", "never-seen"], []], "hour": [20.0, np.nan]}
    )
    proba = clf.predict_proba(X_new)
    assert np.isfinite(proba).all()
    full = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(X.iloc[[5]]), full[[5]], rtol=1e-9)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), full)
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), full)


def test_encoder_parameters_reach_the_encoder():
    X, y = mixed_clicks(500)
    clf = DeepFMClassifier(
        **{**SMALL, "max_iter": 2},
        numeric_features=None,
        multivalue_features=None,
        min_frequency=2,
        max_categories=3,
    )
    clf.fit(X.assign(interests=X["interests"].map(tuple)), y)
    assert clf.encoder_.field_kinds_.tolist() == ["categorical"] * 3
    assert clf.encoder_.min_frequency == 2
    assert clf.encoder_.max_categories == 3
    assert clf.field_dims_.max() <= 2 + 3  # at most 2 kept categories + 3 reserved codes
    assert clf.get_params()["max_categories"] == 3


def test_early_stopping_split_keeps_multivalued_rows_whole():
    X, y = mixed_clicks(2500)
    params = dict(SMALL, early_stopping=True, max_iter=20, scoring="roc_auc", refit=False)
    clf = DeepFMClassifier(**params).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ > 0.9


@pytest.mark.gpu
def test_cuda_mixed_fields():
    X, y = mixed_clicks()
    gpu = DeepFMClassifier(**{**GPU, "max_iter": 40}).fit(X, y)
    assert gpu.score(X, y) > 0.92
    cpu_copy = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_allclose(cpu_copy.predict_proba(X), gpu.predict_proba(X), atol=1e-5)


def test_keyboard_interrupt_warns_and_keeps_a_usable_model(monkeypatch, interaction_data):
    import skdeepfm._classifier as classifier_module

    X, y = interaction_data
    real_score, calls = classifier_module._validation_score, []

    def score_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_score(*args)

    monkeypatch.setattr(classifier_module, "_validation_score", score_then_interrupt)
    with pytest.warns(UserWarning, match="interrupted .* after 3 epoch"):
        clf = DeepFMClassifier(**{**SMALL, "early_stopping": True, "max_iter": 50}).fit(X, y)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_keyboard_interrupt_before_an_epoch_ends_leaves_the_old_model(monkeypatch, fitted, interaction_data):
    from skdeepfm import DeepFMNetwork

    X, y = interaction_data
    model = pickle.loads(pickle.dumps(fitted))
    before = model.predict_proba(X)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(DeepFMNetwork, "forward", interrupt)
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_concurrent_predictions_match_serial_and_leave_torch_state_alone(fitted, interaction_data):
    from concurrent.futures import ThreadPoolExecutor

    X, _ = interaction_data
    chunks = [X.iloc[i::8] for i in range(8)]
    serial = [fitted.predict_proba(chunk) for chunk in chunks]
    threads, grad, rng = torch.get_num_threads(), torch.is_grad_enabled(), torch.random.get_rng_state()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            parallel = list(pool.map(fitted.predict_proba, chunks))
            for got, expected in zip(parallel, serial, strict=True):
                np.testing.assert_array_equal(got, expected)
    assert torch.get_num_threads() == threads
    assert torch.is_grad_enabled() == grad
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_multivalue_pooling_reaches_the_network():
    X, y = mixed_clicks(600)
    clf = DeepFMClassifier(**{**SMALL, "max_iter": 3}, multivalue_pooling="sum").fit(X, y)
    assert clf.network_.bag_mode == "sum"
    assert np.isfinite(clf.predict_proba(X)).all()
    with pytest.raises(InvalidParameterError, match="The 'multivalue_pooling' parameter"):
        DeepFMClassifier(multivalue_pooling="median").fit(X, y)


def test_mixed_precision_reaches_training(monkeypatch, interaction_data):
    from skdeepfm import _training

    X, y = interaction_data
    fp32 = DeepFMClassifier(**SMALL, max_iter=2, mixed_precision=False).fit(X, y)
    again = DeepFMClassifier(**SMALL, max_iter=2, mixed_precision=False).fit(X, y)
    np.testing.assert_array_equal(fp32.predict_proba(X), again.predict_proba(X))
    monkeypatch.setattr(_training, "bfloat16_supported", lambda device: True)
    bf16 = DeepFMClassifier(**SMALL, max_iter=2, mixed_precision=True).fit(X, y)
    assert not np.array_equal(bf16.predict_proba(X), fp32.predict_proba(X))
    np.testing.assert_allclose(bf16.predict_proba(X), fp32.predict_proba(X), atol=0.05)
    monkeypatch.setattr(_training, "bfloat16_supported", lambda device: False)
    with pytest.raises(ValueError, match="'mixed_precision' parameter is True"):
        fp32.set_params(mixed_precision=True).fit(X, y)
    np.testing.assert_array_equal(fp32.predict_proba(X), again.predict_proba(X))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_an_untrained_network_starts_at_the_weighted_class_frequencies(n_classes):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(list("pqrs"), 600)})
    y = rng.choice(n_classes, 600, p=[0.7, 0.2, 0.1][:n_classes] / np.sum([0.7, 0.2, 0.1][:n_classes]))
    weight = np.where(y == 1, 2.0, 1.0)
    # A learning rate of ~0: the predictions are the starting point.
    clf = DeepFMClassifier(
        hidden_layer_sizes=(),
        learning_rate_init=1e-12,
        max_iter=1,
        **{k: v for k, v in SMALL.items() if k != "hidden_layer_sizes"},
    ).fit(X, y, sample_weight=weight)
    frequencies = np.bincount(y, weights=weight) / weight.sum()
    np.testing.assert_allclose(clf.predict_proba(X).mean(0), frequencies, atol=2e-3)


def test_calibration_is_fitted_with_early_stopping_and_dropped_by_partial_fit():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(list("pqrstuvw"), 2000), "b": rng.choice(list("xyz"), 2000)})
    y = rng.choice(3, 2000)
    y[X["a"].isin(list("pqr")).to_numpy()] = 0
    clf = DeepFMClassifier(**{**SMALL, "early_stopping": True}, max_iter=5).fit(X, y)
    scale, shift = clf.network_.logit_scale, clf.network_.logit_shift
    # A temperature for three classes: one scale, no shift, the same argmax.
    assert scale.shape == shift.shape == (3,)
    assert torch.all(scale == scale[0])
    assert scale[0] != 1.0
    assert torch.all(shift == 0)
    raw = DeepFMClassifier(**clf.get_params()).set_params(calibrate=False).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), raw.predict(X))
    np.testing.assert_allclose(clf.decision_function(X), raw.decision_function(X) * scale[0].item())
    # Without held-out rows there is nothing to calibrate on.
    plain = DeepFMClassifier(**SMALL, max_iter=2).fit(X, y)
    assert torch.all(plain.network_.logit_scale == 1)
    assert torch.all(plain.network_.logit_shift == 0)
    # New weights, no calibration; a failed call keeps the calibrated model.
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match="labels"):
        clf.partial_fit(X.head(5), [7] * 5)
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    clf.partial_fit(X, y)
    assert torch.all(clf.network_.logit_scale == 1)
    assert torch.all(clf.network_.logit_shift == 0)
