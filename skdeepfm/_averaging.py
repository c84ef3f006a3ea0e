"""The refit's weight averages: with the selection network after a short run, else over its last epochs.

``refit=True`` leaves two networks that start from the same first weights:
the one early stopping kept (trained on all rows but the held-out ones) and
the refit (trained on all rows, for as many epochs). When early stopping
kept few epochs (at most :data:`AVERAGE_MAX_EPOCHS`), the two are still
close, and the mean of their weights predicts better than either: two noisy
estimates from a short run, averaged. After longer runs the two drift apart
and their mean loses to the refit alone; there the refit ends with the mean
of its own weights at the end of its last half of epochs, at most
:data:`TAIL_MAX_EPOCHS` (tail averaging, as in stochastic weight
averaging), the learning rate decayed by then.
Both are measured in ``benchmarks/RESULTS.md`` ("the refit's weight
average"). The BatchNorm running statistics of a mean are computed again,
as after any training.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ._batch_norm import REFRESH_ROWS, refresh_batch_norm
from ._optim import mark_changed
from ._training import DeviceRows, _refresh_batches

#: Most epochs kept by early stopping for which the refit network is
#: averaged with the selection network.
AVERAGE_MAX_EPOCHS = 4

#: Most epochs at the end of a longer refit whose weights it averages: half
#: of its epochs, at most this many (the long runs of FM-only models lost
#: with more).
TAIL_MAX_EPOCHS = 6


def averages_refit(selection):
    """Whether the refit of the ``selection`` run (a TrainingHistory) is averaged with its network."""
    best_epoch = selection.best_epoch
    return best_epoch is not None and best_epoch <= AVERAGE_MAX_EPOCHS


def tail_epochs(selection):
    """Epochs at the end of the refit of the ``selection`` run whose weights it averages (0: none).

    Half of the refit's epochs (rounded down), at most
    :data:`TAIL_MAX_EPOCHS`, when the selection kept more than
    :data:`AVERAGE_MAX_EPOCHS`; none after a short run, which is averaged
    with the selection network instead.
    """
    if selection.best_epoch is None or averages_refit(selection):
        return 0
    return min(selection.best_epoch // 2, TAIL_MAX_EPOCHS)


def refit_run_config(selection, config):
    """``config`` for the refit of the ``selection`` run: its epochs, decays and tail average."""
    return replace(selection.refit_config(config), average_last=tail_epochs(selection))


@torch.no_grad()
def average_weights(network, other):
    """Set each parameter of ``network`` to the mean of its value and ``other``'s.

    The two networks have the same architecture. Buffers (the BatchNorm
    statistics, the calibration, the field offsets) stay ``network``'s: the
    statistics belong to weights that no longer exist, so compute them again
    (:func:`refresh_statistics`, or the ranks' agreement).
    """
    for mine, theirs in zip(network.parameters(), other.parameters(), strict=True):
        mine.add_(theirs.to(mine.device)).mul_(0.5)
    mark_changed(network.parameters())


def statistics_rows(n_samples, seed):
    """Positions of the rows (at most :data:`REFRESH_ROWS`) that a refresh after averaging reads."""
    return np.random.RandomState(seed).permutation(n_samples)[:REFRESH_ROWS]


def refresh_statistics(network, data, device, seed):
    """Recompute ``network``'s BatchNorm statistics on up to :data:`REFRESH_ROWS` rows of ``data``.

    ``data`` is the encoded training rows; the rows read are drawn from
    ``seed``. Leaves ``network`` in eval mode. Returns the number of rows read.
    """
    rows = DeviceRows(data.take(statistics_rows(len(data), seed)), device)
    refresh_batch_norm(network, _refresh_batches(rows, torch.arange(len(rows), device=device)))
    network.eval()
    return len(rows)
