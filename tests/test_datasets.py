import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from skdeepfm import DeepFMClassifier
from skdeepfm._baseline import linear_baseline
from skdeepfm.datasets import INTERESTS, make_ad_clicks


def test_shape_columns_and_determinism():
    X, y = make_ad_clicks(1000, random_state=3)
    assert X.shape == (1000, 7)
    assert list(X.columns) == [
        "age",
        "gender",
        "interests",
        "ad_category",
        "advertiser_id",
        "device_type",
        "hour",
    ]
    assert X["hour"].dtype == np.float64
    assert X["hour"].between(0, 24).all()
    lengths = X["interests"].map(len)
    assert lengths.min() == 0
    assert lengths.max() <= 4
    assert set().union(*X["interests"]) <= set(INTERESTS)
    assert set(np.unique(y)) == {0, 1}
    assert 0.05 < y.mean() < 0.35
    X2, y2 = make_ad_clicks(1000, random_state=3)
    pd.testing.assert_frame_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make_ad_clicks(1000, random_state=4)
    assert not X.equals(X3)


def test_advertisers_have_a_long_tail():
    X, _ = make_ad_clicks(20_000, n_advertisers=200, random_state=0)
    counts = X["advertiser_id"].value_counts()
    assert counts.iloc[0] > 20 * counts.median()
    assert X["advertiser_id"].nunique() > 150


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        make_ad_clicks(0)
    with pytest.raises(ValueError, match="n_advertisers must be a positive int"):
        make_ad_clicks(10, n_advertisers=0)


def test_deepfm_beats_a_linear_model_on_the_interactions():
    X_train, y_train = make_ad_clicks(20_000, random_state=0)
    X_test, y_test = make_ad_clicks(10_000, random_state=1)
    linear = linear_baseline(X_train)
    linear_auc = roc_auc_score(y_test, linear.fit(X_train, y_train).predict_proba(X_test)[:, 1])
    deepfm = DeepFMClassifier(hidden_layer_sizes=(64, 64), random_state=0, device="cpu").fit(X_train, y_train)
    np.testing.assert_array_equal(
        deepfm.encoder_.field_kinds_,
        ["categorical", "categorical", "multivalue", "categorical", "categorical", "categorical", "numeric"],
    )
    deepfm_auc = roc_auc_score(y_test, deepfm.predict_proba(X_test)[:, 1])
    assert deepfm_auc > linear_auc + 0.02
