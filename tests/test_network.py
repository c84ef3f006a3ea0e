import itertools

import pytest
import torch

from skdeepfm import DeepFMNetwork

SEED_FIELD_DIMS = [10, 2, 5, 20, 3]  # age, gender, ad_category, advertiser_id, device_type
SEED_BATCH = torch.tensor([[2, 1, 3, 10, 1], [7, 0, 4, 3, 0], [1, 1, 2, 14, 2], [5, 0, 0, 8, 1]])


def make_net(**kwargs):
    params = dict(embedding_dim=8, hidden_layer_sizes=(32, 16), generator=torch.Generator().manual_seed(0))
    params.update(kwargs)
    return DeepFMNetwork(SEED_FIELD_DIMS, **params)


def explicit_fm(emb):
    """Sum over field pairs i < j of <e_i, e_j>, the slow way."""
    total = torch.zeros(emb.shape[0])
    for i, j in itertools.combinations(range(emb.shape[1]), 2):
        total += (emb[:, i] * emb[:, j]).sum(1)
    return total


def test_seed_example_shapes_and_logits():
    net = make_net().eval()
    out = net(SEED_BATCH)
    assert out.shape == (4, 1)
    assert torch.isfinite(out).all()
    assert net.offsets.tolist() == [0, 10, 12, 17, 37]
    assert net.embedding.weight.shape == (sum(SEED_FIELD_DIMS), 8)


def test_fm_term_equals_the_explicit_sum_over_pairs():
    net = make_net(hidden_layer_sizes=()).eval()
    with torch.no_grad():
        net.embedding.weight.normal_(0, 1, generator=torch.Generator().manual_seed(1))
        net.linear.weight.zero_()
        net.bias.zero_()
        net.dnn_output.weight.zero_()
        net.dnn_output.bias.zero_()
        emb = net.embedding.weight[SEED_BATCH + net.offsets]
        torch.testing.assert_close(net(SEED_BATCH)[:, 0], explicit_fm(emb))


def test_output_is_the_sum_of_linear_fm_and_dnn_parts():
    net = make_net(dropout=0.0).eval()
    with torch.no_grad():
        net.linear.weight.normal_(generator=torch.Generator().manual_seed(2))
        net.bias.fill_(0.3)
        rows = SEED_BATCH + net.offsets
        emb = net.embedding.weight[rows]
        linear = net.linear.weight[rows].sum(1)[:, 0] + 0.3
        hidden = emb.reshape(4, -1)
        for layer in net.dnn:
            hidden = layer(hidden)
        deep = net.dnn_output(hidden)[:, 0]
        torch.testing.assert_close(net(SEED_BATCH)[:, 0], linear + explicit_fm(emb) + deep)


@pytest.mark.parametrize("fm_scale", [0.0, 100.0])
def test_fm_scale_multiplies_the_fm_term_only(fm_scale):
    plain = make_net(dropout=0.0).eval()
    scaled = make_net(dropout=0.0, fm_scale=fm_scale).eval()
    scaled.load_state_dict(plain.state_dict())
    with torch.no_grad():
        emb = plain.embedding.weight[SEED_BATCH + plain.offsets]
        fm = explicit_fm(emb)
        torch.testing.assert_close(scaled(SEED_BATCH)[:, 0], plain(SEED_BATCH)[:, 0] + (fm_scale - 1) * fm)
    assert scaled.get_config()["fm_scale"] == fm_scale
    assert DeepFMNetwork(**scaled.get_config()).fm_scale == fm_scale


def _embedding_gradients(net, dnn_gradient_scale):
    net.zero_grad()
    out = net(SEED_BATCH, dnn_gradient_scale=dnn_gradient_scale)
    out.sum().backward()
    return out.detach(), net.embedding.weight.grad.clone()


@pytest.mark.parametrize("scale", [0.0, 0.01, 3.0])
def test_dnn_gradient_scale_scales_what_the_dnn_sends_to_the_embeddings(scale):
    # BatchNorm in training mode: the path the estimators train.
    net = make_net(dropout=0.0).train()
    logits, plain = _embedding_gradients(net, 1.0)
    scaled_logits, scaled = _embedding_gradients(net, scale)
    torch.testing.assert_close(scaled_logits, logits)

    # The FM term's share of the gradient is not scaled: with the FM term
    # off, the whole embedding gradient comes from the DNN.
    net.fm_scale = 0.0
    _, dnn_only = _embedding_gradients(net, 1.0)
    assert dnn_only.abs().max() > 0
    torch.testing.assert_close(scaled, plain - (1 - scale) * dnn_only)
    _, dnn_only_scaled = _embedding_gradients(net, scale)
    torch.testing.assert_close(dnn_only_scaled, scale * dnn_only)


def test_small_initialisation_keeps_initial_logits_small():
    net = make_net().eval()
    # N(0, 1) embeddings (the seed notebook's) give |FM| of order n_pairs * dim.
    fm = explicit_fm(net.embedding.weight[SEED_BATCH + net.offsets])
    assert fm.abs().max() < 0.01
    assert net.linear.weight.abs().max() == 0


def test_unknown_rows_start_at_zero():
    net = make_net()
    assert torch.all(net.embedding.weight[net.offsets] == 0)


def test_multiclass_outputs_one_logit_per_class():
    net = make_net(n_outputs=4).eval()
    assert net(SEED_BATCH).shape == (4, 4)
    assert net.fm_projection.weight.shape == (4, 8)


def test_dnn_layers_are_linear_batchnorm_relu_dropout():
    net = make_net(hidden_layer_sizes=(32,))
    kinds = [type(m).__name__ for m in net.dnn]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "GeneratorDropout"]
    kinds = [type(m).__name__ for m in make_net(hidden_layer_sizes=(32,), batch_norm=False).dnn]
    assert kinds == ["Linear", "ReLU", "GeneratorDropout"]


def test_construction_leaves_the_global_rng_untouched_and_is_seeded():
    state = torch.random.get_rng_state()
    a, b = make_net(), make_net()
    assert torch.equal(state, torch.random.get_rng_state())
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_dropout_draws_from_the_given_generator():
    net = make_net(dropout=0.5).train()
    state = torch.random.get_rng_state()
    out1 = net(SEED_BATCH, generator=torch.Generator().manual_seed(5))
    out2 = net(SEED_BATCH, generator=torch.Generator().manual_seed(5))
    assert torch.equal(state, torch.random.get_rng_state())
    torch.testing.assert_close(out1, out2)


def test_gradients_reach_every_part():
    net = make_net().train()
    net(SEED_BATCH, generator=torch.Generator().manual_seed(0)).sum().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name


def test_bad_field_dims_are_rejected():
    with pytest.raises(ValueError, match="field_dims"):
        DeepFMNetwork([])
    with pytest.raises(ValueError, match="field_dims"):
        DeepFMNetwork([3, 0])


def test_float64_inference_matches_float32_and_ignores_batch_shape():
    net = make_net().eval()
    with torch.no_grad():
        single = torch.cat([net(SEED_BATCH[i : i + 1], dtype=torch.float64) for i in range(4)])
        batch = net(SEED_BATCH, dtype=torch.float64)
        assert batch.dtype == torch.float64
        torch.testing.assert_close(single, batch, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(batch.float(), net(SEED_BATCH), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="inference"):
        net.train()(SEED_BATCH, dtype=torch.float64)


def test_multivalued_field_is_the_mean_of_its_element_vectors():
    # Field 3 (advertiser_id) holds lists: row 0 -> [10, 3], row 1 -> [], row 2 -> [7], row 3 -> [1, 1, 2].
    net = make_net(hidden_layer_sizes=()).eval()
    elements = torch.tensor([10, 3, 7, 1, 1, 2])
    starts = torch.tensor([0, 2, 2, 3])
    with torch.no_grad():
        net.linear.weight.normal_(generator=torch.Generator().manual_seed(3))
        table, linear, offset = net.embedding.weight, net.linear.weight, net.offsets[3]
        pooled = [
            table[offset + torch.tensor([10, 3])].mean(0),
            torch.zeros(8),  # an empty list contributes nothing
            table[offset + 7],
            table[offset + torch.tensor([1, 1, 2])].mean(0),
        ]
        pooled_linear = [
            linear[offset + torch.tensor([10, 3])].mean(0),
            torch.zeros(1),
            linear[offset + 7],
            linear[offset + torch.tensor([1, 1, 2])].mean(0),
        ]
        emb = table[SEED_BATCH + net.offsets].clone()
        first = linear[SEED_BATCH + net.offsets].clone()
        for row in range(4):
            emb[row, 3], first[row, 3] = pooled[row], pooled_linear[row]
        hidden = emb.reshape(4, -1)
        expected = first.sum(1)[:, 0] + net.bias + explicit_fm(emb) + net.dnn_output(hidden)[:, 0]
        out = net(SEED_BATCH, bags=[(3, elements, starts)])[:, 0]
        torch.testing.assert_close(out, expected)


def test_numeric_values_scale_the_vectors_and_first_order_weights():
    net = make_net(hidden_layer_sizes=()).eval()
    values = torch.ones(4, 5)
    values[:, 4] = torch.tensor([0.5, -2.0, 0.0, 3.0])  # device_type as a numeric field
    with torch.no_grad():
        net.linear.weight.normal_(generator=torch.Generator().manual_seed(4))
        rows = SEED_BATCH + net.offsets
        emb = net.embedding.weight[rows] * values.unsqueeze(-1)
        first = (net.linear.weight[rows] * values.unsqueeze(-1)).sum(1)[:, 0]
        expected = first + net.bias + explicit_fm(emb) + net.dnn_output(emb.reshape(4, -1))[:, 0]
        torch.testing.assert_close(net(SEED_BATCH, values)[:, 0], expected)


def test_pooled_fields_get_gradients_for_their_elements_only():
    net = make_net().train()
    elements = torch.tensor([10, 3, 7])
    starts = torch.tensor([0, 2, 2, 3])
    net(SEED_BATCH, bags=[(3, elements, starts)], generator=torch.Generator().manual_seed(0)).sum().backward()
    grad_rows = net.embedding.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    advertiser_rows = [r - int(net.offsets[3]) for r in grad_rows if 17 <= r < 37]
    assert sorted(advertiser_rows) == [3, 7, 10]


@pytest.mark.parametrize(
    ("mode", "pool"),
    [("sum", lambda rows: rows.sum(0)), ("max", lambda rows: rows.max(0).values)],
)
def test_sum_and_max_pooling(mode, pool):
    net = make_net(hidden_layer_sizes=(), bag_mode=mode).eval()
    # Rows: [10, 3], [], [7], [].
    elements, starts = torch.tensor([10, 3, 7]), torch.tensor([0, 2, 2, 3])
    with torch.no_grad():
        out = net(SEED_BATCH, bags=[(3, elements, starts)])
        emb = net.embedding.weight[SEED_BATCH + net.offsets].clone()
        first = net.linear.weight[SEED_BATCH + net.offsets].clone()
        offset = net.offsets[3]
        groups = [[10, 3], [], [7], []]
        for row, group in enumerate(groups):
            idx = offset + torch.tensor(group, dtype=torch.int64)
            emb[row, 3] = pool(net.embedding.weight[idx]) if group else 0.0
            first[row, 3] = pool(net.linear.weight[idx]) if group else 0.0
        expected = first.sum(1)[:, 0] + net.bias + explicit_fm(emb) + net.dnn_output(emb.reshape(4, -1))[:, 0]
        torch.testing.assert_close(out[:, 0], expected)
    with pytest.raises(ValueError, match="bag_mode must be 'mean', 'sum' or 'max'"):
        make_net(bag_mode="median")


def test_dropout_mask_rate_scale_and_reproducibility():
    from skdeepfm._network import DROPOUT_LEVELS, dropout_mask

    state = torch.random.get_rng_state()
    mask = dropout_mask((1000, 400), 0.2, torch.Generator().manual_seed(0), torch.float32, "cpu")
    again = dropout_mask((1000, 400), 0.2, torch.Generator().manual_seed(0), torch.float32, "cpu")
    other = dropout_mask((1000, 400), 0.2, torch.Generator().manual_seed(1), torch.float32, "cpu")
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(mask, again)
    assert not torch.equal(mask, other)
    rate = round(0.2 * DROPOUT_LEVELS) / DROPOUT_LEVELS
    assert mask.unique().tolist() == pytest.approx([0.0, 1 / (1 - rate)])
    assert float((mask == 0).float().mean()) == pytest.approx(0.2, abs=0.003)
    # Unbiased: the mean multiplier is one.
    assert float(mask.mean()) == pytest.approx(1.0, abs=0.005)
    # Columns and rows are independent of each other (no repeated bytes).
    assert float((mask[:, 0] == 0).float().mean()) == pytest.approx(0.2, abs=0.05)
    assert dropout_mask((3, 5), 1.0, None, torch.float32, "cpu").abs().sum() == 0
    assert torch.equal(dropout_mask((3, 5), 1e-4, None, torch.float32, "cpu"), torch.ones(3, 5))


def test_lookup_in_a_given_table_matches_the_network_tables():
    net = make_net(n_outputs=3).eval()
    elements, starts = torch.tensor([10, 3, 7]), torch.tensor([0, 2, 2, 3])
    bags = [(3, elements, starts)]
    table = torch.cat([net.embedding.weight, net.linear.weight], 1)
    rows, bag_rows = net.table_rows(SEED_BATCH, bags)
    with torch.no_grad():
        torch.testing.assert_close(net(rows, bags=bag_rows, table=table), net(SEED_BATCH, bags=bags))


def test_float64_weights_are_converted_once_and_follow_changes():
    from skdeepfm._network import _cast

    net = make_net().eval()
    weight = net.dnn[0].weight
    assert _cast(weight, torch.float64) is _cast(weight, torch.float64)
    before = net(SEED_BATCH, dtype=torch.float64)
    with torch.no_grad():
        weight.mul_(2.0)
    assert torch.equal(_cast(weight, torch.float64), weight.double())
    assert not torch.equal(before, net(SEED_BATCH, dtype=torch.float64))


def test_float64_prediction_follows_batchnorm_statistics_and_training():
    net = make_net().eval()
    before = net(SEED_BATCH, dtype=torch.float64)
    net.train()(SEED_BATCH, generator=torch.Generator().manual_seed(0))  # moves the running statistics
    after = net.eval()(SEED_BATCH, dtype=torch.float64)
    assert not torch.equal(before, after)
    torch.testing.assert_close(after.float(), net(SEED_BATCH), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"batch_norm": False}, {"n_outputs": 3}])
def test_inference_folds_batchnorm_into_the_linear_layers(kwargs):
    from skdeepfm import _network

    net = make_net(**kwargs).train()
    for seed in range(3):  # running statistics away from their start
        net(SEED_BATCH, generator=torch.Generator().manual_seed(seed))
    net.eval()
    with torch.inference_mode():
        folded = net(SEED_BATCH, dtype=torch.float64)
        single = torch.cat([net(SEED_BATCH[i : i + 1], dtype=torch.float64) for i in range(4)])
    assert net in _network._FOLDED
    # With gradients enabled the layers run one by one, unfolded.
    unfolded = net(SEED_BATCH, dtype=torch.float64).detach()
    torch.testing.assert_close(folded, unfolded, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(single, folded, rtol=1e-12, atol=1e-12)


def test_folded_inference_follows_weights_and_statistics():
    net = make_net().eval()
    with torch.inference_mode():
        before = net(SEED_BATCH, dtype=torch.float64)
    with torch.no_grad():
        net.dnn[1].running_var.mul_(4.0)
    with torch.inference_mode():
        shifted = net(SEED_BATCH, dtype=torch.float64)
    assert not torch.equal(before, shifted)
    torch.testing.assert_close(shifted, net(SEED_BATCH, dtype=torch.float64).detach(), rtol=1e-12, atol=0)

    state = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    state["dnn.0.bias"].mul_(2.0)
    net.load_state_dict(state)
    with torch.inference_mode():
        reloaded = net(SEED_BATCH, dtype=torch.float64)
    assert not torch.equal(reloaded, shifted)
    torch.testing.assert_close(reloaded, net(SEED_BATCH, dtype=torch.float64).detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("index", "module", "folds"),
    [(1, torch.nn.BatchNorm1d(32, affine=False), True), (2, torch.nn.Tanh(), False)],
    ids=["batchnorm-without-affine", "tanh"],
)
def test_inference_of_changed_dnn_layers_matches_running_them_one_by_one(index, module, folds):
    from skdeepfm import _network

    net = make_net()
    net.dnn[index] = module
    net.train()(SEED_BATCH, generator=torch.Generator().manual_seed(0))
    net.eval()
    with torch.inference_mode():
        fast = net(SEED_BATCH, dtype=torch.float64)
    unfolded = net(SEED_BATCH, dtype=torch.float64).detach()
    torch.testing.assert_close(fast, unfolded, rtol=1e-12, atol=1e-12)
    assert (_network._FOLDED.get(net, (None, None))[1] is not None) == folds


def test_logit_calibration_is_applied_saved_and_absent_from_older_states():
    import copy
    import pickle

    net = make_net().eval()
    raw = net(SEED_BATCH, dtype=torch.float64)
    net.set_logit_calibration([0.5], [-1.0])
    torch.testing.assert_close(net(SEED_BATCH, dtype=torch.float64), 0.5 * raw - 1.0)
    # The map travels with the state dict and pickles.
    other = make_net().eval()
    other.load_state_dict(net.state_dict())
    torch.testing.assert_close(other(SEED_BATCH, dtype=torch.float64), 0.5 * raw - 1.0)
    torch.testing.assert_close(
        pickle.loads(pickle.dumps(net))(SEED_BATCH, dtype=torch.float64), 0.5 * raw - 1.0
    )
    # A state or pickle from before the map existed predicts as it did.
    old_state = {k: v for k, v in net.state_dict().items() if not k.startswith("logit_")}
    other.load_state_dict(old_state, strict=True)
    torch.testing.assert_close(other(SEED_BATCH, dtype=torch.float64), raw)
    old = copy.deepcopy(net)
    del old._buffers["logit_scale"], old._buffers["logit_shift"]
    torch.testing.assert_close(pickle.loads(pickle.dumps(old))(SEED_BATCH, dtype=torch.float64), raw)
