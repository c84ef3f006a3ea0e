"""The mean of a network's weights over the last epochs of a fixed run (tail averaging)."""

from __future__ import annotations

import torch


class TailMean:
    """Running mean of ``network``'s parameters at the end of the last ``n_epochs`` of ``max_iter``.

    Parameters
    ----------
    network : torch.nn.Module
        The network being trained.
    max_iter : int
        Epochs of the run (a fixed run: it trains every one of them).
    n_epochs : int
        Epochs at the end of the run whose weights are averaged; 0 or 1
        keep the last weights.
    """

    def __init__(self, network, max_iter, n_epochs):
        self.network = network
        self.first = max_iter - n_epochs + 1 if n_epochs > 1 else None
        self.mean = None
        self.count = 0

    @classmethod
    def of_run(cls, network, config):
        """The tail mean of a training run with ``config`` (a TrainingConfig).

        Only a fixed run (with a ``schedule``) trains every epoch up to
        ``max_iter``, so only its ``average_last`` epochs are averaged.
        """
        n_epochs = config.average_last if config.schedule is not None else 0
        return cls(network, config.max_iter, n_epochs)

    @torch.no_grad()
    def add(self, epoch):
        """Take the weights at the end of ``epoch`` (from 1) into the mean, if it is one of the last."""
        if self.first is None or epoch < self.first:
            return
        self.count += 1
        if self.mean is None:
            self.mean = [param.detach().clone() for param in self.network.parameters()]
            return
        for mean, param in zip(self.mean, self.network.parameters(), strict=True):
            mean.add_(param.detach() - mean, alpha=1.0 / self.count)

    @torch.no_grad()
    def apply(self):
        """Set the network's parameters to the mean (when it holds more than one epoch).

        Returns whether they changed; the BatchNorm statistics are then stale.
        """
        if self.count < 2:
            return False
        for mean, param in zip(self.mean, self.network.parameters(), strict=True):
            param.copy_(mean)
        return True
