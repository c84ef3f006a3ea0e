"""Export a fitted estimator, encoder and network, as one ONNX graph on raw values.

The encoder's part (:mod:`._onnx_encoder`) and the network's part
(:mod:`._onnx_network`) are joined here, with the outputs of the estimator's
kind and the metadata that names the fields, their kinds and the classes.
"""

from __future__ import annotations

import json
import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._onnx_encoder import cached_field_inputs, encoder_graph
from ._onnx_feed import feed
from ._onnx_graph import GraphBuilder
from ._onnx_network import network_graph

__all__ = ["onnx_inputs", "to_onnx"]

_DTYPES = {"float32": np.float32, "float64": np.float64}


def _json_scalar(value):
    """A numpy scalar (a class held in an object array) as the Python value JSON takes."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _check_estimator(estimator, function):
    from ._base import BaseDeepFM

    if not isinstance(estimator, BaseDeepFM):
        raise TypeError(
            f"{function} takes a fitted DeepFMClassifier or DeepFMRegressor; got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)


def _label_type(graph, classes):
    """The ONNX element type and values of the ``label`` output, from ``classes_``."""
    proto = graph.onnx.TensorProto
    values = classes.tolist()
    if all(isinstance(c, str) for c in values):
        return proto.STRING, np.array(values, dtype=object)
    if all(isinstance(c, bool | np.bool_) for c in values):
        return proto.BOOL, np.array(values, dtype=bool)
    numbers = [c for c in values if isinstance(c, Real) and not isinstance(c, bool | np.bool_)]
    if len(numbers) == len(values) and all(isinstance(c, Integral) and -(2**63) <= c < 2**63 for c in values):
        return proto.INT64, np.array(values, dtype=np.int64)
    if len(numbers) == len(values):
        return proto.DOUBLE, np.array(values, dtype=np.float64)
    raise ValueError(
        f"classes_ holds labels of the types {sorted({type(c).__name__ for c in values})}; the ONNX "
        "label output has one type. Fit on labels of one type (strings or numbers) to export this model."
    )


def _classifier_outputs(graph, estimator, logits):
    proto = graph.onnx.TensorProto
    label_type, classes = _label_type(graph, estimator.classes_)
    table = graph.const(classes, "classes") if label_type != proto.STRING else None
    if table is None:
        table = graph.node(
            "Constant",
            [],
            value=graph.onnx.helper.make_tensor(
                "classes", proto.STRING, [len(classes)], [c.encode("utf-8", "surrogatepass") for c in classes]
            ),
        )
    if estimator.network_.n_outputs == 1:
        positive = graph.node("Sigmoid", [logits])
        negative = graph.node("Sub", [graph.const(np.array(1.0), "one"), positive])
        probabilities = graph.node("Concat", [negative, positive], axis=1)
        zero = graph.const(np.array(0.0), "zero")
        flat = graph.node("Reshape", [logits, graph.const(np.array([-1], np.int64), "shape")])
        index = graph.node("Cast", [graph.node("Greater", [flat, zero])], to=proto.INT64)
    else:
        probabilities = graph.node("Softmax", [logits], axis=1)
        index = graph.node("ArgMax", [logits], axis=1, keepdims=0)
    graph.add_output(probabilities, "probabilities", graph.tensor_type, ["n_samples", len(classes)])
    graph.add_output(graph.node("Gather", [table, index], axis=0), "label", label_type, ["n_samples"])
    return {"probabilities": "(n_samples, n_classes)", "label": "(n_samples,)"}


def _regressor_outputs(graph, estimator, logits):
    flat = graph.node("Reshape", [logits, graph.const(np.array([-1], np.int64), "shape")])
    scaled = graph.node("Mul", [flat, graph.const(np.array(estimator.target_scale_), "target_scale")])
    predictions = graph.node("Add", [scaled, graph.const(np.array(estimator.target_mean_), "target_mean")])
    graph.add_output(predictions, "predictions", graph.tensor_type, ["n_samples"])
    return {"predictions": "(n_samples,)"}


def to_onnx(estimator, path=None, *, dtype="float32"):
    """Export a fitted estimator as one ONNX model that takes raw values.

    The graph holds the encoder and the network: it takes one input per
    column, named after it, holding the raw values (strings or numbers;
    multi-valued columns as their elements plus a lengths input) and maps
    them as ``FieldEncoder.transform`` does: unseen values to the unknown or
    infrequent code, missing values to the missing code, numeric values
    standardised and clipped. BatchNorm is folded into the Linear layers.
    It uses standard ONNX and ``ai.onnx.ml`` operators (opsets 18 and 4),
    which onnxruntime runs; see :ref:`the serving guide <serving>` for the
    input convention and :func:`onnx_inputs` to build the feed from a
    DataFrame.

    Parameters
    ----------
    estimator : DeepFMClassifier or DeepFMRegressor
        Fitted.
    path : str or path-like or None, default=None
        Where to write the model; None only returns it.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the computation and of the outputs. Numeric inputs are
        float64 in both.

    Returns
    -------
    model : onnx.ModelProto
        Outputs ``probabilities`` (n_samples, n_classes) and ``label``
        (n_samples,) for a classifier, ``predictions`` (n_samples,) for a
        regressor. ``metadata_props`` hold ``skdeepfm.fields`` (JSON: each
        field's name, kind, input type and missing value),
        ``skdeepfm.classes`` and ``skdeepfm.outputs``.

    Raises
    ------
    ImportError
        Without the ``onnx`` package (``pip install 'skdeepfm[onnx]'``).
    ValueError
        For a field that ONNX cannot encode (hashed with ``hash_buckets``,
        categories of several types), naming it.

    Examples
    --------
    >>> import pandas as pd
    >>> import skdeepfm
    >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
    >>> clf = skdeepfm.DeepFMClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X, ["a", "b"] * 50)
    >>> model = skdeepfm.to_onnx(clf)
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['device', 'ad'], ['probabilities', 'label'])
    """
    _check_estimator(estimator, "to_onnx")
    if dtype not in _DTYPES:
        raise ValueError(
            f"The 'dtype' parameter of to_onnx must be 'float32' or 'float64'. Got {dtype!r} instead."
        )
    from ._classifier import DeepFMClassifier

    graph = GraphBuilder(_DTYPES[dtype])
    network = estimator.network_
    specs = cached_field_inputs(estimator.encoder_)
    encoded = encoder_graph(graph, estimator.encoder_, network.offsets.cpu().numpy())
    logits = network_graph(graph, network, encoded)
    metadata = {
        "skdeepfm.version": __import__("skdeepfm").__version__,
        "skdeepfm.estimator": type(estimator).__name__,
        "skdeepfm.dtype": dtype,
        "skdeepfm.fields": json.dumps([spec.describe() for spec in specs]),
    }
    if isinstance(estimator, DeepFMClassifier):
        outputs = _classifier_outputs(graph, estimator, logits)
        metadata["skdeepfm.classes"] = json.dumps(estimator.classes_.tolist(), default=_json_scalar)
    else:
        outputs = _regressor_outputs(graph, estimator, logits)
    metadata["skdeepfm.outputs"] = json.dumps(outputs)
    model = graph.model(
        doc_string=f"{type(estimator).__name__} exported by skdeepfm: raw values in, see skdeepfm.fields.",
        metadata=metadata,
    )
    if path is not None:
        graph.onnx.save(model, os.fspath(path))
    return model


def onnx_inputs(estimator, X):
    """The input feed of :func:`to_onnx`'s model for the rows of ``X``.

    Parameters
    ----------
    estimator : DeepFMClassifier or DeepFMRegressor
        The fitted estimator that was exported.
    X : {array-like, DataFrame} of shape (n_samples, n_features)
        Raw rows, with the columns seen during ``fit``.

    Returns
    -------
    inputs : dict of str to ndarray
        What ``onnxruntime.InferenceSession.run(None, inputs)`` takes: one
        1-D array per column (strings as objects, integers as int64, numbers
        as float64; missing values as the field's missing value), and for a
        multi-valued column its elements, row after row, and an int64
        ``"<column>.lengths"`` array.

    Examples
    --------
    >>> import pandas as pd
    >>> import skdeepfm
    >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "age": [20.0, 30.0] * 50})
    >>> clf = skdeepfm.DeepFMClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X, ["a", "b"] * 50)
    >>> inputs = skdeepfm.onnx_inputs(clf, pd.DataFrame({"device": ["tv", None], "age": [25.0, None]}))
    >>> inputs["device"], inputs["age"]
    (array(['tv', ''], dtype=object), array([25., nan]))
    """
    _check_estimator(estimator, "onnx_inputs")
    return feed(estimator, X)
