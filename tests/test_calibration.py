import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skdeepfm._calibration import SCALE_BOUNDS, fit_logit_calibration


def test_two_classes_is_platt_scaling_of_the_log_odds():
    rng = np.random.default_rng(1)
    z = rng.normal(size=3000)
    targets = (rng.random(3000) < 1 / (1 + np.exp(-(0.5 * z - 0.7)))).astype(int)
    weights = rng.random(3000)
    scale, shift = fit_logit_calibration(z[:, None], targets, weights)
    platt = LogisticRegression(C=1e12).fit(z[:, None], targets, sample_weight=weights)
    np.testing.assert_allclose(scale, platt.coef_[0], rtol=1e-3)
    np.testing.assert_allclose(shift, platt.intercept_, atol=1e-3)


def test_more_classes_get_one_temperature():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(4000, 4))
    proba = np.exp(truth) / np.exp(truth).sum(1, keepdims=True)
    targets = np.array([rng.choice(4, p=row) for row in proba])
    scale, shift = fit_logit_calibration(3 * truth, targets, np.ones(4000))
    assert scale == pytest.approx(np.full(4, 1 / 3), rel=0.1)
    assert np.all(scale == scale[0])
    np.testing.assert_array_equal(shift, np.zeros(4))


def test_the_ranking_is_kept_even_when_the_logits_point_the_wrong_way():
    rng = np.random.default_rng(3)
    z = rng.normal(size=1000)
    targets = (z < 0).astype(int)  # anti-correlated: a negative scale would fit best
    scale, _ = fit_logit_calibration(z[:, None], targets, np.ones(1000))
    assert scale[0] == pytest.approx(SCALE_BOUNDS[0])


def test_zero_weights_do_not_count_and_bad_logits_keep_the_identity():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2000, 1))
    targets = (rng.random(2000) < 1 / (1 + np.exp(-2 * z[:, 0]))).astype(int)
    weights = np.r_[np.ones(1000), np.zeros(1000)]
    flipped = np.r_[targets[:1000], 1 - targets[1000:]]
    np.testing.assert_allclose(
        fit_logit_calibration(z, flipped, weights),
        fit_logit_calibration(z[:1000], targets[:1000], np.ones(1000)),
        rtol=1e-6,
    )
    z[0, 0] = np.nan
    scale, shift = fit_logit_calibration(z, targets, np.ones(2000))
    assert (scale[0], shift[0]) == (1.0, 0.0)
