import copy

import numpy as np
import pytest
import torch

from skdeepfm import DeepFMNetwork
from skdeepfm._optim import DeepFMOptimizer, LazyTableAdam, plan_rows


def tables(n_rows=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n_rows, 4, generator=gen) * 0.05, torch.randn(n_rows, 1, generator=gen) * 0.05]


def lazy_run(batches, weight_decay, *, static_shape=False, n_rows=12, lr=1e-2):
    """Tables after lazy Adam steps on the loss sum(table[rows] * target) per batch."""
    params = tables(n_rows)
    opt = LazyTableAdam(params, lr=lr, weight_decay=weight_decay)
    for rows, target in batches:
        plan = plan_rows(rows, static_shape=static_shape)
        leaf = opt.gather(plan)
        (leaf[plan.inverse] * target).sum().backward()
        opt.step(plan, leaf)
    return params, opt


def dense_run(batches, weight_decay, *, n_rows=12, lr=1e-2):
    params = [p.requires_grad_() for p in tables(n_rows)]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=False)
    for rows, target in batches:
        opt.zero_grad()
        (torch.cat(params, 1)[rows] * target).sum().backward()
        opt.step()
    return [p.detach() for p in params]


def random_batches(n_steps, n_rows, per_batch, seed=0, every_row=False):
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_steps):
        rows = torch.randint(0, n_rows, (per_batch,), generator=gen)
        if every_row:
            rows = torch.cat([torch.arange(n_rows), rows])
        batches.append((rows, torch.randn(len(rows), 5, generator=gen)))
    return batches


@pytest.mark.parametrize("static_shape", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_matches_dense_adam_when_every_row_is_in_every_batch(static_shape, weight_decay):
    batches = random_batches(30, 12, 20, every_row=True)
    lazy, _ = lazy_run(batches, weight_decay, static_shape=static_shape)
    dense = dense_run(batches, weight_decay)
    for a, b in zip(lazy, dense, strict=True):
        # Within a float32 rounding or two: the update multiplies by the step
        # size after dividing (a tensor on the device), as torch's capturable
        # Adam does, where torch.optim.Adam fuses both with a Python float.
        torch.testing.assert_close(a, b, rtol=1e-6, atol=2e-8)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_catching_up_follows_dense_adam_on_rows_a_batch_misses(weight_decay):
    # Rows 0-3 in every batch, rows 4-11 rarely: dense Adam keeps moving the
    # rare ones (momentum, decay); the lazy one moves them when next used.
    gen = torch.Generator().manual_seed(1)
    batches = []
    for step in range(300):
        rare = torch.tensor([4 + step % 8]) if step % 5 == 0 else torch.empty(0, dtype=torch.int64)
        rows = torch.cat([torch.arange(4), rare])
        batches.append((rows, torch.randn(len(rows), 5, generator=gen) * 1e-3))
    # A last batch with every row, so that every row has caught up.
    batches.append((torch.arange(12), torch.zeros(12, 5)))
    lazy, _ = lazy_run(batches, weight_decay, lr=1e-3)
    dense = dense_run(batches, weight_decay, lr=1e-3)
    start = torch.cat(tables(), 1)
    lazy_all, dense_all = torch.cat(lazy, 1), torch.cat(dense, 1)
    # The rows seen at every step match closely ...
    torch.testing.assert_close(lazy_all[:4], dense_all[:4], rtol=1e-4, atol=1e-6)
    # ... the rare ones within a few percent of how far dense Adam moved them.
    moved = (dense_all[4:] - start[4:]).abs()
    error = (lazy_all[4:] - dense_all[4:]).abs()
    assert moved.mean() > 1e-3
    assert error.mean() < 0.05 * moved.mean()


def test_rows_that_missed_no_step_are_left_bit_for_bit():
    # The catch-up runs on every row of a step; for a row updated at the
    # step before, all its coefficients are 0 or 1 and nothing may change.
    gen = torch.Generator().manual_seed(4)
    opt = LazyTableAdam(tables(n_rows=6), lr=1e-3, weight_decay=1e-2)
    param, avg, avg_sq = (torch.randn(6, 5, generator=gen) for _ in range(3))
    avg_sq = avg_sq.abs()
    t = torch.tensor(40)
    last = torch.tensor([39, 39, 39, 10, 0, 39])
    row, new_avg, new_avg_sq = opt._catch_up(param, avg, avg_sq, last, t)
    current = last == 39
    for before, after in ((param, row), (avg, new_avg), (avg_sq, new_avg_sq)):
        assert torch.equal(after[current], before[current])
        assert not torch.equal(after[~current], before[~current])


def test_decay_pulls_unused_rows_to_zero_as_dense_adam_does():
    # Rows 6-11 only in the first batch: whole-table decay shrinks them after.
    batches = [(torch.arange(12), torch.randn(12, 5, generator=torch.Generator().manual_seed(2)) * 1e-3)]
    batches += [
        (torch.arange(6), torch.randn(6, 5, generator=torch.Generator().manual_seed(s)) * 1e-3)
        for s in range(200)
    ]
    batches.append((torch.arange(12), torch.zeros(12, 5)))
    lazy, _ = lazy_run(batches, 1e-4, lr=1e-3)
    dense = dense_run(batches, 1e-4, lr=1e-3)
    without_decay, _ = lazy_run(batches, 0.0, lr=1e-3)
    lazy_norm = torch.cat(lazy, 1)[6:].abs().mean()
    dense_norm = torch.cat(dense, 1)[6:].abs().mean()
    kept_norm = torch.cat(without_decay, 1)[6:].abs().mean()
    assert dense_norm < 0.7 * kept_norm
    assert abs(lazy_norm - dense_norm) < 0.1 * dense_norm


def test_plan_rows_static_and_compact_agree():
    rows = torch.tensor([7, 3, 7, 9, 3, 3, 0])
    compact = plan_rows(rows, static_shape=False)
    assert compact.unique.tolist() == [0, 3, 7, 9]
    assert torch.equal(compact.unique[compact.inverse], rows)
    assert compact.canonical is None
    static = plan_rows(rows, static_shape=True)
    assert static.unique.tolist() == [0, 3, 7, 9, 9, 9, 9]
    assert torch.equal(static.unique[static.inverse], rows)
    assert static.canonical.tolist() == [0, 1, 2, 3, 3, 3, 3]


def test_state_dict_copies_unless_told_not_to():
    _, opt = lazy_run(random_batches(3, 12, 4), 1e-2)
    copied, handed_over = opt.state_dict(), opt.state_dict(copy=False)
    for name in ("exp_avg", "exp_avg_sq", "last_step"):
        assert handed_over[name] is getattr(opt, name)
        assert torch.equal(copied[name], getattr(opt, name))
    opt.exp_avg.add_(1.0)
    assert not torch.equal(copied["exp_avg"], opt.exp_avg)


def test_state_dict_round_trip_continues_identically():
    batches = random_batches(20, 12, 6, seed=3)
    params, opt = lazy_run(batches[:10], 1e-2)
    state = copy.deepcopy(opt.state_dict())
    assert set(state) == {"step", "exp_avg", "exp_avg_sq", "last_step"}
    assert isinstance(state["step"], int)
    resumed_params = [p.clone() for p in params]
    resumed = LazyTableAdam(resumed_params, lr=1e-2, weight_decay=1e-2)
    resumed.load_state_dict(state)
    for optimizer in (opt, resumed):
        for rows, target in batches[10:]:
            plan = plan_rows(rows, static_shape=False)
            leaf = optimizer.gather(plan)
            (leaf[plan.inverse] * target).sum().backward()
            optimizer.step(plan, leaf)
    for a, b in zip(params, resumed_params, strict=True):
        assert torch.equal(a, b)


def test_load_state_dict_rejects_other_shapes():
    _, opt = lazy_run(random_batches(2, 12, 4), 0.0)
    other = LazyTableAdam(tables(n_rows=5), lr=1e-2, weight_decay=0.0)
    with pytest.raises(ValueError, match="exp_avg has shape"):
        other.load_state_dict(opt.state_dict())


def small_network(seed=0):
    return DeepFMNetwork(
        [4, 5, 6], embedding_dim=3, hidden_layer_sizes=(8,), generator=torch.Generator().manual_seed(seed)
    )


def test_deepfm_optimizer_state_is_plain_and_keeps_new_hyperparameters():
    network = small_network()
    opt = DeepFMOptimizer(network, lr=1e-3, alpha=1e-2, embedding_alpha=1e-4)
    codes = torch.tensor([[0, 1, 2], [3, 4, 5]])
    rows, _ = network.table_rows(codes)
    plan = plan_rows(rows.reshape(-1), static_shape=False)
    leaf = opt.tables.gather(plan)
    network.train()(
        plan.inverse.view(rows.shape), table=leaf, generator=torch.Generator().manual_seed(0)
    ).sum().backward()
    opt.step(plan, leaf)
    state = opt.state_dict()
    assert set(state) == {"dense", "tables"}

    resumed = DeepFMOptimizer(network, lr=5e-4, alpha=0.0, embedding_alpha=0.0)
    resumed.load_state_dict(copy.deepcopy(state))
    assert resumed.dense.param_groups[0]["lr"] == 5e-4
    assert resumed.dense.param_groups[0]["weight_decay"] == 0.0
    assert resumed.tables.step_count == 1
    torch.testing.assert_close(resumed.tables.exp_avg, opt.tables.exp_avg)


def test_deepfm_optimizer_reads_a_single_adam_state():
    # Models trained before the lazy tables kept one torch.optim.Adam, table group first.
    network = small_network()
    tables_ = [network.embedding.weight, network.linear.weight]
    dense = [p for p in network.parameters() if all(p is not t for t in tables_)]
    adam = torch.optim.Adam(
        [{"params": tables_, "weight_decay": 1e-4}, {"params": dense, "weight_decay": 1e-2}]
    )
    network.train()(
        torch.tensor([[0, 1, 2], [3, 4, 5]]), generator=torch.Generator().manual_seed(0)
    ).sum().backward()
    adam.step()
    opt = DeepFMOptimizer(network, lr=1e-3, alpha=1e-2, embedding_alpha=1e-4)
    opt.load_state_dict(adam.state_dict())
    assert opt.tables.step_count == 1
    assert torch.all(opt.tables.last_step == 1)
    expected = torch.cat([adam.state[t]["exp_avg"] for t in tables_], 1)
    torch.testing.assert_close(opt.tables.exp_avg, expected)
    for param in dense:
        torch.testing.assert_close(opt.dense.state[param]["exp_avg"], adam.state[param]["exp_avg"])


def test_unused_rows_are_never_read_or_written():
    # Step cost must not grow with the vocabulary: rows outside the batch stay as they are.
    params, opt = lazy_run([(torch.tensor([1, 2, 2]), torch.ones(3, 5))], 1e-2)
    start = tables()
    untouched = np.setdiff1d(np.arange(12), [1, 2])
    for after, before in zip(params, start, strict=True):
        assert torch.equal(after[untouched], before[untouched])
        assert not torch.equal(after[[1, 2]], before[[1, 2]])
    assert opt.last_step.tolist() == [0, 1, 1] + [0] * 9


def dense_mode_run(batches, weight_decay, *, n_rows=12, lr=1e-2, state=None, params=None):
    """Tables after LazyTableAdam steps in dense mode (every row, every step)."""
    params = tables(n_rows) if params is None else params
    opt = LazyTableAdam(params, lr=lr, weight_decay=weight_decay, dense=True)
    if state is not None:
        opt.load_state_dict(state)
    for rows, target in batches:
        leaf = opt.gather_all()
        (leaf[rows] * target).sum().backward()
        opt.step(None, leaf)
    return params, opt


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_dense_mode_is_dense_adam(weight_decay):
    # Rows 8-11 are in no batch: the decay moves them all the same, as in torch's Adam.
    batches = random_batches(30, 8, 5, seed=5)
    dense_mode, opt = dense_mode_run(batches, weight_decay)
    dense = dense_run(batches, weight_decay)
    for a, b in zip(dense_mode, dense, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert torch.equal(dense_mode[0][8:], tables()[0][8:]) == (weight_decay == 0.0)
    state = opt.state_dict()
    assert state["step"] == 30
    assert torch.all(state["last_step"] == 30)
    assert opt._whole.grad is None


def test_dense_mode_continues_a_lazy_state_after_catching_up():
    # A lazy run leaves rows behind; loading its state in dense mode catches
    # them up first, as the lazy optimizer would when they are next used.
    batches = random_batches(20, 12, 3, seed=6)
    params, lazy = lazy_run(batches[:10], 1e-2)
    state = copy.deepcopy(lazy.state_dict())
    behind = state["last_step"] < state["step"]
    assert behind.any()
    assert (~behind).any()
    before = [p.clone() for p in params]
    loaded = LazyTableAdam(params, lr=1e-2, weight_decay=1e-2, dense=True)
    loaded.load_state_dict(state)
    assert torch.all(loaded.last_step == 10)
    for after, old in zip(params, before, strict=True):
        assert torch.equal(after[~behind], old[~behind])
        # The decay shrank the rows that missed steps.
        assert after[behind].abs().sum() < old[behind].abs().sum()

    # A last batch with every row: both then agree closely.
    every = [(torch.arange(12), torch.randn(12, 5, generator=torch.Generator().manual_seed(9)))]
    lazy_params, _ = lazy_run(batches[:10] + every, 1e-2)
    dense_params, _ = dense_mode_run(every, 1e-2, state=state, params=before)
    for a, b in zip(lazy_params, dense_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_lazy_mode_continues_a_dense_state():
    batches = random_batches(20, 12, 3, seed=7)
    params, dense_opt = dense_mode_run(batches[:10], 1e-2)
    resumed = LazyTableAdam(params, lr=1e-2, weight_decay=1e-2)
    resumed.load_state_dict(copy.deepcopy(dense_opt.state_dict()))
    assert torch.all(resumed.last_step == 10)
    for rows, target in batches[10:]:
        plan = plan_rows(rows, static_shape=False)
        leaf = resumed.gather(plan)
        (leaf[plan.inverse] * target).sum().backward()
        resumed.step(plan, leaf)
    assert resumed.step_count == 20


def test_dense_mode_rejects_row_plans_and_other_tensors():
    lazy = LazyTableAdam(tables(), lr=1e-2, weight_decay=0.0)
    with pytest.raises(RuntimeError, match="dense=True"):
        lazy.gather_all()
    dense = LazyTableAdam(tables(), lr=1e-2, weight_decay=0.0, dense=True)
    dense.gather_all()
    with pytest.raises(ValueError, match="gather_all"):
        dense.step(None, torch.zeros(12, 5, requires_grad=True))


def test_use_dense_tables_for_small_tables_on_the_cpu_only():
    from skdeepfm._optim import DENSE_ROWS_PER_LOOKUP, use_dense_tables

    lookups = 1024 * 10
    assert use_dense_tables(5_000, lookups, "cpu")
    assert use_dense_tables(DENSE_ROWS_PER_LOOKUP * lookups, lookups, "cpu")
    assert not use_dense_tables(DENSE_ROWS_PER_LOOKUP * lookups + 1, lookups, "cpu")
    assert not use_dense_tables(5_000, lookups, "cuda")
