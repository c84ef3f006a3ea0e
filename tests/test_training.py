import pickle

import numpy as np
import pytest
import torch

from skdeepfm import DeepFMClassifier, DeepFMNetwork
from skdeepfm import _training as training
from skdeepfm._cuda_graph import WARMUP_STEPS
from skdeepfm._encoder import EncodedFields
from skdeepfm._training import (
    PREDICT_CHUNK_SIZE,
    TrainingConfig,
    batch_bounds,
    bfloat16_supported,
    predict_logits,
    resolve_device,
    resolve_mixed_precision,
    train,
)

from .conftest import make_interaction_data

CPU = torch.device("cpu")


def config(**overrides):
    params = dict(
        batch_size=64,
        learning_rate=1e-2,
        max_iter=15,
        alpha=0.0,
        embedding_alpha=0.0,
        n_iter_no_change=100,
        tol=0.0,
        shuffle=True,
        verbose=0,
        seed=0,
    )
    params.update(overrides)
    return TrainingConfig(**params)


def toy(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 4, size=(n, 3))
    y = ((X[:, 0] % 2) ^ (X[:, 1] % 2)).astype(np.int64)
    return EncodedFields(X), y


def net(seed=0, **kwargs):
    params = dict(embedding_dim=4, hidden_layer_sizes=(16,), generator=torch.Generator().manual_seed(seed))
    params.update(kwargs)
    return DeepFMNetwork([4, 4, 4], **params)


def accuracy(network, X, y):
    return float(((predict_logits(network, X, CPU)[:, 0] > 0) == y).mean())


@pytest.mark.parametrize(
    ("n", "size", "expected"),
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (9, 4, [(0, 4), (4, 9)]),
        (1, 4, [(0, 1)]),
        (8, 4, [(0, 4), (4, 8)]),
    ],
)
def test_batch_bounds_never_leave_a_batch_of_one_row(n, size, expected):
    assert batch_bounds(n, size) == expected


@pytest.fixture(params=["whole tables", "lazy tables"])
def table_mode(request, monkeypatch):
    """Train with the tables updated whole at every step, or lazily, whatever their size.

    Yields the modes the training calls used.
    """
    dense = request.param == "whole tables"
    used = []

    def forced(n_rows, lookups_per_step, device):
        used.append(dense)
        return dense

    monkeypatch.setattr(training, "use_dense_tables", forced)
    yield used
    assert used
    assert all(mode == dense for mode in used)


def test_loss_falls_and_the_task_is_learned(table_mode):
    X, y = toy()
    network = net()
    history = train(network, X, y, np.ones(len(y)), config(), device=CPU)
    assert history.loss_curve[-1] < 0.5 * history.loss_curve[0]
    assert accuracy(network, X, y) > 0.95
    assert not network.training


def test_small_tables_train_whole_and_large_ones_lazily(monkeypatch):
    modes = []
    original = training.DeepFMOptimizer

    def recording(*args, **kwargs):
        optimizer = original(*args, **kwargs)
        modes.append(optimizer.tables.dense)
        return optimizer

    monkeypatch.setattr(training, "DeepFMOptimizer", recording)
    X, y = toy(200)
    train(net(), X, y, np.ones(len(y)), config(max_iter=1), device=CPU)
    # 12 table rows, 64 x 3 lookups a step: whole; 200,000 rows: lazily.
    wide = DeepFMNetwork([4, 4, 200_000], embedding_dim=4, hidden_layer_sizes=(16,))
    history = train(wide, X, y, np.ones(len(y)), config(max_iter=1), device=CPU)
    assert modes == [True, False]
    # The lazy optimizer never touched the rows no batch used.
    last_step = history.optimizer_state["tables"]["last_step"]
    assert (last_step[8 + 4 :] == 0).all()
    assert (last_step[:8] == 4).all()


def test_int32_and_int64_codes_train_alike(table_mode):
    X, y = toy()
    narrow = EncodedFields(X.codes.astype(np.int32))
    a, b = net(), net()
    ha = train(a, X, y, np.ones(len(y)), config(max_iter=2), device=CPU)
    hb = train(b, narrow, y, np.ones(len(y)), config(max_iter=2), device=CPU)
    assert ha.loss_curve == hb.loss_curve
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    np.testing.assert_array_equal(predict_logits(a, X, CPU), predict_logits(b, narrow, CPU))


def test_training_is_repeatable_and_leaves_the_global_rng_alone():
    X, y = toy()
    state = torch.random.get_rng_state()
    a, b = net(), net()
    ha = train(a, X, y, np.ones(len(y)), config(max_iter=3), device=CPU)
    hb = train(b, X, y, np.ones(len(y)), config(max_iter=3), device=CPU)
    assert torch.equal(state, torch.random.get_rng_state())
    assert ha.loss_curve == hb.loss_curve
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    c = net()
    hc = train(c, X, y, np.ones(len(y)), config(max_iter=3, seed=1), device=CPU)
    assert hc.loss_curve != ha.loss_curve


def test_early_stopping_keeps_the_best_epoch():
    X, y = toy()
    Xv, yv = toy(300, seed=1)
    scores_seen = []

    def scorer(y_val, logits, w_val):
        score = float(((logits[:, 0] > 0) == y_val).mean()) - 0.01 * len(scores_seen)
        scores_seen.append(score)
        return score

    network = net()
    history = train(
        network,
        X,
        y,
        np.ones(len(y)),
        config(n_iter_no_change=3, tol=0.0, max_iter=30),
        device=CPU,
        validation=(Xv, yv, np.ones(len(yv))),
        scorer=scorer,
    )
    assert history.validation_scores == scores_seen
    best_epoch = int(np.argmax(scores_seen))
    assert history.best_validation_score == scores_seen[best_epoch]
    # Stopped n_iter_no_change epochs after the best one...
    assert history.n_iter == best_epoch + 1 + 3
    assert history.converged
    # ...and restored its weights: scoring again gives the best epoch's accuracy.
    best_accuracy = scores_seen[best_epoch] + 0.01 * best_epoch
    assert accuracy(network, Xv, yv) == pytest.approx(best_accuracy)


def test_sample_weight_is_honoured():
    # The same rows with both labels: the weights decide.
    X = EncodedFields(np.tile(np.array([[0, 1, 2], [1, 2, 3]]), (200, 1)))
    y = np.tile([1, 0, 0, 1], 100)
    w = np.where(np.arange(400) % 4 < 2, 9.0, 1.0)  # rows 0, 1 of every 4 weigh 9
    network = net()
    train(network, X, y, w, config(max_iter=20), device=CPU)
    np.testing.assert_array_equal(predict_logits(network, X.take([0, 1]), CPU)[:, 0] > 0, [True, False])


def test_divergence_names_learning_rate_init():
    X, y = toy(200)
    network = net()
    with torch.no_grad():
        network.bias.fill_(float("nan"))
    with pytest.raises(
        ValueError, match=r"diverged: the loss became nan at epoch 1\. Try a smaller learning_rate_init"
    ):
        train(network, X, y, np.ones(len(y)), config(), device=CPU)


def test_multiclass_training():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(900, 3))
    y = (codes[:, 0] + codes[:, 1]) % 3
    X = EncodedFields(codes)
    network = net(n_outputs=3)
    train(network, X, y, np.ones(len(y)), config(max_iter=30), device=CPU)
    logits = predict_logits(network, X, CPU)
    assert logits.shape == (900, 3)
    assert (logits.argmax(1) == y).mean() > 0.9


def test_predictions_do_not_depend_on_batch_composition():
    X, y = toy(PREDICT_CHUNK_SIZE + 50)
    network = net()
    train(network, X.take(np.arange(500)), y[:500], np.ones(500), config(max_iter=2), device=CPU)
    full = predict_logits(network, X, CPU)
    for i in [0, 7, PREDICT_CHUNK_SIZE + 10]:
        np.testing.assert_allclose(
            predict_logits(network, X.take([i]), CPU), full[i : i + 1], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "meta"])
def test_unknown_devices_are_rejected(device):
    with pytest.raises(ValueError, match="'device' parameter"):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_names_the_device_parameter():
    with pytest.raises(ValueError, match="'device' parameter is 'cuda', but CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def interrupting_scorer(at_call):
    calls = []

    def scorer(y_val, logits, w_val):
        calls.append(float(((logits[:, 0] > 0) == y_val).mean()))
        if len(calls) == at_call:
            raise KeyboardInterrupt
        return calls[-1] - 0.01 * len(calls)  # earlier epochs win ties: a clear best epoch

    return scorer, calls


def test_keyboard_interrupt_keeps_the_best_weights_so_far():
    X, y = toy()
    Xv, yv = toy(300, seed=1)
    scorer, calls = interrupting_scorer(at_call=4)
    network = net()
    history = train(
        network, X, y, np.ones(len(y)), config(max_iter=30), device=CPU,
        validation=(Xv, yv, np.ones(len(yv))), scorer=scorer,
    )  # fmt: skip
    assert history.interrupted
    assert history.n_iter == 4
    assert len(history.validation_scores) == 3
    assert not network.training
    best = int(np.argmax(history.validation_scores))
    assert accuracy(network, Xv, yv) == pytest.approx(calls[best])


def test_keyboard_interrupt_in_the_first_epoch_propagates(monkeypatch):
    X, y = toy()
    network = net()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(network, "forward", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(network, X, y, np.ones(len(y)), config(), device=CPU)


def test_cuda_out_of_memory_suggests_a_smaller_batch(monkeypatch):
    X, y = toy(200)
    network = net()

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(network, "forward", out_of_memory)
    with pytest.raises(MemoryError, match="batch_size=64. Try a smaller batch_size"):
        train(network, X, y, np.ones(len(y)), config(), device=CPU)


@pytest.mark.parametrize("mixed_precision", [False, "auto"])
def test_training_is_repeatable_in_each_precision(mixed_precision):
    X, y = toy()
    state = torch.random.get_rng_state()
    a, b = net(), net()
    cfg = config(max_iter=2, mixed_precision=mixed_precision)
    ha = train(a, X, y, np.ones(len(y)), cfg, device=CPU)
    hb = train(b, X, y, np.ones(len(y)), cfg, device=CPU)
    assert torch.equal(state, torch.random.get_rng_state())
    assert ha.loss_curve == hb.loss_curve
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_mixed_precision_settings(monkeypatch):
    from skdeepfm import _training

    assert resolve_mixed_precision(False, CPU) is False
    assert resolve_mixed_precision("auto", CPU) is _training.bfloat16_supported(CPU)
    monkeypatch.setattr(_training, "bfloat16_supported", lambda device: False)
    assert resolve_mixed_precision("auto", CPU) is False
    with pytest.raises(
        ValueError, match="'mixed_precision' parameter is True, but cpu has no native bfloat16"
    ):
        resolve_mixed_precision(True, CPU)
    X, y = toy(200)
    with pytest.raises(ValueError, match="mixed_precision"):
        train(net(), X, y, np.ones(len(y)), config(mixed_precision=True), device=CPU)
    with pytest.raises(ValueError, match="must be 'auto', True or False"):
        resolve_mixed_precision("yes", CPU)
    monkeypatch.setattr(_training, "bfloat16_supported", lambda device: True)
    assert resolve_mixed_precision(True, CPU) is True


def test_mixed_precision_learns_as_float32_does():
    X, y = toy()
    if not bfloat16_supported(CPU):
        pytest.skip("no native bfloat16 on this CPU")
    network = net()
    train(network, X, y, np.ones(len(y)), config(mixed_precision=True), device=CPU)
    assert accuracy(network, X, y) > 0.95
    assert all(p.dtype == torch.float32 for p in network.parameters())


def test_optimizer_state_continues_training_and_is_plain(table_mode):
    X, y = toy()
    network = net()
    first = train(network, X, y, np.ones(len(y)), config(max_iter=2), device=CPU)
    state = pickle.loads(pickle.dumps(first.optimizer_state))
    assert state["tables"]["step"] == 2 * len(batch_bounds(len(y), 64))
    second = train(network, X, y, np.ones(len(y)), config(max_iter=1), device=CPU, optimizer_state=state)
    assert second.optimizer_state["tables"]["step"] == 3 * len(batch_bounds(len(y), 64))
    assert second.loss_curve[0] < first.loss_curve[0]


def multivalued_toy(n=300, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, 3))
    lengths = rng.integers(0, 4, size=n)
    elements = rng.integers(0, 4, size=int(lengths.sum()))
    return EncodedFields(codes, bags={1: (elements, lengths)}), (codes[:, 0] % 2).astype(np.int64)


def test_static_row_plan_gives_the_same_step_as_the_compact_one():
    # The static plan (CUDA: no host sync) is checked on the CPU.
    from skdeepfm._optim import DeepFMOptimizer
    from skdeepfm._training import DeviceRows, sparse_forward

    X, _ = multivalued_toy()
    rows = DeviceRows(X, CPU)
    batch = torch.arange(0, 64)
    counts = rows.element_counts(torch.arange(len(rows)), [(0, 64), (64, len(rows))])
    assert counts[0] == (int(X.bags[1][1][:64].sum()),)
    codes, values, bags = rows.gather(batch, counts[0])
    results = []
    for static_shape in (False, True):
        network = net(dropout=0.0)
        optimizer = DeepFMOptimizer(network, lr=1e-2, alpha=1e-3, embedding_alpha=1e-3)
        network.train()
        logits, plan, leaf = sparse_forward(
            network, optimizer.tables, codes, values, bags, None, static_shape=static_shape
        )
        logits.sum().backward()
        optimizer.step(plan, leaf)
        results.append((logits.detach(), network.embedding.weight.detach(), network.linear.weight.detach()))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_multivalued_fields_train(table_mode):
    X, y = multivalued_toy(600)
    network = net()
    history = train(network, X, y, np.ones(len(y)), config(max_iter=5), device=CPU)
    assert history.loss_curve[-1] < history.loss_curve[0]


class RecordingSteps(training.GraphedSteps):
    """GraphedSteps that reports how many steps it replayed."""

    replays_seen = []

    def close(self):
        RecordingSteps.replays_seen.append(self.replays)
        super().close()


@pytest.mark.gpu
def test_cuda_graphs_replay_full_batches_and_advance_both_optimisers(monkeypatch):
    monkeypatch.setattr(training, "GraphedSteps", RecordingSteps)
    RecordingSteps.replays_seen = []
    X, y = make_interaction_data(4000)
    params = dict(batch_size=64, max_iter=6, early_stopping=False, random_state=0, device="cuda", dropout=0.2)
    rng_state = torch.cuda.get_rng_state()
    graphed = DeepFMClassifier(**params).fit(X, y)
    assert torch.equal(rng_state, torch.cuda.get_rng_state())
    steps = 6 * len(batch_bounds(4000, 64))
    full = 6 * (4000 // 64)
    # Every full-size batch after the warm-up and the capture is a replay.
    assert RecordingSteps.replays_seen == [full - WARMUP_STEPS]
    state = graphed._optimizer_state
    assert state["tables"]["step"] == steps
    assert all(int(s["step"]) == steps for s in state["dense"]["state"].values())

    eager = DeepFMClassifier(**params, cuda_graphs=False).fit(X, y)
    assert RecordingSteps.replays_seen[-1] == 0
    assert eager._optimizer_state["tables"]["step"] == steps
    assert graphed.score(X, y) > 0.97
    assert eager.score(X, y) > 0.97
    # Same data, seeds and steps: the two runs learn alike (measured on an
    # H100: first epochs within 0.2%, later ones near zero and noisier).
    np.testing.assert_allclose(graphed.loss_curve_[0], eager.loss_curve_[0], rtol=0.01)
    np.testing.assert_allclose(graphed.loss_curve_, eager.loss_curve_, atol=0.01)
    # A warm start replays again; predictions then read the new weights,
    # not copies cached by the prediction before it.
    before = graphed.predict_proba(X)
    graphed.set_params(warm_start=True, max_iter=2).fit(X, y)
    after = graphed.predict_proba(X)
    assert not np.allclose(before, after, atol=1e-6)
    np.testing.assert_allclose(after, pickle.loads(pickle.dumps(graphed)).predict_proba(X), atol=1e-5)


@pytest.mark.gpu
def test_cuda_graph_capture_failure_falls_back_to_eager_steps(monkeypatch):
    class Broken(torch.cuda.CUDAGraph):
        def register_generator_state(self, generator):
            raise RuntimeError("no capture here")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", Broken)
    X, y = make_interaction_data(4000)
    params = dict(batch_size=64, max_iter=3, early_stopping=False, random_state=0, device="cuda")
    with pytest.warns(RuntimeWarning, match="without CUDA graphs"):
        clf = DeepFMClassifier(**params).fit(X, y)
    assert clf._optimizer_state["tables"]["step"] == 3 * len(batch_bounds(4000, 64))
    assert clf.score(X, y) > 0.9


def test_graphed_steps_run_other_sizes_and_disabled_steps_eagerly():
    seen = []
    steps = training.GraphedSteps(seen.append, 4, [], enabled=False)
    steps(torch.arange(4))
    steps(torch.arange(3))
    assert [len(b) for b in seen] == [4, 3]
    enabled = training.GraphedSteps(seen.append, 4, [], enabled=True)
    enabled(torch.arange(2))
    assert len(seen[-1]) == 2
    assert enabled.replays == 0


@pytest.mark.parametrize("table_mode", ["whole", "lazy"])
def test_learning_rate_decays_after_each_epoch_without_improvement(monkeypatch, table_mode):
    monkeypatch.setattr(training, "use_dense_tables", lambda *args: table_mode == "whole")
    X, y = toy(300)
    scores = iter([0.5, 0.7, 0.6, 0.6, 0.8, 0.8])
    network = net()
    seen = []
    original = training.DeepFMOptimizer.scale_learning_rate

    def recording(self, factor):
        original(self, factor)
        seen.append((self.dense.param_groups[0]["lr"], self.tables.lr))

    monkeypatch.setattr(training.DeepFMOptimizer, "scale_learning_rate", recording)
    history = train(
        network,
        X,
        y,
        np.ones(len(y)),
        config(max_iter=6, learning_rate=1e-2, learning_rate_decay=0.5),
        device=CPU,
        validation=(X, y, np.ones(len(y))),
        scorer=lambda *args: next(scores),
    )
    # Epochs 3, 4 and 6 did not improve: three halvings, of both optimisers.
    assert history.n_iter == 6
    np.testing.assert_allclose(seen, [(5e-3, 5e-3), (2.5e-3, 2.5e-3), (1.25e-3, 1.25e-3)])
    assert history.optimizer_state["dense"]["param_groups"][0]["lr"] == pytest.approx(1.25e-3)


def test_a_fixed_schedule_runs_every_epoch_and_decays_where_it_says(monkeypatch):
    X, y = toy(300)
    decays = []
    original = training.DeepFMOptimizer.scale_learning_rate

    def recording(self, factor):
        original(self, factor)
        decays.append(len(history_epochs))

    history_epochs = []
    original_record = training.record_loss

    def record_loss(history, epoch, loss):
        history_epochs.append(epoch)
        return original_record(history, epoch, loss)

    monkeypatch.setattr(training.DeepFMOptimizer, "scale_learning_rate", recording)
    monkeypatch.setattr(training, "record_loss", record_loss)
    # n_iter_no_change=1 would stop after the first epoch without improvement.
    schedule = (True, False, True, False)
    history = train(
        net(),
        X,
        y,
        np.ones(len(y)),
        config(max_iter=4, n_iter_no_change=1, learning_rate_decay=0.5, schedule=schedule),
        device=CPU,
    )
    assert history.n_iter == 4
    assert history.converged
    assert decays == [2, 4]
    assert history.improved == list(schedule)
    assert history.optimizer_state["dense"]["param_groups"][0]["lr"] == pytest.approx(2.5e-3)


def test_whole_table_adam_follows_a_scaled_learning_rate():
    network = net()
    optimizer = training._optimizer(network, config(), CPU)
    assert optimizer.tables.dense
    optimizer.tables.gather_all()
    optimizer.scale_learning_rate(0.1)
    assert optimizer.tables._whole_adam.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert optimizer.dense.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_without_validation_the_final_weights_get_their_batch_norm_statistics():
    from skdeepfm._batch_norm import batch_norm_layers, refresh_batch_norm

    X, y = toy(1000)
    network = net()
    train(network, X, y, np.ones(len(y)), config(max_iter=3), device=CPU)
    trained = [layer.running_var.clone() for layer in batch_norm_layers(network)]
    # Up to 4,096 rows the refresh reads them all in one batch: the same statistics again.
    refresh_batch_norm(network, [(torch.as_tensor(X.codes),)])
    for layer, var in zip(batch_norm_layers(network), trained, strict=True):
        torch.testing.assert_close(layer.running_var, var)
