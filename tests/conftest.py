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
