"""The batched training loop and batched inference for a DeepFM network.

Knows ``nn.Module`` and arrays, not scikit-learn: the estimator passes the
encoded data, the settings and a validation scorer.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ._batch_norm import REFRESH_CHUNK, REFRESH_ROWS, refresh_batch_norm
from ._cuda_graph import GraphedSteps
from ._optim import DeepFMOptimizer, mark_changed, plan_rows, use_dense_tables
from ._weight_mean import TailMean

#: Rows per forward pass at prediction time. Fixed, so that a row's score
#: never depends on how a caller batches its rows.
PREDICT_CHUNK_SIZE = 8192


def resolve_device(device):
    """The torch.device for ``device``: "cpu", "cuda", "cuda:N" or "auto".

    Raises a ValueError naming ``device`` when CUDA is asked for but absent.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"The 'device' parameter must be 'cpu', 'cuda', 'cuda:N' or 'auto'. Got {device!r} instead."
        ) from exc
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"The 'device' parameter must be 'cpu', 'cuda', 'cuda:N' or 'auto'. Got {device!r} instead."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"The 'device' parameter is {device!r}, but CUDA is not available on this machine. "
                "Use device='cpu' or 'auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"The 'device' parameter is {device!r}, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return resolved


def seeded_generator(seed, device="cpu"):
    """A torch.Generator on ``device`` seeded with ``seed``; the global one is never used."""
    return torch.Generator(device=device).manual_seed(seed)


def bfloat16_supported(device):
    """Whether ``device`` computes in bfloat16 natively.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: AVX-512 BF16 or AMX
    instructions; elsewhere bfloat16 is emulated and slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # torch.cpu exposes these checks as private functions only.
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def resolve_mixed_precision(mixed_precision, device):
    """Whether to train in bfloat16 autocast on ``device``.

    "auto": where :func:`bfloat16_supported`. True where it is not raises a
    ValueError naming ``mixed_precision``.
    """
    if mixed_precision == "auto":
        return bfloat16_supported(device)
    if mixed_precision is True or mixed_precision is False:
        if mixed_precision and not bfloat16_supported(device):
            raise ValueError(
                f"The 'mixed_precision' parameter is True, but {torch.device(device)} has no native "
                "bfloat16 support (a CPU with AVX-512 BF16 or AMX, or a CUDA GPU with bfloat16). "
                "Use mixed_precision='auto' or False."
            )
        return mixed_precision
    raise ValueError(
        f"The 'mixed_precision' parameter must be 'auto', True or False. Got {mixed_precision!r} instead."
    )


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run; see DeepFMClassifier for their meaning."""

    batch_size: int
    learning_rate: float
    max_iter: int
    alpha: float
    embedding_alpha: float
    n_iter_no_change: int
    tol: float
    shuffle: bool
    verbose: int
    seed: int
    #: "log_loss" (binary or multiclass cross-entropy, by the number of
    #: outputs), "squared_error" or "huber" (regression).
    loss: str = "log_loss"
    #: bfloat16 autocast for the forward pass: "auto" where the device runs it
    #: natively (see :func:`resolve_mixed_precision`), True, or False.
    mixed_precision: bool | str = "auto"
    #: Replay full-size steps from a CUDA graph on CUDA devices.
    cuda_graphs: bool = True
    #: Multiplier of the gradient the DNN passes back to the embeddings.
    dnn_gradient_scale: float = 1.0
    #: Multiplier of the learning rate after each epoch that does not improve
    #: (the validation score, or the training loss without validation).
    learning_rate_decay: float = 1.0
    #: A fixed run (the refit on all rows): one flag per epoch, False where the
    #: learning rate decays after that epoch; training runs every epoch, with
    #: no stopping. None: epochs and decays follow the scores.
    schedule: tuple | None = None
    #: With a schedule: the run ends with the mean of its weights at the end
    #: of this many last epochs (0 or 1: the last weights).
    average_last: int = 0


@dataclass
class TrainingHistory:
    """What a training run records, one entry per epoch."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    #: Whether each epoch improved (a False one decays the learning rate).
    improved: list = field(default_factory=list)
    best_validation_score: float | None = None
    best_loss: float = np.inf
    n_iter: int = 0
    converged: bool = False
    interrupted: bool = False
    optimizer_state: dict | None = None

    @property
    def best_epoch(self):
        """The epoch (from 1) of the best validation score; None without validation."""
        if not self.validation_scores:
            return None
        return int(np.argmax(self.validation_scores)) + 1

    def refit_config(self, config):
        """``config`` for the refit of this (selection) run: its best epoch, its decays."""
        n_epochs = self.best_epoch
        return replace(config, max_iter=n_epochs, schedule=tuple(self.improved[:n_epochs]))

    def keep_curves_of(self, selection):
        """Take the ``selection`` run's curves, to read epoch by epoch beside its scores."""
        self.loss_curve = selection.loss_curve
        self.validation_scores = selection.validation_scores
        self.best_validation_score = selection.best_validation_score


def batch_bounds(n_samples, batch_size):
    """Start and stop of each batch; a last batch of one row joins the one before.

    BatchNorm cannot train on a batch of one row.
    """
    starts = list(range(0, n_samples, batch_size))
    if len(starts) > 1 and n_samples - starts[-1] == 1:
        starts.pop()
    stops = starts[1:] + [n_samples]
    return list(zip(starts, stops, strict=True))


def _loss_function(loss, n_outputs):
    if loss == "squared_error":
        return lambda output, target: F.mse_loss(output.squeeze(1), target, reduction="none")
    if loss == "huber":
        return lambda output, target: F.huber_loss(output.squeeze(1), target, reduction="none")
    if n_outputs == 1:
        return lambda logits, target: F.binary_cross_entropy_with_logits(
            logits.squeeze(1), target, reduction="none"
        )
    return lambda logits, target: F.cross_entropy(logits, target, reduction="none")


def _optimizer(network, config, device):
    # L2 as Adam's (coupled) weight decay: `embedding_alpha` on the embedding
    # and first-order tables, `alpha` on the dense layers. On the tables it
    # acts on every row at every step (caught up lazily, see LazyTableAdam),
    # so rows seen rarely shrink towards zero: the regularisation that
    # measured best on frappe. Small tables take every step whole.
    n_rows = network.embedding.weight.shape[0]
    lookups = config.batch_size * len(network.field_dims)
    return DeepFMOptimizer(
        network,
        lr=config.learning_rate,
        alpha=config.alpha,
        embedding_alpha=config.embedding_alpha,
        # One kernel per step for all dense tensors (CPU and CUDA).
        fused=device.type in ("cpu", "cuda"),
        # On CUDA the whole step may be captured in a CUDA graph.
        capturable=device.type == "cuda",
        dense_tables=use_dense_tables(n_rows, lookups, device),
    )


def _as_targets(y, n_outputs, device):
    if n_outputs == 1:
        return torch.as_tensor(np.asarray(y, dtype=np.float32), device=device)
    return torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)


class DeviceRows:
    """Encoded rows held as tensors on a device; batches are gathered from them.

    ``data`` is an encoder's output (``codes``, ``values``, ``bags``; see
    ``EncodedFields``). Multi-valued fields are kept flat, with each row's
    start and length, so that a batch gathers its elements without padding.
    """

    def __init__(self, data, device):
        self.device = device
        # int32 codes stay int32 (the encoder's, half the memory); the
        # network adds its int64 field offsets per batch.
        code_dtype = np.int32 if data.codes.dtype == np.int32 else np.int64
        self.codes = torch.as_tensor(np.ascontiguousarray(data.codes, dtype=code_dtype), device=device)
        self.values = None
        if data.values is not None:
            self.values = torch.as_tensor(np.ascontiguousarray(data.values, dtype=np.float32), device=device)
        self.bags = []
        # Host copies of the lengths: a batch's element count is known
        # without reading it back from the device.
        self._host_lengths = []
        for index, (elements, lengths) in sorted(data.bags.items()):
            host_lengths = np.asarray(lengths, dtype=np.int64)
            self._host_lengths.append(host_lengths)
            lengths = torch.as_tensor(host_lengths, device=device)
            elements = torch.as_tensor(np.asarray(elements, dtype=np.int64), device=device)
            self.bags.append((index, elements, torch.cumsum(lengths, 0) - lengths, lengths))

    def __len__(self):
        return len(self.codes)

    def whole(self):
        """(codes, values, bags) of every row, in order, without copying."""
        return (
            self.codes,
            self.values,
            [(index, elements, starts) for index, elements, starts, _ in self.bags],
        )

    def element_counts(self, order, bounds):
        """Elements of each multi-valued field in each batch of an epoch, computed on the host.

        ``order`` (CPU tensor or array) lists the rows of the epoch, ``bounds``
        the batches' start and stop in it. Returns one tuple per batch, one
        count per multi-valued field: :meth:`gather`'s ``element_counts``.
        """
        if not self.bags:
            return [()] * len(bounds)
        order = np.asarray(order)
        starts = [start for start, _ in bounds]
        counts = [np.add.reduceat(lengths[order], starts) for lengths in self._host_lengths]
        return [tuple(int(c[i]) for c in counts) for i in range(len(bounds))]

    def gather(self, rows, element_counts=None):
        """(codes, values, bags) of ``rows``, a 1-D index tensor on the device.

        ``element_counts`` (from :meth:`element_counts`) saves reading each
        multi-valued field's element count back from the device.
        """
        values = None if self.values is None else self.values[rows]
        bags = []
        for i, (index, elements, starts, lengths) in enumerate(self.bags):
            taken = lengths[rows]
            new_starts = torch.cumsum(taken, 0) - taken
            total = int(taken.sum()) if element_counts is None else element_counts[i]
            positions = torch.repeat_interleave(starts[rows] - new_starts, taken, output_size=total)
            positions += torch.arange(total, device=self.device)
            bags.append((index, elements[positions], new_starts))
        return self.codes[rows], values, bags


def sparse_forward(network, tables, codes, values, bags, generator, *, static_shape, dnn_gradient_scale=1.0):
    """Training logits through a small tensor of the table rows the batch uses.

    Returns ``(logits, plan, leaf)``: after ``backward``, ``leaf.grad`` holds
    the gradient of the plan's rows, for ``tables.step(plan, leaf)``
    (``tables`` a :class:`LazyTableAdam`). Neither the lookup's backward nor
    the optimiser then touches the rest of the tables. With dense tables
    (``tables.dense``) ``plan`` is None and ``leaf`` holds every row.
    """
    rows, bag_rows = network.table_rows(codes, bags)
    if tables.dense:
        leaf = tables.gather_all()
        logits = network(rows, values, bag_rows, generator, table=leaf, dnn_gradient_scale=dnn_gradient_scale)
        return logits, None, leaf
    lookups = [rows.reshape(-1)] + [element_rows for _, element_rows, _ in bag_rows]
    plan = plan_rows(torch.cat(lookups) if bag_rows else lookups[0], static_shape=static_shape)
    leaf = tables.gather(plan)
    slots = plan.inverse.split([len(lookup) for lookup in lookups])
    slot_bags = [
        (field, element_slots, starts)
        for (field, _, starts), element_slots in zip(bag_rows, slots[1:], strict=True)
    ]
    logits = network(
        slots[0].view(rows.shape),
        values,
        slot_bags,
        generator,
        table=leaf,
        dnn_gradient_scale=dnn_gradient_scale,
    )
    return logits, plan, leaf


def train(
    network, data, y, sample_weight, config, *, device, validation=None, scorer=None, optimizer_state=None
):
    """Train ``network`` in place with Adam on encoded data.

    Parameters
    ----------
    network : DeepFMNetwork
        The network to train; moved to ``device``, left in eval mode.
    data : EncodedFields
        The encoded training rows (``codes``, ``values``, ``bags``).
    y : ndarray of shape (n_samples,)
        Targets: 0/1 for one output, class indices for several.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights, rescaled here to mean one.
    config : TrainingConfig
        The settings.
    device : torch.device
        Where to train.
    validation : tuple (data_val, y_val, w_val) or None
        Held-out rows for early stopping; None stops on the training loss.
    scorer : callable (y_val, logits, w_val) -> float
        Validation score, higher is better. Required with ``validation``.
    optimizer_state : dict or None, default=None
        The optimizer's ``state_dict`` from an earlier call, to continue
        training (``partial_fit``, ``warm_start``) with its moment estimates;
        None starts a fresh optimizer.

    Returns
    -------
    history : TrainingHistory
        ``interrupted`` is set when a KeyboardInterrupt stopped training
        after at least one epoch: the network then holds the best epoch's
        weights (with ``validation``) or the weights when interrupted.
        ``optimizer_state`` holds the optimizer's final ``state_dict``.

    Raises
    ------
    ValueError
        When the loss becomes NaN or infinite.
    MemoryError
        When CUDA runs out of memory; the message suggests a smaller batch.
    """
    network.to(device)
    rows_t = DeviceRows(data, device)
    n_samples = len(rows_t)
    y_t = _as_targets(y, network.n_outputs if config.loss == "log_loss" else 1, device)
    w = np.asarray(sample_weight, dtype=np.float64)
    w = w / w.max()  # first: the mean of weights near 1e308 overflows
    w_t = torch.as_tensor((w / w.mean()).astype(np.float32), device=device)
    loss_fn = _loss_function(config.loss, network.n_outputs)
    mixed_precision = resolve_mixed_precision(config.mixed_precision, device)
    optimizer = _optimizer(network, config, device)
    if optimizer_state is not None:
        # Keeps the moment estimates, but this call's settings (a warm start
        # may change learning_rate_init or alpha with set_params).
        optimizer.load_state_dict(optimizer_state)
    # On CUDA the row plan keeps a static shape: no host sync per step.
    static_shape = device.type != "cpu"
    shuffle_gen = seeded_generator(config.seed)
    dropout_gen = seeded_generator(config.seed + 1, device)
    bounds = batch_bounds(n_samples, config.batch_size)
    history = TrainingHistory()
    best_state = None
    no_improvement = 0
    total = torch.zeros((), device=device)

    def step(batch, element_counts=()):
        codes, values, bags = rows_t.gather(batch, element_counts)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed_precision, cache_enabled=False):
            logits, plan, leaf = sparse_forward(
                network,
                optimizer.tables,
                codes,
                values,
                bags,
                dropout_gen,
                static_shape=static_shape,
                dnn_gradient_scale=config.dnn_gradient_scale,
            )
        loss = (loss_fn(logits.float(), y_t[batch]) * w_t[batch]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(plan, leaf)
        total.add_(loss.detach() * len(batch))

    # Full-size steps replay from a CUDA graph; multi-valued fields make each
    # batch's shape differ, so they train eagerly.
    def graph_steps():
        return GraphedSteps(
            step,
            config.batch_size,
            [dropout_gen],
            enabled=(
                config.cuda_graphs
                and device.type == "cuda"
                and not rows_t.bags
                and _full_steps(bounds, config) >= GRAPH_MIN_STEPS
            ),
        )

    graphed = graph_steps()
    tail = TailMean.of_run(network, config)

    try:
        for epoch in range(1, config.max_iter + 1):
            started = time.perf_counter()
            network.train()
            if config.shuffle:
                host_order = torch.randperm(n_samples, generator=shuffle_gen)
            else:
                host_order = torch.arange(n_samples)
            order = host_order.to(device)
            counts = rows_t.element_counts(host_order, bounds)
            total.zero_()
            progress = tqdm(
                range(len(bounds)),
                desc=f"Epoch {epoch}",
                unit="batch",
                leave=False,
                disable=config.verbose < 1,
            )
            for b in progress:
                start, stop = bounds[b]
                if rows_t.bags:
                    step(order[start:stop], counts[b])
                else:
                    graphed(order[start:stop])
            if graphed.replays:
                # Replayed kernels do not move the version counters that
                # cached copies of the weights check.
                mark_changed(network.parameters())
            epoch_loss = float(total) / n_samples
            record_loss(history, epoch, epoch_loss)
            tail.add(epoch)
            if validation is not None:
                # Scored, and maybe kept, as prediction computes: with the
                # BatchNorm statistics of these weights, dropout off.
                refresh_batch_norm(network, _refresh_batches(rows_t, order))
            network.eval()

            score = None
            if validation is not None:
                data_val, y_val, w_val = validation
                score = float(scorer(y_val, predict_logits(network, data_val, device), w_val))
            best, decay, no_improvement, stop = epoch_outcome(
                config, history, epoch, epoch_loss, score, no_improvement
            )
            if best:
                best_state = copy.deepcopy(network.state_dict())
            if decay:
                optimizer.scale_learning_rate(config.learning_rate_decay)
                # A captured step holds the old rate: capture again.
                graphed.close()
                graphed = graph_steps()

            if config.verbose:
                line = f"Epoch {epoch}/{config.max_iter}: loss {epoch_loss:.5f}"
                if score is not None:
                    line += f", validation score {score:.5f}"
                tqdm.write(f"{line}, {time.perf_counter() - started:.2f} s")
            if stop:
                break
    except KeyboardInterrupt:
        # Stop cleanly with what was learned so far; before the first
        # epoch ends there is nothing to keep, so the interrupt goes on.
        if history.n_iter == 0:
            raise
        history.interrupted = True
    except torch.cuda.OutOfMemoryError as exc:
        raise MemoryError(
            f"CUDA ran out of memory while training with batch_size={config.batch_size}. "
            "Try a smaller batch_size, or device='cpu'."
        ) from exc
    finally:
        graphed.close()
        optimizer.zero_grad()

    if not history.interrupted:
        tail.apply()
    if best_state is not None:
        network.load_state_dict(best_state)
    elif history.n_iter:
        # Without validation only the final weights need their statistics.
        refresh_batch_norm(network, _refresh_batches(rows_t, order))
    network.eval()
    # The optimizer ends here: its moments move to the history uncopied.
    history.optimizer_state = optimizer.state_dict(copy=False)
    return history


def record_loss(history, epoch, epoch_loss):
    """Add an epoch's mean training loss to ``history``; raise if it is not finite."""
    if not np.isfinite(epoch_loss):
        raise ValueError(
            f"Training diverged: the loss became {epoch_loss} at epoch {epoch}. "
            "Try a smaller learning_rate_init."
        )
    history.loss_curve.append(epoch_loss)
    history.n_iter = epoch


def record_score(history, epoch_loss, score, tol):
    """Add an epoch's validation ``score`` (None without validation) to ``history``.

    Returns ``(improved, best)``: whether the epoch improved by more than
    ``tol`` on the best so far (the validation score, or the training loss
    without validation), and whether its weights are the best to keep (only
    with validation).
    """
    if score is None:
        improved = epoch_loss < history.best_loss - tol
        history.best_loss = min(history.best_loss, epoch_loss)
        history.improved.append(improved)
        return improved, False
    history.validation_scores.append(score)
    previous = history.best_validation_score
    improved = previous is None or score > previous + tol
    best = previous is None or score > previous
    if best:
        history.best_validation_score = score
    history.improved.append(improved)
    return improved, best


def epoch_outcome(config, history, epoch, epoch_loss, score, no_improvement):
    """Record an epoch in ``history``; return ``(best, decay, no_improvement, stop)``.

    ``score`` (None without validation) goes to ``history`` by
    :func:`record_score`. ``best``: the epoch's weights are the best to keep;
    ``decay``: the learning rate decays after it (it did not improve);
    ``no_improvement`` counts the epochs in a row without improvement, and
    at ``n_iter_no_change`` of them training stops (converged). With
    ``config.schedule`` (the refit), the schedule says whether the epoch
    improved, and training runs every epoch of it.
    """
    improved, best = record_score(history, epoch_loss, score, config.tol)
    if config.schedule is not None:
        improved = history.improved[-1] = config.schedule[epoch - 1]
        history.converged = epoch == len(config.schedule)
        no_improvement, stop = 0, False
    else:
        no_improvement = 0 if improved else no_improvement + 1
        stop = no_improvement >= config.n_iter_no_change
        history.converged = history.converged or stop
    return best, not improved and config.learning_rate_decay != 1.0, no_improvement, stop


def _refresh_batches(rows, order):
    """Batches of the first :data:`REFRESH_ROWS` rows of an epoch's ``order``.

    For :func:`refresh_batch_norm`; a lone row is skipped (BatchNorm needs two).
    """
    order = order[:REFRESH_ROWS]
    for start, stop in batch_bounds(len(order), REFRESH_CHUNK):
        if stop - start >= 2:
            yield rows.gather(order[start:stop])


#: Fewest full-size steps in a training call for which a CUDA graph is
#: captured: the capture costs about as much as a few dozen eager steps.
GRAPH_MIN_STEPS = 32


def _full_steps(bounds, config):
    """Full-size batches over all epochs of a training call."""
    return config.max_iter * sum(1 for start, stop in bounds if stop - start == config.batch_size)


def predict_logits(network, data, device):
    """Logits of encoded rows, a float64 ndarray of shape (n_samples, n_outputs).

    Runs in chunks of :data:`PREDICT_CHUNK_SIZE` rows under
    ``torch.inference_mode``, in float64 after the embedding lookup, so that a
    row's logits do not depend on the rows beside it. ``network`` must be in
    eval mode and is not changed, so concurrent calls are safe.
    """
    n_samples = len(data)
    out = np.empty((n_samples, network.n_outputs), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, n_samples, PREDICT_CHUNK_SIZE):
            stop = min(start + PREDICT_CHUNK_SIZE, n_samples)
            chunk = DeviceRows(data.take(np.arange(start, stop)), device)
            logits = network(*chunk.whole(), dtype=torch.float64)
            out[start:stop] = logits.cpu().numpy()
    return out


def network_device(network: nn.Module):
    """The device of the network's parameters."""
    return next(network.parameters()).device
