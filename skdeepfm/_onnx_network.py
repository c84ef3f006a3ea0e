"""The network's part of an ONNX export: table rows in, logits out.

From a :class:`DeepFMNetwork`'s own state: the embedding and first-order
tables (one table side by side, looked up once), the FM term, the DNN with
each BatchNorm folded into the Linear before it (as prediction folds it), the
output layer, then the map of the logits (:func:`logit_map`).
"""

from __future__ import annotations

import numpy as np
import torch

from ._network import _folded_dnn


def _array(tensor):
    return tensor.detach().to("cpu", torch.float64).numpy()


def logit_map(network):
    """The affine map ``logits * scale + shift`` the network applies to its logits, or None.

    A network that holds ``logit_scale`` and ``logit_shift`` (shape
    ``(n_outputs,)``, a calibration) maps its logits with them; without them,
    or when they are the identity, the logits are the output layer's.
    """
    scale = getattr(network, "logit_scale", None)
    shift = getattr(network, "logit_shift", None)
    if scale is None and shift is None:
        return None
    n_outputs = network.n_outputs
    scale = np.ones(n_outputs) if scale is None else _array(scale).reshape(n_outputs)
    shift = np.zeros(n_outputs) if shift is None else _array(shift).reshape(n_outputs)
    if np.all(scale == 1.0) and np.all(shift == 0.0):
        return None  # the identity: no nodes
    return scale, shift


def _pool(graph, table, element_rows, lengths, bag_mode):
    """(n_samples, width) pooled rows of ``table`` per bag, as ``F.embedding_bag`` (zeros when empty)."""
    vectors = graph.node("Gather", [table, element_rows], axis=0)
    # Pooled in float32 as the network pools (before its float64 head):
    # exact casts of float32 weights, the same sums.
    float32 = graph.onnx.TensorProto.FLOAT
    if graph.dtype != np.float32:
        vectors = graph.node("Cast", [vectors], to=float32)
    int64 = np.int64
    # The row of each element: one mark at each row's end, summed (empty rows add marks at one place).
    ends = graph.node("CumSum", [lengths, graph.const(np.array(0, int64), "axis")])
    n_elements = graph.node("Shape", [element_rows])
    marks = graph.node(
        "ConstantOfShape",
        [graph.node("Add", [n_elements, graph.const(np.array([1], int64), "one")])],
        value=graph.onnx.helper.make_tensor("zero", graph.onnx.TensorProto.INT64, [1], [0]),
    )
    ones = graph.node("Expand", [graph.const(np.array([1], int64), "one"), graph.node("Shape", [lengths])])
    marks = graph.node("ScatterElements", [marks, ends, ones], axis=0, reduction="add")
    rows = graph.node("CumSum", [marks, graph.const(np.array(0, int64), "axis")])
    rows = graph.node(
        "Slice",
        [rows, graph.const(np.array([0], int64), "start"), n_elements, graph.const(np.array([0], int64))],
    )
    rows = graph.node("Unsqueeze", [rows, graph.const(np.array([1], int64), "axis")])
    width = graph.node("Shape", [table], start=1)
    shape = graph.node("Concat", [graph.node("Shape", [lengths]), width], axis=0)
    if bag_mode == "max":
        start = graph.node("Expand", [graph.const(np.array(-np.inf), "low", np.float32), shape])
        pooled = graph.node("ScatterND", [start, rows, vectors], reduction="max")
        empty = graph.node("Equal", [lengths, graph.const(np.array(0, int64), "zero")])
        empty = graph.node("Unsqueeze", [empty, graph.const(np.array([1], int64), "axis")])
        pooled = graph.node("Where", [empty, graph.const(np.array(0.0), "zero", np.float32), pooled])
    else:
        start = graph.node("Expand", [graph.const(np.array(0.0), "zero", np.float32), shape])
        pooled = graph.node("ScatterND", [start, rows, vectors], reduction="add")
    if bag_mode == "mean":
        counts = graph.node("Max", [lengths, graph.const(np.array(1, int64), "one")])
        counts = graph.node("Cast", [counts], to=float32)
        counts = graph.node("Unsqueeze", [counts, graph.const(np.array([1], int64), "axis")])
        pooled = graph.node("Div", [pooled, counts])
    return pooled if graph.dtype == np.float32 else graph.node("Cast", [pooled], to=graph.tensor_type)


def _field_vectors(graph, network, encoded, table):
    """(n_samples, n_fields, width): each field's rows of ``table``, in ``encoded.order``."""
    parts = []
    if encoded.codes is not None:
        parts.append(graph.node("Gather", [table, encoded.codes], axis=0))
    if encoded.numeric_codes is not None:
        vectors = graph.node("Gather", [table, encoded.numeric_codes], axis=0)
        values = graph.node("Unsqueeze", [encoded.numeric_values, graph.const(np.array([2], np.int64))])
        parts.append(graph.node("Mul", [vectors, values]))
    for _, element_rows, lengths in encoded.bags:
        pooled = _pool(graph, table, element_rows, lengths, network.bag_mode)
        parts.append(graph.node("Unsqueeze", [pooled, graph.const(np.array([1], np.int64), "axis")]))
    return parts[0] if len(parts) == 1 else graph.node("Concat", parts, axis=1)


def _permuted(weight, order, embedding_dim):
    """A layer's (n_out, n_fields * embedding_dim) weight, transposed, its fields in ``order``.

    The graph concatenates the fields' embeddings in ``order`` (categorical,
    numeric, then multi-valued fields), not in the network's order.
    """
    n_out = weight.shape[0]
    per_field = weight.reshape(n_out, -1, embedding_dim)  # (n_out, n_fields, embedding_dim)
    return per_field[:, order].reshape(n_out, -1).T


def network_graph(graph, network, encoded):
    """Add the nodes that compute ``network``'s logits from the encoder part's rows.

    Parameters
    ----------
    graph : GraphBuilder
    network : DeepFMNetwork
        In eval mode; its logits are computed as in prediction.
    encoded : EncodedGraph
        The table rows of each field (the network's offsets added).

    Returns
    -------
    logits : str
        The (n_samples, n_outputs) logits.
    """
    dim, n_outputs = network.embedding_dim, network.n_outputs
    width = dim + n_outputs
    order = encoded.order
    n_fields = len(order)
    table = np.concatenate([_array(network.embedding.weight), _array(network.linear.weight)], axis=1)
    vectors = _field_vectors(graph, network, encoded, graph.const(table, "table"))
    int64 = np.int64
    axis = graph.const(np.array([2], int64), "axis")
    split = graph.const(np.array([dim], int64), "split")
    embeddings = graph.node("Slice", [vectors, graph.const(np.array([0], int64)), split, axis])
    weights = graph.node("Slice", [vectors, split, graph.const(np.array([width], int64)), axis])
    flat = graph.node("Reshape", [embeddings, graph.const(np.array([-1, n_fields * dim], int64), "shape")])
    weights = graph.node("Reshape", [weights, graph.const(np.array([-1, n_fields * n_outputs], int64))])

    # Sums over fields as products with stacked identities: onnxruntime's
    # ReduceSum over the middle axis is several times slower.
    first_order = graph.node("MatMul", [weights, graph.const(np.tile(np.eye(n_outputs), (n_fields, 1)))])

    # FM: 0.5 * ((sum_f e_f) ** 2 - sum_f e_f ** 2), summed over dimensions
    # (one output) or projected (one per class); 0.5 and fm_scale in the map.
    select = graph.const(np.tile(np.eye(dim), (n_fields, 1)), "sum_embeddings")
    summed = graph.node("MatMul", [flat, select])
    squares = graph.node("MatMul", [graph.node("Mul", [flat, flat]), select])
    pairs = graph.node("Sub", [graph.node("Mul", [summed, summed]), squares])
    projection = (
        np.ones((dim, 1)) if network.fm_projection is None else _array(network.fm_projection.weight).T
    )
    second_order = graph.node("MatMul", [pairs, graph.const(0.5 * network.fm_scale * projection, "fm")])

    folded = _folded_dnn(network, torch.float64, torch.device("cpu"))
    if folded is None:
        raise ValueError("The network's DNN holds a layer that the ONNX export cannot write.")
    layers = [(_array(weight), _array(bias)) for weight, bias in folded]
    hidden = flat
    for index, (weight, bias) in enumerate(layers):
        last = index == len(layers) - 1
        if last:
            # The global bias joins the output layer's.
            bias = bias + _array(network.bias)
        matrix = _permuted(weight, order, dim) if index == 0 else weight.T
        hidden = graph.node("Gemm", [hidden, graph.const(matrix, "weight"), graph.const(bias, "bias")])
        if not last:
            hidden = graph.node("Relu", [hidden])
    logits = graph.node("Add", [graph.node("Add", [first_order, second_order]), hidden])
    return _mapped_logits(graph, network, logits)


def _mapped_logits(graph, network, logits):
    """The last step of the logits: the network's affine map when it has one."""
    mapping = logit_map(network)
    if mapping is None:
        return logits
    scale, shift = mapping
    scaled = graph.node("Mul", [logits, graph.const(scale, "logit_scale")])
    return graph.node("Add", [scaled, graph.const(shift, "logit_shift")])
