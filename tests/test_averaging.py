"""The refit's weight averages: with the kept network after a short run, else over its last epochs."""

import numpy as np
import pytest
import torch

import skdeepfm._averaging as averaging
from skdeepfm import DeepFMClassifier, DeepFMNetwork, DeepFMRegressor
from skdeepfm._averaging import average_weights, averages_refit, tail_epochs
from skdeepfm._batch_norm import batch_norm_layers
from skdeepfm._training import TrainingHistory
from skdeepfm._weight_mean import TailMean
from skdeepfm.datasets import make_ad_clicks

from .conftest import assert_mean_of_epochs, assert_mean_of_two, assert_statistics_of_all_rows

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


def kept(best_epoch, n_epochs):
    """The history of a run of ``n_epochs`` whose validation score peaked at ``best_epoch``."""
    scores = [0.0] * n_epochs
    scores[best_epoch - 1] = 1.0
    return TrainingHistory(validation_scores=scores)


def test_only_runs_that_kept_few_epochs_are_averaged():
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
    assert_mean_of_two(averaged, chosen, refit_alone)
    # The statistics are the averaged weights' own, over all 3,000 rows.
    assert_statistics_of_all_rows(averaged, X)
    layer = batch_norm_layers(averaged.network_)[0]
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


def test_tail_mean_is_the_mean_of_the_last_epochs_weights():
    net = _network(0)
    tail = TailMean(net, max_iter=5, n_epochs=3)
    for epoch in range(1, 6):
        with torch.no_grad():
            for param in net.parameters():
                param.fill_(float(epoch))
        tail.add(epoch)
    assert tail.apply()
    for param in net.parameters():
        torch.testing.assert_close(param, torch.full_like(param, 4.0))  # epochs 3, 4 and 5
    kept = _network(1)
    before = [p.clone() for p in kept.parameters()]
    for n_epochs in (0, 1):
        last_only = TailMean(kept, max_iter=5, n_epochs=n_epochs)
        for epoch in range(1, 6):
            last_only.add(epoch)
        assert not last_only.apply()
    for param, old in zip(kept.parameters(), before, strict=True):
        torch.testing.assert_close(param, old, rtol=0, atol=0)


def test_a_long_refit_ends_with_the_mean_of_its_last_half_of_epochs(monkeypatch):
    X, y = make_ad_clicks(3000, random_state=0)
    snapshots = []
    original = TailMean.add

    def recording(self, epoch):
        snapshots.append([p.detach().clone() for p in self.network.parameters()])
        original(self, epoch)

    monkeypatch.setattr(TailMean, "add", recording)
    # As in test_classifier's refit test: early stopping keeps epoch 11 of 14.
    params = dict(SHORT, max_iter=30, n_iter_no_change=3, learning_rate_decay=0.5, batch_size=270)
    clf = DeepFMClassifier(**params).fit(X, y)
    best = int(np.argmax(clf.validation_scores_)) + 1
    assert clf.n_iter_ == best > averaging.AVERAGE_MAX_EPOCHS
    refit_epochs = snapshots[-best:]  # the refit records each of its epochs last
    n_last = min(best // 2, averaging.TAIL_MAX_EPOCHS)
    assert_mean_of_epochs(clf, refit_epochs[-n_last:])
    assert not torch.equal(clf.network_.embedding.weight, refit_epochs[-1][1])
    assert_statistics_of_all_rows(clf, X)


def test_tail_epochs_are_half_of_a_long_refit():
    bound = averaging.AVERAGE_MAX_EPOCHS
    assert tail_epochs(kept(bound, 9)) == 0  # averaged with the selection network instead
    assert tail_epochs(kept(bound + 1, 9)) == (bound + 1) // 2
    assert tail_epochs(kept(13, 15)) == 6
    assert tail_epochs(kept(40, 42)) == averaging.TAIL_MAX_EPOCHS == 6
    assert tail_epochs(TrainingHistory()) == 0
