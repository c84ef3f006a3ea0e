import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from skdeepfm import DeepFMClassifier, DeepFMNetwork
from skdeepfm._batch_norm import batch_norm_layers, refresh_batch_norm
from skdeepfm.datasets import make_ad_clicks


def network(dropout=0.0, seed=0):
    return DeepFMNetwork(
        [5, 7, 3],
        embedding_dim=4,
        hidden_layer_sizes=(8, 6),
        dropout=dropout,
        generator=torch.Generator().manual_seed(seed),
    )


def codes(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(np.column_stack([rng.integers(0, d, n) for d in (5, 7, 3)]))


def test_statistics_are_those_of_the_rows_in_eval_mode():
    net = network()
    x = codes()
    assert refresh_batch_norm(net, [(x[:150],), (x[150:],)])
    first = batch_norm_layers(net)[0]
    with torch.no_grad():
        inputs = net.field_vectors(x).flatten(1)
        pre = net.dnn[0](inputs)
    halves = pre[:150], pre[150:]
    torch.testing.assert_close(first.running_mean, pre.mean(0))
    expected_var = torch.stack([h.var(0) for h in halves]).mean(0)
    torch.testing.assert_close(first.running_var, expected_var)
    assert first.momentum == 0.1


def test_dropout_does_not_enter_the_statistics_and_modes_are_kept():
    with_dropout, without = network(dropout=0.5), network(dropout=0.0)
    x = codes()
    with_dropout.train()
    refresh_batch_norm(with_dropout, [(x,)])
    refresh_batch_norm(without.eval(), [(x,)])
    assert with_dropout.training
    assert not without.training
    for a, b in zip(batch_norm_layers(with_dropout), batch_norm_layers(without), strict=True):
        torch.testing.assert_close(a.running_var, b.running_var)
        assert a.momentum == 0.1


def test_no_rows_or_a_failure_leave_the_statistics_as_they_were():
    net = network()
    before = [layer.running_var.clone() for layer in batch_norm_layers(net)]
    assert not refresh_batch_norm(net, [])

    def failing():
        yield (codes(),)
        raise RuntimeError("broken batch")

    with pytest.raises(RuntimeError, match="broken batch"):
        refresh_batch_norm(net, failing())
    for layer, var in zip(batch_norm_layers(net), before, strict=True):
        torch.testing.assert_close(layer.running_var, var)
    assert not refresh_batch_norm(DeepFMNetwork([3, 3], hidden_layer_sizes=(4,), batch_norm=False), [])


@pytest.mark.parametrize("n_samples", [2_000, 5_000])
def test_default_fits_predict_the_base_rate_and_beat_the_constant(n_samples):
    # Few steps per epoch: the running statistics of BatchNorm alone were far
    # from the layers' inputs, and the mean predicted rate 0.04-0.07 too high.
    X, y = make_ad_clicks(n_samples, random_state=0)
    X_test, y_test = make_ad_clicks(5_000, random_state=1)
    clf = DeepFMClassifier(random_state=0).fit(X, y)
    proba = clf.predict_proba(X_test)[:, 1]
    assert abs(proba.mean() - np.mean(y_test)) < 0.02
    constant = np.full(len(y_test), np.mean(y))
    assert log_loss(y_test, proba) < log_loss(y_test, constant)
