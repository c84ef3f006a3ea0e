"""Calibration of a trained network's logits on held-out rows.

Early stopping keeps the epoch with the best validation log-loss, but the
network's probabilities are still those of a model fitted to its training
rows: over-confident where it memorised rare categories. An affine map of
the logits fitted on the validation rows (Platt scaling; a temperature for
more than two classes, which keeps every row's most probable class) corrects
the scale at the cost of two parameters. numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

#: The smallest and largest scale of the logits the calibration may choose.
SCALE_BOUNDS = (1e-2, 1e2)


def fit_logit_calibration(logits, targets, sample_weight):
    """The scale and shift of the logits with the least weighted log-loss.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_outputs)
        The network's logits of held-out rows: one column for two classes
        (the second class's log-odds), one per class otherwise.
    targets : ndarray of shape (n_samples,)
        Class indices.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights, at least one positive.

    Returns
    -------
    scale, shift : ndarray of shape (n_outputs,)
        With one output, ``logits * scale + shift`` is the Platt-scaled
        log-odds (``scale > 0``, so the ranking of the rows is kept); with
        more, ``scale`` is one temperature's inverse for every class and
        ``shift`` is zero. The identity when it fits the rows no worse.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=2000)
    >>> targets = (rng.random(2000) < 1 / (1 + np.exp(-truth))).astype(int)
    >>> scale, shift = fit_logit_calibration(3 * truth[:, None], targets, np.ones(2000))
    >>> bool(0.25 < scale[0] < 0.45), bool(abs(shift[0]) < 0.2)
    (True, True)
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    weights = np.asarray(sample_weight, dtype=np.float64)
    weights = weights / weights.sum()
    n_outputs = logits.shape[1]
    identity = np.ones(n_outputs), np.zeros(n_outputs)
    if not np.all(np.isfinite(logits)):
        return identity
    low, high = np.log(SCALE_BOUNDS)
    if n_outputs == 1:
        z = logits[:, 0]
        sign = np.where(targets == 1, 1.0, -1.0)

        def loss(theta):
            # log(1 + exp(-sign * (a z + b))) and its gradient in (log a, b).
            margin = sign * (np.exp(theta[0]) * z + theta[1])
            value = np.sum(weights * np.logaddexp(0.0, -margin))
            residual = -weights * sign * _sigmoid(-margin)
            return value, np.array([np.sum(residual * z) * np.exp(theta[0]), np.sum(residual)])

        start, bounds = np.zeros(2), [(low, high), (None, None)]
    else:
        rows = np.arange(len(targets))

        def loss(theta):
            scaled = np.exp(theta[0]) * logits
            value = -np.sum(weights * log_softmax(scaled, axis=1)[rows, targets])
            proba = softmax(scaled, axis=1)
            expected = np.sum(proba * logits, axis=1) - logits[rows, targets]
            return value, np.array([np.sum(weights * expected) * np.exp(theta[0])])

        start, bounds = np.zeros(1), [(low, high)]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    if not (np.all(np.isfinite(result.x)) and result.fun < loss(start)[0]):
        return identity
    scale = np.full(n_outputs, np.exp(result.x[0]))
    shift = np.array([result.x[1]]) if n_outputs == 1 else np.zeros(n_outputs)
    return scale, shift


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))
