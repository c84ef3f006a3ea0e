"""Data-parallel training of one DeepFM network over several processes.

torch only, no Dask: each process (a *rank*) holds its own encoded rows and
a replica of the network; :func:`train_rank` trains the replica with the
gradients summed over the ranks at every step, so that every replica takes
the same Adam step and stays equal to the others. The exchange is one
all-reduce per step of one flat buffer: the dense layers' gradients and the
gradient of the whole tables (the tables are updated whole, see
``LazyTableAdam(dense=True)``), which suits tables of up to a few million
rows. Everything else that must agree is agreed the same way: the number
of steps, the weights' mean, the epoch's loss, the validation rows' logits
(each rank scores the same gathered rows, so early stopping stops every
rank at the same epoch) and the BatchNorm statistics.

:class:`GlooGroup` is the communication: a gloo process group of its own,
so that two trainings in one process do not share torch's default group.
"""

from __future__ import annotations

import copy
import hashlib
import math
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from ._averaging import refresh_statistics
from ._batch_norm import REFRESH_ROWS, batch_norm_layers, refresh_batch_norm
from ._optim import RowPlan
from ._training import (
    DeviceRows,
    TrainingHistory,
    _loss_function,
    _optimizer,
    _refresh_batches,
    epoch_outcome,
    predict_logits,
    record_loss,
    resolve_mixed_precision,
    seeded_generator,
    sparse_forward,
)
from ._weight_mean import TailMean


class GlooGroup:
    """A gloo process group of ``world_size`` ranks meeting at ``host:port``.

    Parameters
    ----------
    host, port : str, int
        Where rank 0 listens (a ``TCPStore``) for the others to join.
    rank, world_size : int
        This process's rank and the number of ranks.
    timeout : float
        Seconds any collective (and the meeting) may wait before it raises.
    """

    def __init__(self, host, port, rank, world_size, timeout):
        self.rank = int(rank)
        self.world_size = int(world_size)
        wait = timedelta(seconds=timeout)
        self._store = dist.TCPStore(host, int(port), self.world_size, self.rank == 0, timeout=wait)
        options = dist.ProcessGroupGloo._Options()
        options._timeout = wait
        options._devices = [dist.ProcessGroupGloo.create_device(hostname=host if host else "127.0.0.1")]
        self._group = dist.ProcessGroupGloo(self._store, self.rank, self.world_size, options)

    def all_reduce(self, tensor):
        """Sum ``tensor`` (CPU, contiguous) over the ranks, in place."""
        self._group.allreduce([tensor]).wait()
        return tensor

    def sum(self, values):
        """Sum of float64 ``values`` over the ranks, as an ndarray."""
        tensor = torch.as_tensor(np.asarray(values, dtype=np.float64).copy())
        return self.all_reduce(tensor).numpy()

    def max(self, value):
        """The largest of every rank's float ``value``."""
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        options = dist.AllreduceOptions()
        options.reduceOp = dist.ReduceOp.MAX
        self._group.allreduce([tensor], options).wait()
        return float(tensor)

    def all_gather(self, tensor):
        """Every rank's ``tensor`` (same shape on every rank), by rank."""
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        self._group.allgather([out], [tensor]).wait()
        return out

    def concatenate(self, counts, array):
        """Every rank's ``array`` (rows by rank), given every rank's row count ``counts``."""
        array = np.asarray(array, dtype=np.float64)
        width = array.shape[1:]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        whole = torch.zeros((int(offsets[-1]), *width), dtype=torch.float64)
        whole[int(offsets[self.rank]) : int(offsets[self.rank + 1])] = torch.as_tensor(array)
        return self.all_reduce(whole).numpy()

    def close(self):
        """Leave the group; a rank still waiting on this one gets an error."""
        self._group = None
        self._store = None


def agreed_bounds(counts, batch_size, rank, batch_norm):
    """Each step's rows on ``rank`` and the rows of each global step.

    Every rank runs ``ceil(sum(counts) / batch_size)`` steps an epoch, fewer
    when a rank holds too few rows for one (two with BatchNorm) a step;
    each rank cuts its own rows into that many near-equal batches.

    Returns
    -------
    bounds : list of (start, stop)
        This rank's batches.
    global_sizes : ndarray of shape (n_steps,)
        Rows of each step over all ranks.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_steps = math.ceil(int(counts.sum()) / batch_size)
    n_steps = max(1, min(n_steps, int(counts.min()) // (2 if batch_norm else 1)))
    cuts = np.arange(n_steps + 1)[None, :] * counts[:, None] // n_steps
    own = cuts[rank]
    bounds = list(zip(own[:-1].tolist(), own[1:].tolist(), strict=True))
    return bounds, np.diff(cuts, axis=1).sum(axis=0)


class _BatchRows:
    """The optimiser's tables as :func:`sparse_forward` sees them: a step gathers its batch's rows only.

    In both of the optimiser's modes a rank trains through a small leaf of
    the rows its batch looks up, so that its gradient is as small as the
    rows, and only those rows are exchanged (see :class:`RowExchange`).
    """

    dense = False

    def __init__(self, tables):
        self.gather = tables.gather


class RowExchange:
    """One exchange a step: the dense layers' gradients and the table rows each rank touched.

    Each rank sends one flat float32 buffer, ``[dense gradients | row ids |
    row gradients]`` (the ids bit-cast, padded to the largest rank's rows),
    gathered from every rank in one collective after a tiny one that agrees
    the rows' counts. Every rank then sums the dense gradients and merges the
    rows (the union of the ranks' rows, their gradients summed), and so
    takes the same step. Tables of no more rows than a rank looks up in a
    step (``whole_rows``) are cheaper whole: their gradient, every row,
    is summed with the dense gradients in one all-reduce, without ids or a
    merge. One rank needs no exchange.
    """

    def __init__(self, group, dense_params, width, whole_rows=None):
        self.group = group
        self.params = list(dense_params)
        self.sizes = [p.numel() for p in self.params]
        self.n_dense = sum(self.sizes)
        self.width = width
        self.whole_rows = whole_rows
        self._eye = torch.eye(group.world_size, dtype=torch.float64)[group.rank]

    def __call__(self, rows, row_grad):
        """Set the summed dense gradients on the parameters; return the tables' (rows, gradients).

        ``rows`` (int64, distinct) and ``row_grad`` (one row each) are this
        rank's. The rows returned are None for a whole-table gradient.
        """
        if self.group.world_size == 1:
            return rows, row_grad
        # A parameter without a gradient (not used by the loss) has none on any rank.
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.whole_rows is not None:
            buffer = torch.zeros(self.n_dense + self.whole_rows * self.width, dtype=torch.float32)
            torch.cat([g.reshape(-1) for g in grads], out=buffer[: self.n_dense])
            table = buffer[self.n_dense :].view(self.whole_rows, self.width)
            table.index_copy_(0, rows, row_grad)
            self._set_dense(self.group.all_reduce(buffer))
            return None, table
        counts = self.group.all_reduce(self._eye * len(rows)).to(torch.int64)
        n_max = int(counts.max())
        buffer = torch.zeros(self.n_dense + n_max * (1 + self.width), dtype=torch.float32)
        torch.cat([g.reshape(-1) for g in grads], out=buffer[: self.n_dense])
        ids = buffer[self.n_dense : self.n_dense + n_max].view(torch.int32)
        ids[: len(rows)] = rows
        start = self.n_dense + n_max
        buffer[start : start + len(rows) * self.width] = row_grad.reshape(-1)
        gathered = self.group.all_gather(buffer)
        dense = gathered[0][: self.n_dense].clone()
        for other in gathered[1:]:
            dense += other[: self.n_dense]
        self._set_dense(dense)
        all_rows = torch.cat(
            [
                other[self.n_dense : self.n_dense + int(n)].view(torch.int32)
                for other, n in zip(gathered, counts.tolist(), strict=True)
            ]
        ).to(torch.int64)
        all_grads = torch.cat(
            [
                other[start : start + int(n) * self.width].view(int(n), self.width)
                for other, n in zip(gathered, counts.tolist(), strict=True)
            ]
        )
        union, inverse = torch.unique(all_rows, sorted=True, return_inverse=True)
        merged = torch.zeros((len(union), self.width), dtype=all_grads.dtype)
        return union, merged.index_add_(0, inverse, all_grads)

    def _set_dense(self, flat):
        offset = 0
        for param, size in zip(self.params, self.sizes, strict=True):
            if param.grad is not None:
                param.grad = flat[offset : offset + size].view_as(param)
            offset += size


class TableStep:
    """The optimiser's step from the merged table rows' gradient.

    Lazy tables step on those rows. Dense tables (every row takes every
    step, as in one process) take a whole-table gradient: the exchange's
    (rows None), or one buffer, kept between steps, in which only the
    previous step's rows are cleared.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self._grad = None
        self._rows = None

    def __call__(self, rows, grad):
        optimizer, tables = self.optimizer, self.optimizer.tables
        if not tables.dense:
            plan = RowPlan(rows, None)
            leaf = tables.gather(plan)
            leaf.grad = grad
            optimizer.step(plan, leaf)
            return
        leaf = tables.gather_all()
        if rows is None:  # the whole tables' gradient
            leaf.grad = grad
            optimizer.step(None, leaf)
            return
        if self._grad is None:
            self._grad = torch.zeros_like(leaf)
        else:
            self._grad.index_fill_(0, self._rows, 0.0)
        self._rows = rows
        leaf.grad = self._grad.index_copy_(0, rows, grad)
        optimizer.step(None, leaf)


def _agree_batch_norm(network, group, n_rows):
    """Running statistics of every BatchNorm layer averaged over the ranks, weighted by ``n_rows``."""
    layers = batch_norm_layers(network)
    if not layers:
        return
    parts = []
    for layer in layers:
        mean, var = layer.running_mean.double(), layer.running_var.double()
        parts += [mean * n_rows, (var + mean.square()) * n_rows]
    flat = group.all_reduce(torch.cat([*parts, torch.tensor([float(n_rows)], dtype=torch.float64)]))
    total = flat[-1]
    start = 0
    with torch.no_grad():
        for layer in layers:
            size = layer.running_mean.numel()
            mean = flat[start : start + size] / total
            second = flat[start + size : start + 2 * size] / total
            layer.running_mean.copy_(mean)
            layer.running_var.copy_((second - mean.square()).clamp_min(0))
            start += 2 * size


def agree_refreshed_statistics(network, data, group, seed):
    """Recompute ``network``'s BatchNorm statistics on every rank's ``data`` and agree on them.

    For weights that changed outside training (the refit's average); each
    rank reads its own rows, drawn from ``seed`` and its rank.
    """
    n_read = refresh_statistics(network, data, torch.device("cpu"), seed + 7919 * group.rank)
    _agree_batch_norm(network, group, n_read)


def weights_digest(network):
    """A hash of every parameter and buffer: equal on ranks that hold the same weights."""
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_rank(network, data, y, sample_weight, config, *, group, validation=None, scorer=None):
    """Train this rank's replica of ``network`` in place, on the CPU, with the other ranks.

    Parameters
    ----------
    network : DeepFMNetwork
        The same initial weights on every rank; left in eval mode.
    data : EncodedFields
        This rank's training rows (at least one).
    y, sample_weight : ndarray of shape (n_samples,)
        This rank's targets and weights; the weights are rescaled to a mean
        of one over all ranks.
    config : TrainingConfig
        The same on every rank; ``batch_size`` is the global batch.
    group : GlooGroup
        The ranks.
    validation : tuple (data_val, y_val, w_val) or None
        This rank's held-out rows (any number, zero included); None on every
        rank stops on the training loss.
    scorer : callable (y_val, logits, w_val) -> float
        Validation score, higher is better; called on every rank's rows.

    Returns
    -------
    history : TrainingHistory
        The same on every rank.
    gathered : tuple (y_val, logits, w_val) or None
        The validation rows of every rank with the final weights' logits.
    """
    device = torch.device("cpu")
    network.to(device)
    rows = DeviceRows(data, device)
    n_outputs = network.n_outputs if config.loss == "log_loss" else 1
    y_t = torch.as_tensor(np.asarray(y, dtype=np.float32 if n_outputs == 1 else np.int64))
    counts = group.sum(np.eye(group.world_size)[group.rank] * len(rows)).astype(np.int64)
    n_total = int(counts.sum())
    w = np.asarray(sample_weight, dtype=np.float64)
    w = w / group.max(w.max())  # first: the mean of weights near 1e308 overflows
    w_t = torch.as_tensor((w / (group.sum([w.sum()])[0] / n_total)).astype(np.float32))
    bounds, global_sizes = agreed_bounds(counts, config.batch_size, group.rank, network.batch_norm)
    loss_fn = _loss_function(config.loss, network.n_outputs)
    mixed_precision = resolve_mixed_precision(config.mixed_precision, device)
    # The optimiser of one process training on the global batch, dense or lazy tables alike.
    optimizer = _optimizer(network, config, device)
    batch_rows = _BatchRows(optimizer.tables)
    n_rows = network.embedding.weight.shape[0]
    # Decided alike on every rank: from the agreed step sizes.
    rank_lookups = int(global_sizes.max()) // group.world_size * len(network.field_dims)
    whole = optimizer.tables.dense and n_rows <= rank_lookups
    exchange = RowExchange(
        group, optimizer._dense_params, sum(optimizer.tables.widths), n_rows if whole else None
    )
    table_step = TableStep(optimizer)
    shuffle_gen = seeded_generator(config.seed + 7919 * group.rank)
    dropout_gen = seeded_generator(config.seed + 1 + 7919 * group.rank)
    if validation is not None:
        val_counts = group.sum(np.eye(group.world_size)[group.rank] * len(validation[1])).astype(np.int64)
        y_val_all = group.concatenate(val_counts, np.asarray(validation[1])[:, None])[:, 0]
        w_val_all = group.concatenate(val_counts, np.asarray(validation[2])[:, None])[:, 0]
        if np.issubdtype(np.asarray(validation[1]).dtype, np.integer):
            y_val_all = y_val_all.astype(np.int64)

    def gathered_logits():
        data_val = validation[0]
        logits = predict_logits(network, data_val, device) if len(data_val) else np.zeros((0, n_outputs))
        return group.concatenate(val_counts, logits)

    def agree_statistics(order):
        refresh_batch_norm(network, _refresh_batches(rows, order))
        _agree_batch_norm(network, group, min(len(rows), REFRESH_ROWS))

    history = TrainingHistory()
    best_state = None
    no_improvement = 0
    tail = TailMean.of_run(network, config)
    for epoch in range(1, config.max_iter + 1):
        network.train()
        order = (
            torch.randperm(len(rows), generator=shuffle_gen) if config.shuffle else torch.arange(len(rows))
        )
        total = 0.0
        for (start, stop), global_size in zip(bounds, global_sizes, strict=True):
            batch = order[start:stop]
            codes, values, bags = rows.gather(batch)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_precision, cache_enabled=False):
                logits, plan, leaf = sparse_forward(
                    network,
                    batch_rows,
                    codes,
                    values,
                    bags,
                    dropout_gen,
                    static_shape=False,
                    dnn_gradient_scale=config.dnn_gradient_scale,
                )
            # The global batch's mean: this rank's sum over the step's rows of every rank.
            loss = (loss_fn(logits.float(), y_t[batch]) * w_t[batch]).sum() / float(global_size)
            optimizer.zero_grad()
            loss.backward()
            table_step(*exchange(plan.unique, leaf.grad))
            total += float(loss.detach()) * float(global_size)
        epoch_loss = float(group.sum([total])[0]) / n_total
        record_loss(history, epoch, epoch_loss)
        tail.add(epoch)
        if validation is not None:
            agree_statistics(order)
        network.eval()
        score = None if validation is None else float(scorer(y_val_all, gathered_logits(), w_val_all))
        outcome = epoch_outcome(config, history, epoch, epoch_loss, score, no_improvement)
        best, decay, no_improvement, stop = outcome
        if best:
            best_state = copy.deepcopy(network.state_dict())
        if decay:
            optimizer.scale_learning_rate(config.learning_rate_decay)
        if stop:
            break
    optimizer.zero_grad()
    tail.apply()
    if best_state is not None:
        network.load_state_dict(best_state)
    else:
        agree_statistics(order)
    network.eval()
    history.optimizer_state = optimizer.state_dict(copy=False)
    gathered = None if validation is None else (y_val_all, gathered_logits(), w_val_all)
    return history, gathered
