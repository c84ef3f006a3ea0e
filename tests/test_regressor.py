import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skdeepfm import DeepFMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(embedding_dim=8, hidden_layer_sizes=(64,), random_state=0, device="cpu")


def make_ratings(n_samples=6000, n_users=60, n_movies=40, seed=0):
    """Ratings from 1 to 5 driven by user and movie biases and a latent user x movie match."""
    rng = np.random.default_rng(seed)
    user_vec, movie_vec = rng.normal(size=(n_users, 3)), rng.normal(size=(n_movies, 3))
    user_bias, movie_bias = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_movies)
    users, movies = rng.integers(0, n_users, n_samples), rng.integers(0, n_movies, n_samples)
    score = 3 + user_bias[users] + movie_bias[movies] + 0.6 * (user_vec[users] * movie_vec[movies]).sum(1)
    rating = np.clip(np.round(score + rng.normal(0, 0.3, n_samples)), 1, 5)
    X = pd.DataFrame({"user": [f"u{u}" for u in users], "movie": [f"m{m}" for m in movies]})
    return X, rating


@pytest.fixture(scope="module")
def ratings_split():
    X, y = make_ratings()
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def fitted(ratings_split):
    X_train, _, y_train, _ = ratings_split
    return DeepFMRegressor(**SMALL).fit(X_train, y_train)


def test_beats_the_mean_and_a_linear_model_on_ratings(fitted, ratings_split):
    X_train, X_test, y_train, y_test = ratings_split
    dummy = DummyRegressor().fit(X_train, y_train)
    linear = make_pipeline(OneHotEncoder(handle_unknown="ignore"), Ridge()).fit(X_train, y_train)
    r2_deepfm = fitted.score(X_test, y_test)
    assert r2_deepfm > r2_score(y_test, dummy.predict(X_test)) + 0.3
    assert r2_deepfm > linear.score(X_test, y_test) + 0.1
    assert fitted.validation_scores_ is not None
    assert fitted.best_validation_score_ == max(fitted.validation_scores_)


def test_predictions_are_in_the_target_units(fitted, ratings_split):
    X_train, X_test, y_train, _ = ratings_split
    pred = fitted.predict(X_test)
    assert pred.shape == (len(X_test),)
    assert 2.0 < pred.mean() < 4.0
    assert fitted.target_mean_ == pytest.approx(y_train.mean())
    assert fitted.target_scale_ == pytest.approx(y_train.std())


def test_huber_loss_resists_outliers(ratings_split):
    X_train, X_test, y_train, y_test = ratings_split
    y_dirty = y_train.copy()
    y_dirty[:60] = 500.0
    params = dict(SMALL, max_iter=15, early_stopping=False)
    squared = DeepFMRegressor(**params).fit(X_train, y_dirty)
    huber = DeepFMRegressor(**params, loss="huber").fit(X_train, y_dirty)
    assert huber.score(X_test, y_test) > squared.score(X_test, y_test) + 0.1


def test_partial_fit_streams_ratings(ratings_split):
    X_train, X_test, y_train, y_test = ratings_split
    reg = DeepFMRegressor(**SMALL)
    for _ in range(8):
        for start in range(0, len(X_train), 1500):
            reg.partial_fit(X_train[start : start + 1500], y_train[start : start + 1500])
    assert reg.score(X_test, y_test) > 0.5


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (["a", "b"] * 50, "numeric targets y"),
        ([1.0, np.nan] * 50, "Input y contains NaN"),
        ([1.0, np.inf] * 50, "Input y contains infinity"),
    ],
)
def test_bad_targets_name_y(y, message):
    X = pd.DataFrame({"a": list("xy") * 50})
    with pytest.raises(ValueError, match=message):
        DeepFMRegressor(**SMALL).fit(X, y)


def test_constant_target_predicts_the_constant():
    X = pd.DataFrame({"a": list("xyz") * 20})
    reg = DeepFMRegressor(**SMALL, max_iter=3).fit(X, np.full(60, 7.0))
    assert reg.target_scale_ == 1.0
    np.testing.assert_allclose(reg.predict(X), 7.0, atol=0.5)


def make_outlier_target(n_samples=3000, n_test=1000, seed=0):
    """A user x item target (std about 2) whose training rows have 3 % of values at +/-500."""
    rng = np.random.default_rng(seed)
    user_bias, item_bias = rng.normal(0, 1.0, 40), rng.normal(0, 1.0, 30)
    users, items = rng.integers(0, 40, n_samples + n_test), rng.integers(0, 30, n_samples + n_test)
    truth = user_bias[users] + item_bias[items]
    y = truth[:n_samples] + rng.normal(0, 0.2, n_samples)
    outliers = rng.random(n_samples) < 0.03
    y[outliers] = rng.choice([-500.0, 500.0], outliers.sum())
    X = pd.DataFrame({"user": [f"u{u}" for u in users], "item": [f"i{i}" for i in items]})
    return X.iloc[:n_samples], y, X.iloc[n_samples:], truth[n_samples:]


def test_huber_standardises_the_target_robustly_and_ignores_outliers():
    X, y, X_test, truth = make_outlier_target()
    params = dict(SMALL, hidden_layer_sizes=(16,), max_iter=30)
    huber = DeepFMRegressor(loss="huber", **params).fit(X, y)
    q25, median, q75 = np.percentile(y, [25, 50, 75])
    assert huber.target_mean_ == pytest.approx(median)
    assert huber.target_scale_ == pytest.approx((q75 - q25) / 1.349)
    assert huber.target_scale_ < 3 < y.std()
    squared = DeepFMRegressor(**params).fit(X, y)
    mae_huber = np.abs(huber.predict(X_test) - truth).mean()
    mae_squared = np.abs(squared.predict(X_test) - truth).mean()
    assert mae_huber < 0.5 * np.abs(np.median(y) - truth).mean()
    assert mae_huber < 0.25 * mae_squared


def test_huber_early_stopping_scores_minus_the_mean_huber_loss():
    reg = DeepFMRegressor(loss="huber")
    y = np.array([0.0, 0.0, 0.0])
    output = np.array([[0.5], [-3.0], [0.0]])
    # 0.5 * 0.5**2 and 3 - 0.5: quadratic within one scale, linear beyond.
    assert reg._validation_score(y, output, None) == pytest.approx(-(0.125 + 2.5 + 0) / 3)
    assert reg._validation_score(y, output, np.array([1.0, 0.0, 1.0])) == pytest.approx(-0.125 / 2)
    # One gross outlier among the validation rows costs its distance, not its square.
    far = reg._validation_score(np.array([0.0, 0.0, 100.0]), np.zeros((3, 1)), None)
    assert far == pytest.approx(-(100 - 0.5) / 3)
