"""The refit's weight average: a short refit is averaged with the network early stopping kept."""

import numpy as np
import pytest
import torch

import skdeepfm._averaging as averaging
from skdeepfm import DeepFMClassifier, DeepFMNetwork, DeepFMRegressor
from skdeepfm._averaging import average_weights, averages_refit
from skdeepfm._batch_norm import batch_norm_layers
from skdeepfm._training import TrainingHistory
from skdeepfm.datasets import make_ad_clicks

from .conftest import batch_norm_inputs

# max_iter=3: early stopping keeps at most 3 epochs, a short run.
SHORT = dict(
    embedding_dim=4,
    hidden_layer_sizes=(16,),
    early_stopping=True,
    max_iter=3,
    batch_size=100,
    random_state=0,
    device="cpu",
)


def _network(seed):
    return DeepFMNetwork(
        [4, 5], embedding_dim=3, hidden_layer_sizes=(6,), generator=torch.Generator().manual_seed(seed)
    )


def test_average_weights_sets_each_parameter_to_the_mean_and_keeps_the_buffers():
    first, second = _network(0), _network(1)
    with torch.no_grad():
        batch_norm_layers(first)[0].running_var.fill_(3.0)
    theirs = dict(second.named_parameters())
    expected = {name: (p + theirs[name]) / 2 for name, p in first.named_parameters()}
    second_before = {name: p.clone() for name, p in second.named_parameters()}
    average_weights(first, second)
    for name, param in first.named_parameters():
        torch.testing.assert_close(param, expected[name], rtol=0, atol=1e-7)
    for name, param in second.named_parameters():
        torch.testing.assert_close(param, second_before[name], rtol=0, atol=0)
    assert torch.all(batch_norm_layers(first)[0].running_var == 3.0)


def test_only_runs_that_kept_few_epochs_are_averaged():
    def kept(best_epoch, n_epochs):
        scores = [0.0] * n_epochs
        scores[best_epoch - 1] = 1.0
        return TrainingHistory(validation_scores=scores)

    assert averages_refit(kept(1, 3))
    assert averages_refit(kept(averaging.AVERAGE_MAX_EPOCHS, 9))
    assert not averages_refit(kept(averaging.AVERAGE_MAX_EPOCHS + 1, 9))
    assert not averages_refit(TrainingHistory())  # no validation: no refit to average


@pytest.mark.parametrize("estimator", [DeepFMClassifier, DeepFMRegressor])
def test_a_short_refit_is_the_mean_of_the_two_networks_with_fresh_statistics(estimator, monkeypatch):
    X, y = make_ad_clicks(3000, random_state=0)
    if estimator is DeepFMRegressor:
        y = np.asarray(y, dtype=float) + X["hour"].to_numpy() / 24
    chosen = estimator(**SHORT, refit=False).fit(X, y)
    averaged = estimator(**SHORT).fit(X, y)
    monkeypatch.setattr(averaging, "AVERAGE_MAX_EPOCHS", 0)
    refit_alone = estimator(**SHORT).fit(X, y)
    assert averaged.n_iter_ == refit_alone.n_iter_ == int(np.argmax(chosen.validation_scores_)) + 1 <= 3
    mine, theirs = dict(chosen.network_.named_parameters()), dict(refit_alone.network_.named_parameters())
    for name, param in averaged.network_.named_parameters():
        torch.testing.assert_close(param, (mine[name] + theirs[name]) / 2, rtol=0, atol=1e-6)
    # The statistics are the averaged weights' own, over all 3,000 rows.
    inputs = batch_norm_inputs(averaged, X)
    layer = batch_norm_layers(averaged.network_)[0]
    torch.testing.assert_close(layer.running_mean, inputs.mean(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(layer.running_var, inputs.var(0), rtol=1e-4, atol=1e-8)
    assert not torch.allclose(layer.running_var, batch_norm_layers(refit_alone.network_)[0].running_var)
    # The calibration fitted on the held-out rows is kept.
    torch.testing.assert_close(averaged.network_.logit_scale, chosen.network_.logit_scale, rtol=0, atol=0)
    torch.testing.assert_close(averaged.network_.logit_shift, chosen.network_.logit_shift, rtol=0, atol=0)
    # Repeatable: the rows the statistics read are drawn from the random state.
    again = estimator(**SHORT).fit(X, y)
    monkeypatch.undo()
    np.testing.assert_array_equal(again.predict(X), refit_alone.predict(X))
    again = estimator(**SHORT).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), averaged.predict(X))
