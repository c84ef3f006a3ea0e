import numpy as np
import pandas as pd
import pytest
import torch

# Tests fit many tiny networks, for which one thread is much faster than
# several competing for a shared machine's cores.
torch.set_num_threads(1)


def make_interaction_data(n_samples=2000, seed=0):
    """Clicks that depend on the interaction of two fields only (an XOR)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "user": rng.choice([f"u{i}" for i in range(6)], n_samples),
            "ad": rng.choice([f"a{i}" for i in range(4)], n_samples),
            "noise": rng.integers(0, 3, n_samples),
        }
    )
    user_group = X["user"].str[1:].astype(int) % 2
    ad_group = X["ad"].str[1:].astype(int) % 2
    y = np.where(user_group == ad_group, "click", "skip")
    return X, y


@pytest.fixture(scope="session")
def interaction_data():
    return make_interaction_data()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def batch_norm_inputs(model, X):
    """What a fitted model's first BatchNorm layer receives for the rows of ``X`` (dropout off)."""
    from skdeepfm._fields import validate_fields
    from skdeepfm._training import DeviceRows

    network = model.network_
    encoded = model.encoder_._encode_columns(validate_fields(model.encoder_, X, reset=False))
    rows = DeviceRows(encoded, torch.device("cpu"))
    with torch.no_grad():
        vectors = network.field_vectors(*rows.gather(torch.arange(len(rows))))
        return network.dnn[0](vectors.flatten(1))


def assert_mean_of_two(model, first, second):
    """Each parameter of ``model``'s network is the mean of ``first``'s and ``second``'s."""
    mine, theirs = dict(first.network_.named_parameters()), dict(second.network_.named_parameters())
    for name, param in model.network_.named_parameters():
        torch.testing.assert_close(param, (mine[name] + theirs[name]) / 2, rtol=0, atol=1e-6)


def assert_mean_of_epochs(model, epochs):
    """Each parameter of ``model``'s network is the mean of its values in ``epochs`` (lists of tensors)."""
    expected = [torch.stack(weights).mean(0) for weights in zip(*epochs, strict=True)]
    for param, mean in zip(model.network_.parameters(), expected, strict=True):
        torch.testing.assert_close(param, mean, rtol=1e-5, atol=1e-6)


def assert_statistics_of_all_rows(model, X, var_rtol=1e-4):
    """The first BatchNorm layer's statistics are those of its inputs over every row of ``X``."""
    from skdeepfm._batch_norm import batch_norm_layers

    inputs = batch_norm_inputs(model, X)
    layer = batch_norm_layers(model.network_)[0]
    torch.testing.assert_close(layer.running_mean, inputs.mean(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(layer.running_var, inputs.var(0), rtol=var_rtol, atol=1e-8)
