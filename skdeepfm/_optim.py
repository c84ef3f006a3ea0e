"""Adam for DeepFM training: lazy over the table rows a step uses, dense elsewhere.

torch only. The embedding and first-order tables have one row per code, so
their size grows with the vocabulary while a batch uses few of their rows.
:class:`LazyTableAdam` does the optimiser's work on those rows only, and
catches a row up on the steps it missed when it is next used; tables with
few rows for the lookups of a step it updates whole (``dense=True``), which
is then cheaper. :class:`DeepFMOptimizer` pairs it with ``torch.optim.Adam``
on the dense layers behind one ``step`` / ``state_dict`` /
``load_state_dict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.autograd.graph import increment_version

#: Sub-steps in which the steps a row missed are caught up (see
#: :meth:`LazyTableAdam._catch_up`): two cut the worst errors of one against
#: dense Adam by about half, more gain little.
CATCH_UP_SUBSTEPS = 2

#: Tables of at most this many rows per lookup of a step are updated whole
#: on the CPU (:func:`use_dense_tables`). One step of fused dense Adam over
#: the tables (plus the dense gradient and the copy back) costs about as much
#: as the lazy step's sort, gathers and catch-up at 15-20 rows per lookup
#: (10 or 26 fields, batch 1,024, 2-core CPU); at 8 it is about half.
DENSE_ROWS_PER_LOOKUP = 8


def use_dense_tables(n_rows, lookups_per_step, device):
    """Whether :class:`LazyTableAdam` should update tables of ``n_rows`` rows whole.

    CPU only: the CUDA training loop replays the lazy step from a graph.
    """
    return torch.device(device).type == "cpu" and n_rows <= DENSE_ROWS_PER_LOOKUP * lookups_per_step


def mark_changed(params):
    """Move the version counter of each tensor in ``params``, as an in-place change does.

    The counters tell cached copies (the float64 weights of prediction) that a
    tensor changed; fused kernels and CUDA graph replays do not move them.
    """
    for param in params:
        increment_version(param)


@dataclass
class RowPlan:
    """The distinct table rows of one step.

    Attributes
    ----------
    unique : torch.Tensor of shape (n_slots,), int64
        The distinct rows, sorted. With a static shape ``n_slots`` is the
        number of looked-up rows, and the slots past the distinct ones repeat
        the last distinct row.
    inverse : torch.Tensor of shape (n_lookups,), int64
        The slot of each looked-up row: ``unique[inverse]`` are the rows.
    canonical : torch.Tensor of shape (n_slots,), int64, or None
        With a static shape, the slot whose gradient each slot takes: itself,
        or the last distinct row's slot for the repeats. None otherwise.
    """

    unique: torch.Tensor
    inverse: torch.Tensor
    canonical: torch.Tensor | None = None


def plan_rows(rows, *, static_shape):
    """Distinct rows of ``rows`` (1-D, int64) and where each lookup finds its row.

    With ``static_shape`` the result's size depends on ``len(rows)`` only, so
    no value is read back from the device (no host sync on CUDA): the slots
    past the distinct rows repeat the last one, and the optimiser writes the
    same values through each repeat. Without it (on the CPU, where reading a
    size costs nothing) the distinct rows are cut out, so that the optimiser
    touches each row once.
    """
    sorted_rows, order = torch.sort(rows)
    is_new = torch.ones_like(sorted_rows, dtype=torch.bool)
    is_new[1:] = sorted_rows[1:] != sorted_rows[:-1]
    slot = torch.cumsum(is_new, 0) - 1
    inverse = torch.empty_like(slot)
    inverse[order] = slot
    if not static_shape:
        n_unique = int(slot[-1]) + 1
        unique = torch.empty(n_unique, dtype=rows.dtype, device=rows.device)
        unique[slot] = sorted_rows
        return RowPlan(unique, inverse)
    unique = sorted_rows[-1:].repeat(len(rows))
    unique[slot] = sorted_rows
    canonical = torch.minimum(torch.arange(len(rows), device=rows.device), slot[-1])
    return RowPlan(unique, inverse, canonical)


class LazyTableAdam:
    """Adam with coupled L2 on tables, working on the rows each step uses.

    The tables (the embedding and the first-order weights) share their rows
    and are optimised as one table of their concatenated columns. A step
    gets the gradient of the rows in a :class:`RowPlan` and updates those
    rows, their moment estimates and the step at which each was last
    updated.

    Dense Adam with weight decay (``grad + weight_decay * param``) also moves
    every row a batch does not use: the decay term enters the moments, and
    the momentum of earlier gradients keeps moving the row. This is what the
    whole-table L2 relies on: Adam divides the decay by the row's gradient
    scale, so a rarely seen row is pulled to zero within a few hundred
    steps, while a row seen in every batch barely feels it. A row that
    missed ``k`` steps is caught up on them when it is next used, in closed
    form: over ``k / CATCH_UP_SUBSTEPS`` steps with the decay gradient held at
    its start value, the first moment is a geometric sum, the second moment
    is taken at the middle of the span, and the decay shrinks the row by
    ``exp(-rate * k)``. Rows used at every step never catch up, and follow
    dense Adam exactly.

    With ``dense=True`` every row takes every step, as in ``torch.optim.Adam``
    (whose fused kernel it runs): the tables are then optimised as one
    leaf tensor from :meth:`gather_all`, whose gradient covers every row.
    Cheaper for small tables, where the lazy step's sort, gathers and
    catch-up cost more than a pass over the whole table. Both modes keep the
    same state (:meth:`state_dict`), so either continues from the other.

    Parameters
    ----------
    tables : sequence of torch.Tensor
        Leaf tensors of shape (n_rows, width_i), same ``n_rows``, updated in
        place (under ``torch.no_grad``). With ``dense=True`` they must not
        change otherwise while the optimizer is in use.
    lr, weight_decay, betas, eps
        As in ``torch.optim.Adam``.
    dense : bool, default=False
        Update every row at every step (:meth:`gather_all`, ``step(None,
        leaf)``) instead of the rows of a :class:`RowPlan`.
    fused : bool or None, default=None
        Passed to ``torch.optim.Adam`` in dense mode.
    """

    def __init__(self, tables, *, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8, dense=False, fused=None):
        self.tables = list(tables)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.widths = [table.shape[1] for table in self.tables]
        n_rows = self.tables[0].shape[0]
        first = self.tables[0]
        width = sum(self.widths)
        # The step count lives on the device, so that a step can be replayed
        # from a CUDA graph: every value a step computes is a tensor.
        self.step_tensor = torch.zeros((), dtype=torch.int64, device=first.device)
        self.exp_avg = torch.zeros(n_rows, width, dtype=first.dtype, device=first.device)
        self.exp_avg_sq = torch.zeros(n_rows, width, dtype=first.dtype, device=first.device)
        # The step at which each row was last updated; 0 for never. In dense
        # mode every row is updated at every step: set when the state is read.
        self.last_step = torch.zeros(n_rows, dtype=torch.int64, device=first.device)
        self.dense = bool(dense)
        self._fused = fused
        # Dense mode: the tables side by side, and torch's Adam over them.
        self._whole = None
        self._whole_adam = None

    @property
    def step_count(self):
        """Steps taken so far (read from the device)."""
        return int(self.step_tensor)

    def gather(self, plan):
        """A leaf tensor of the plan's rows, all tables side by side, requiring grad.

        Shape (n_slots, sum of the tables' widths).
        """
        return torch.cat(
            [table.detach().index_select(0, plan.unique) for table in self.tables], 1
        ).requires_grad_()

    def gather_all(self):
        """Dense mode: a leaf tensor of every row, all tables side by side, requiring grad.

        Shape (n_rows, sum of the tables' widths); the same tensor at every
        step, which :meth:`step` updates and copies back to the tables. The
        rows a batch looks up are table rows (field offsets included).
        """
        if not self.dense:
            raise RuntimeError("gather_all is for a LazyTableAdam made with dense=True.")
        if self._whole is None:
            whole = self._joined().requires_grad_()
            adam = torch.optim.Adam(
                [whole],
                lr=self.lr,
                betas=self.betas,
                eps=self.eps,
                weight_decay=self.weight_decay,
                fused=self._fused,
            )
            # Adam works on this optimizer's moments in place.
            adam.state[whole] = {
                "step": torch.tensor(float(self.step_count), dtype=torch.float32, device=whole.device),
                "exp_avg": self.exp_avg,
                "exp_avg_sq": self.exp_avg_sq,
            }
            self._whole, self._whole_adam = whole, adam
        return self._whole

    def scale_learning_rate(self, factor):
        """Multiply the learning rate by ``factor`` (rows catching up later use the new rate)."""
        self.lr *= factor
        if self._whole_adam is not None:
            for group in self._whole_adam.param_groups:
                group["lr"] *= factor

    def zero_grad(self):
        """Drop the gradient of :meth:`gather_all`'s tensor (dense mode)."""
        if self._whole is not None:
            self._whole.grad = None

    @torch.no_grad()
    def step(self, plan, leaf):
        """Update the plan's rows from ``leaf.grad`` (``leaf`` from :meth:`gather`).

        In dense mode ``plan`` is None and ``leaf`` comes from
        :meth:`gather_all`: every row takes the step. Issues device work only
        (no value read back, no Python-side state), so a CUDA graph can
        capture and replay it.
        """
        if plan is None:
            self._dense_step(leaf)
            return
        self.step_tensor += 1
        t = self.step_tensor
        beta1, beta2 = self.betas
        rows = plan.unique
        grad = leaf.grad
        param = leaf.detach()
        if plan.canonical is not None:
            # Repeated slots take the gradient of the row they repeat, so that
            # every write to that row carries the same values.
            grad = grad.index_select(0, plan.canonical)
        exp_avg = self.exp_avg.index_select(0, rows)
        exp_avg_sq = self.exp_avg_sq.index_select(0, rows)
        last = self.last_step.index_select(0, rows)
        param, exp_avg, exp_avg_sq = self._catch_up(param, exp_avg, exp_avg_sq, last, t)

        # Dense Adam's update, in torch.optim.Adam's order of operations; the
        # bias corrections in float64, as torch computes them from Python floats.
        if self.weight_decay:
            grad = grad.add(param, alpha=self.weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        t_float = t.double()
        step_size = self.lr / (1 - beta1**t_float)
        denom = (exp_avg_sq.sqrt() / (1 - beta2**t_float).sqrt()).add_(self.eps)
        param = param - exp_avg.div(denom).mul_(step_size)

        self.exp_avg.index_copy_(0, rows, exp_avg)
        self.exp_avg_sq.index_copy_(0, rows, exp_avg_sq)
        # index_copy_, not index_fill_: a tensor fill value is read back to the host.
        self.last_step.index_copy_(0, rows, t.expand(len(rows)))
        for table, column in zip(self.tables, param.split(self.widths, 1), strict=True):
            table.index_copy_(0, rows, column)

    def _dense_step(self, leaf):
        if leaf is not self._whole:
            raise ValueError("A step without a row plan takes the tensor from gather_all.")
        self.step_tensor += 1
        self._whole_adam.step()
        leaf.grad = None
        self._write_whole(leaf.detach())

    def _joined(self):
        """Every row of the tables, side by side (a new tensor)."""
        return torch.cat([table.detach() for table in self.tables], 1)

    def _write_whole(self, whole):
        """Copy ``whole`` (every row, the tables side by side) into the tables."""
        for table, column in zip(self.tables, whole.split(self.widths, 1), strict=True):
            table.copy_(column)

    @torch.no_grad()
    def _catch_up_all(self):
        """Catch every row up on the steps it missed (dense mode, after loading a lazy state)."""
        t = self.step_tensor + 1
        whole, exp_avg, exp_avg_sq = self._catch_up(
            self._joined(), self.exp_avg, self.exp_avg_sq, self.last_step, t
        )
        self.exp_avg.copy_(exp_avg)
        self.exp_avg_sq.copy_(exp_avg_sq)
        self._write_whole(whole)
        self.last_step.copy_(self.step_tensor)

    def _catch_up(self, param, exp_avg, exp_avg_sq, last, t):
        """Rows, moments after the steps since ``last`` (per row) that dense Adam made without them.

        ``t`` is the current step (a 0-d tensor); a row last updated at step
        ``last`` missed ``t - 1 - last`` steps. For a row that missed none
        every coefficient is 0 or 1, and the row and its moments come back
        unchanged (bit for bit). Per-row coefficients are computed on
        ``(n_rows, 1)`` tensors; the ``(n_rows, width)`` work is 16
        element-wise operations per sub-step.
        """
        beta1, beta2 = self.betas
        lr, decay, eps = self.lr, self.weight_decay, self.eps
        log_beta1, log_beta2 = math.log(beta1), math.log(beta2)
        missed = (t - 1) - last
        span = missed.to(param.dtype).unsqueeze(1) / CATCH_UP_SUBSTEPS
        start = last.to(param.dtype).unsqueeze(1)
        beta1_k = torch.exp(span * log_beta1)
        beta2_k = torch.exp(span * log_beta2)
        beta2_half = torch.exp(span * (0.5 * log_beta2))
        # sum_{i=1..k} beta1^i: the weight of the old first moment over the span.
        carried = beta1 * (1 - beta1_k) / (1 - beta1)
        # The decay gradient is decay * row: its square enters the second
        # moment at the middle of the span (weight 1 - beta2_half) and, as the
        # mean of the span's start and end, at its end (weight 1 - beta2_k).
        middle_sq_weight = (1 - beta2_half) * decay**2
        end_sq_weight = (1 - beta2_k) * (0.5 * decay**2)
        end_grad_weight = (1 - beta1_k) * decay
        row, avg, avg_sq = param, exp_avg, exp_avg_sq
        for sub in range(CATCH_UP_SUBSTEPS):
            middle = start + span * (sub + 0.5) + 0.5
            correction1 = 1 - torch.exp(middle * log_beta1)
            correction2 = 1 - torch.exp(middle * log_beta2)
            row_sq = row.square()
            # sqrt(second moment at the middle / its bias correction) + eps
            denom = torch.addcmul(avg_sq * beta2_half, row_sq, middle_sq_weight)
            denom = denom.mul_(1 / correction2).sqrt_().add_(eps)
            # The decay shrinks the row by exp(-rate); the old first moment
            # moves it by the momentum it carries over the span.
            shrink = torch.div((-lr * decay) * (span - carried) / correction1, denom).exp_()
            moved = torch.addcdiv(row * shrink, avg * (lr * carried / correction1), denom, value=-1)
            avg = torch.addcmul(avg * beta1_k, moved, end_grad_weight)
            avg_sq = torch.addcmul(avg_sq * beta2_k, torch.addcmul(row_sq, moved, moved), end_sq_weight)
            row = moved
        return row, avg, avg_sq

    def state_dict(self, *, copy=True):
        """Moments, per-row last steps and the step count (tensors and an int).

        ``copy=False`` hands over the optimizer's own tensors, for a caller
        that discards the optimizer (they are as large as the tables, twice).
        """
        if self.dense:
            self.last_step.copy_(self.step_tensor)
        tensors = {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "last_step": self.last_step}
        if copy:
            tensors = {name: tensor.clone() for name, tensor in tensors.items()}
        return {"step": self.step_count, **tensors}

    def load_state_dict(self, state):
        """Take the moments and steps of ``state``; the hyperparameters stay this object's."""
        for name in ("exp_avg", "exp_avg_sq", "last_step"):
            current = getattr(self, name)
            value = state[name]
            if value.shape != current.shape:
                raise ValueError(
                    f"The optimizer state's {name} has shape {tuple(value.shape)}, but the tables "
                    f"need {tuple(current.shape)}."
                )
            current.copy_(value)
        self.step_tensor.fill_(int(state["step"]))
        if self.dense:
            # Rows a lazy run left behind catch up now; the whole-table tensor
            # and its Adam step count are made again from the new state.
            self._catch_up_all()
            self._whole = self._whole_adam = None


class DeepFMOptimizer:
    """Lazy Adam on a DeepFM network's tables, ``torch.optim.Adam`` on the rest.

    Parameters
    ----------
    network : DeepFMNetwork
        Its ``embedding.weight`` and ``linear.weight`` go to
        :class:`LazyTableAdam` with ``embedding_alpha``; the other
        parameters to Adam with ``alpha``, both as coupled weight decay.
    lr : float
        Learning rate of both.
    alpha, embedding_alpha : float
        L2 of the dense layers and of the tables.
    fused : bool or None, default=None
        Passed to ``torch.optim.Adam`` for the dense layers.
    capturable : bool, default=False
        Passed to ``torch.optim.Adam``: its step count stays on the device,
        so that a CUDA graph can capture the step.
    dense_tables : bool, default=False
        Update the tables whole at every step (``LazyTableAdam``'s
        ``dense``).
    """

    def __init__(
        self, network, *, lr, alpha, embedding_alpha, fused=None, capturable=False, dense_tables=False
    ):
        tables = [network.embedding.weight, network.linear.weight]
        dense = [p for p in network.parameters() if all(p is not t for t in tables)]
        self.tables = LazyTableAdam(
            tables, lr=lr, weight_decay=embedding_alpha, dense=dense_tables, fused=fused
        )
        self.dense = torch.optim.Adam(dense, lr=lr, weight_decay=alpha, fused=fused, capturable=capturable)
        self._dense_params = dense

    def zero_grad(self):
        """Drop the dense layers' gradients, and the whole tables' in dense mode."""
        self.dense.zero_grad(set_to_none=True)
        self.tables.zero_grad()

    def step(self, plan, leaf):
        """One Adam step: the dense layers, then the plan's table rows (all rows without a plan)."""
        self.dense.step()
        if self.dense.defaults.get("fused"):
            # The fused kernel does not bump the parameters' version counters.
            mark_changed(self._dense_params)
        self.tables.step(plan, leaf)

    def scale_learning_rate(self, factor):
        """Multiply the learning rate of the dense layers and of the tables by ``factor``."""
        for group in self.dense.param_groups:
            group["lr"] *= factor
        self.tables.scale_learning_rate(factor)

    def state_dict(self, *, copy=True):
        """{"dense": Adam's state_dict, "tables": LazyTableAdam's}: tensors, ints and floats.

        ``copy`` as in :meth:`LazyTableAdam.state_dict` (Adam's own state is
        never copied).
        """
        return {"dense": self.dense.state_dict(), "tables": self.tables.state_dict(copy=copy)}

    def load_state_dict(self, state):
        """Continue from ``state``: its moments and steps, this optimizer's hyperparameters.

        Also reads the state of the earlier single ``torch.optim.Adam`` (table
        group first), from models trained before the tables were lazy.
        """
        settings = [{k: v for k, v in group.items() if k != "params"} for group in self.dense.param_groups]
        if "dense" in state:
            self.tables.load_state_dict(state["tables"])
            self.dense.load_state_dict(state["dense"])
        else:
            self._load_single_adam(state)
        for group, setting in zip(self.dense.param_groups, settings, strict=True):
            group.update(setting)

    def _load_single_adam(self, state):
        groups = state["param_groups"]
        table_ids, dense_ids = groups[0]["params"], groups[1]["params"]
        per_param = state["state"]
        if len(table_ids) != 2 or len(dense_ids) != len(self._dense_params):
            raise ValueError("The optimizer state does not match this network's parameters.")
        table_states = [per_param.get(i) for i in table_ids]
        if all(s is not None for s in table_states):
            step = int(float(table_states[0]["step"]))
            self.tables.load_state_dict(
                {
                    "step": step,
                    "exp_avg": torch.cat([s["exp_avg"] for s in table_states], 1),
                    "exp_avg_sq": torch.cat([s["exp_avg_sq"] for s in table_states], 1),
                    # Dense Adam updated every row at every step.
                    "last_step": torch.full_like(self.tables.last_step, step),
                }
            )
        dense_state = {
            "state": {new: per_param[old] for new, old in enumerate(dense_ids) if old in per_param},
            "param_groups": [{**groups[1], "params": list(range(len(dense_ids)))}],
        }
        self.dense.load_state_dict(dense_state)
