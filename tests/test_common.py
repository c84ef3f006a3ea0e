"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeepfm import DeepFMClassifier, DeepFMRegressor, FieldEncoder

MINI_BATCH_WEIGHTS = (
    "Mini-batch training cannot make a weight of 2 equal to a repeated row: the repeated "
    "row changes the batches, the number of optimiser steps and the dropout masks. "
    "scikit-learn's own MLP and SGD estimators list this check as failing too."
)
EXPECTED_FAILED_CHECKS = {
    "DeepFMClassifier": {"check_sample_weight_equivalence_on_dense_data": MINI_BATCH_WEIGHTS},
    "DeepFMRegressor": {"check_sample_weight_equivalence_on_dense_data": MINI_BATCH_WEIGHTS},
}


# On the CPU, where fits are repeatable bit for bit (check_fit_idempotent).
@parametrize_with_checks(
    [
        DeepFMClassifier(random_state=0, device="cpu"),
        DeepFMRegressor(random_state=0, device="cpu"),
        FieldEncoder(),
        FieldEncoder(numeric_features=None, min_frequency=2, max_categories=5),
        FieldEncoder(hash_buckets=64),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
