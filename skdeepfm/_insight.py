"""What a fitted DeepFM estimator learned: the strength of each pair of fields.

The FM term of DeepFM sums, over pairs of fields ``(i, j)``, the dot product
``<v_i, v_j>`` of the fields' vectors. :func:`field_interactions` averages the
absolute value of each pair's term over rows (or over the training
vocabulary), so that pairs that the FM term relies on stand out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from ._fields import column_name, validate_fields
from ._training import PREDICT_CHUNK_SIZE, DeviceRows, network_device

#: With ``X=None``, at most this many codes per field enter the expectation:
#: the most frequent half exactly, the rest of the field's mass by codes drawn
#: from it (see ``_field_support``).
MAX_CODES_PER_FIELD = 1024
#: Seed of the draws from the rare codes of big vocabularies.
SUPPORT_SEED = 0


def field_interactions(estimator, X=None):
    """Mean absolute FM interaction between each pair of fields.

    The interaction of fields ``i`` and ``j`` on one row is the FM term's
    contribution to the logit, ``fm_scale * <v_i, v_j>``: the dot product of
    the fields' vectors (a multi-valued field's pooled vector; a numeric
    field's vector times its scaled value) times the estimator's
    ``fm_scale``. With several outputs (more than two classes), the FM term
    maps the element-wise product ``v_i * v_j`` to the logits with a learned
    projection; the interaction is then the mean over the logits of the
    absolute projected term.

    Parameters
    ----------
    estimator : DeepFMClassifier or DeepFMRegressor
        A fitted estimator.
    X : {array-like, DataFrame} of shape (n_samples, n_features) or None, default=None
        Rows to average over. None averages over the training vocabulary:
        see Notes.

    Returns
    -------
    interactions : pandas.DataFrame of shape (n_fields, n_fields)
        Symmetric and non-negative, with a zero diagonal (the FM term has no
        interaction of a field with itself). Index and columns are the field
        names (``feature_names_in_``, else ``x0``, ``x1``, ...).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``estimator`` is not fitted.

    Notes
    -----
    With ``X=None`` the value for fields ``i`` and ``j`` is the expectation
    of ``|<v_a, v_b>|`` over a code ``a`` of field ``i`` and a code ``b`` of
    field ``j`` drawn independently, each with its training frequency
    (the encoder's ``code_counts_``, counted when the encoder was fitted).
    For a numeric field the vector is taken at value 1 (one standardised
    unit above the median); for a multi-valued field each element counts
    once, unpooled. The expectation is exact for fields of at most
    :data:`MAX_CODES_PER_FIELD` codes; for larger vocabularies it takes the
    most frequent half of those codes exactly and represents the remaining
    mass by codes drawn from it with a fixed seed, which keeps the cost
    bounded and the result repeatable.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm import DeepFMClassifier
    >>> X = pd.DataFrame({"user": ["a", "b", "a", "c"] * 25, "ad": ["x", "y", "y", "x"] * 25,
    ...                   "device": ["phone", "desktop"] * 50})
    >>> y = [1, 0, 0, 1] * 25
    >>> clf = DeepFMClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> clf.field_interactions().shape
    (3, 3)
    >>> list(clf.field_interactions(X).columns)
    ['user', 'ad', 'device']
    """
    check_is_fitted(estimator, "network_")
    network = estimator.network_
    weights = _output_weights(network)
    if X is None:
        matrix = _vocabulary_interactions(estimator, weights)
    else:
        matrix = _row_interactions(estimator, X, weights)
    np.fill_diagonal(matrix, 0.0)
    names = [column_name(estimator, j) for j in range(len(estimator.field_dims_))]
    return pd.DataFrame(matrix, index=pd.Index(names), columns=pd.Index(names))


def _output_weights(network):
    """(n_outputs, embedding_dim) weights that turn ``v_i * v_j`` into each output's term.

    One output: the plain sum over the embedding dimension, so that the
    interaction is ``<v_i, v_j>``. Several: the rows of the FM projection.
    Both times the network's ``fm_scale``, as in the logits.
    """
    if network.fm_projection is None:
        weights = torch.ones(1, network.embedding_dim, dtype=torch.float64)
    else:
        weights = network.fm_projection.weight.detach().to("cpu", torch.float64)
    return weights * network.fm_scale


def _row_interactions(estimator, X, weights):
    """Mean over the rows of ``X`` of ``|sum_d w_kd v_id v_jd|``, averaged over outputs k."""
    columns = validate_fields(estimator, X, reset=False)
    encoded = estimator.encoder_._encode_columns(columns)
    network = estimator.network_
    device = network_device(network)
    weights = weights.to(device)
    n_samples, n_fields = encoded.codes.shape
    total = torch.zeros(n_fields, n_fields, dtype=torch.float64, device=device)
    with torch.inference_mode():
        for start in range(0, n_samples, PREDICT_CHUNK_SIZE):
            stop = min(start + PREDICT_CHUNK_SIZE, n_samples)
            chunk = DeviceRows(encoded.take(np.arange(start, stop)), device)
            vectors = network.field_vectors(*chunk.whole()).to(torch.float64)
            for w in weights:
                pairs = torch.einsum("nid,njd->nij", vectors * w, vectors)
                total += pairs.abs().sum(0)
    return (total / (n_samples * len(weights))).cpu().numpy()


def _vocabulary_interactions(estimator, weights):
    """Expectation of ``|<v_a, v_b>|`` under the training frequencies of the codes."""
    encoder = estimator.encoder_
    network = estimator.network_
    table = network.embedding.weight.detach().to("cpu", torch.float64)
    offsets = network.offsets.cpu().numpy()
    rng = np.random.default_rng(SUPPORT_SEED)
    vectors, probabilities, owners = [], [], []
    for j, counts in enumerate(encoder.code_counts_):
        codes, p = _field_support(np.asarray(counts, dtype=np.float64), rng)
        # A numeric field's codes are its one learned vector and the missing
        # code, both rows of the table: the vector at value 1 needs no scaling.
        # A multi-valued field's counts are per element, each element a row.
        vectors.append(table[torch.as_tensor(codes + offsets[j])])
        probabilities.append(p)
        owners.append(np.full(len(codes), j))
    n_fields = len(vectors)
    # Each field's probabilities as one column of a (n_atoms, n_fields) matrix,
    # so that p_i^T |G| P sums a block of the Gram matrix per field.
    owners = np.concatenate(owners)
    spread = np.zeros((len(owners), n_fields))
    spread[np.arange(len(owners)), owners] = np.concatenate(probabilities)
    spread = torch.as_tensor(spread)
    every = torch.cat(vectors)
    matrix = torch.zeros(n_fields, n_fields, dtype=torch.float64)
    for i in range(n_fields):
        for w in weights:
            gram = (vectors[i] * w) @ every.T
            matrix[i] += torch.as_tensor(probabilities[i]) @ gram.abs() @ spread
    return (matrix / len(weights)).numpy()


def _field_support(counts, rng):
    """Codes and probabilities that stand for a field's training distribution.

    All codes with a positive count when there are at most
    ``MAX_CODES_PER_FIELD``; else the most frequent half of that many, each
    with its probability, and as many codes drawn (with replacement, by
    frequency) from the others, sharing the others' mass equally: an
    unbiased estimate of any expectation over the field.
    """
    total = counts.sum()
    if total <= 0:
        # No training value (a multi-valued field of empty lists): its
        # pooled vector is zero, so it interacts with nothing.
        return np.zeros(1, dtype=np.int64), np.zeros(1)
    present = np.flatnonzero(counts > 0)
    if len(present) <= MAX_CODES_PER_FIELD:
        return present, counts[present] / total
    order = present[np.argsort(-counts[present], kind="stable")]
    n_top = MAX_CODES_PER_FIELD // 2
    top, rest = order[:n_top], order[n_top:]
    rest_mass = counts[rest].sum() / total
    n_drawn = MAX_CODES_PER_FIELD - n_top
    drawn = rng.choice(rest, size=n_drawn, p=counts[rest] / counts[rest].sum())
    codes = np.concatenate([top, drawn])
    p = np.concatenate([counts[top] / total, np.full(n_drawn, rest_mass / n_drawn)])
    return codes, p
