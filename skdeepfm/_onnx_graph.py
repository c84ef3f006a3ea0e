"""A small builder of ONNX graphs: named nodes, constants, inputs and outputs.

Imports ``onnx`` lazily (the optional ``onnx`` extra); the encoder's and the
network's parts of an exported model are written with it.
"""

from __future__ import annotations

import numpy as np

#: The opset of the standard operators (ScatterND's reductions need 18).
OPSET = 18
#: The opset of the ``ai.onnx.ml`` operators (LabelEncoder with typed tensors).
ML_OPSET = 4
ML_DOMAIN = "ai.onnx.ml"


def import_onnx():
    """The ``onnx`` module, or an ImportError naming the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "Exporting to ONNX needs the onnx package: pip install 'skdeepfm[onnx]' (onnx and onnxruntime)."
        ) from exc
    return onnx


class GraphBuilder:
    """Accumulates the nodes, constants, inputs and outputs of one ONNX graph.

    Parameters
    ----------
    dtype : numpy dtype
        The floating-point type of the computation (float32 or float64).
    """

    def __init__(self, dtype):
        self.onnx = import_onnx()
        self.dtype = np.dtype(dtype)
        self.nodes = []
        self.initializers = []
        self.inputs = []
        self.outputs = []
        self._count = 0

    def _name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    @property
    def tensor_type(self):
        """The ONNX element type of ``dtype``."""
        return self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)

    def node(self, op, inputs, *, n_outputs=1, domain="", **attributes):
        """Add one node; return its output name (or names, with ``n_outputs > 1``)."""
        outputs = [self._name(op.lower()) for _ in range(n_outputs)]
        self.nodes.append(
            self.onnx.helper.make_node(
                op, list(inputs), outputs, name=self._name(op), domain=domain, **attributes
            )
        )
        return outputs[0] if n_outputs == 1 else outputs

    def const(self, array, hint="const", dtype=None):
        """Add a constant (an initializer); return its name.

        Floating-point arrays take the builder's ``dtype`` unless ``dtype`` is given.
        """
        array = np.asarray(array)
        if dtype is not None:
            array = array.astype(dtype)
        elif array.dtype.kind == "f":
            array = array.astype(self.dtype)
        name = self._name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def tensor(self, array, dtype=None):
        """A TensorProto of ``array`` for attributes (LabelEncoder's keys and values)."""
        array = np.asarray(array)
        if array.dtype.kind in "OU":
            proto = self.onnx.helper.make_tensor(
                self._name("tensor"),
                self.onnx.TensorProto.STRING,
                [len(array)],
                [str(v).encode("utf-8", "surrogatepass") for v in array],
            )
            return proto
        return self.onnx.numpy_helper.from_array(array if dtype is None else array.astype(dtype))

    def add_input(self, name, elem_type, shape):
        """Declare a graph input named ``name``; returns the name."""
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, source, name, elem_type, shape):
        """Expose ``source`` as the graph output ``name``."""
        self.nodes.append(self.onnx.helper.make_node("Identity", [source], [name], name=self._name("output")))
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, shape))

    def stack_columns(self, columns, hint="stacked"):
        """(n_samples, len(columns)) from 1-D tensors of length n_samples, in order.

        Concatenated along their one axis, then reshaped and transposed: three
        nodes whatever the number of columns (one ``Unsqueeze`` each costs
        more for a one-row request).
        """
        if len(columns) == 1:
            return self.node("Unsqueeze", [columns[0], self.const(np.array([1], np.int64), "axis")])
        joined = self.node("Concat", columns, axis=0)
        shape = self.const(np.array([len(columns), -1], np.int64), f"{hint}_shape")
        return self.node("Transpose", [self.node("Reshape", [joined, shape])], perm=[1, 0])

    def model(self, *, doc_string="", metadata=None):
        """The finished ``onnx.ModelProto``, checked by ``onnx.checker``."""
        helper = self.onnx.helper
        graph = helper.make_graph(
            self.nodes, "skdeepfm", self.inputs, self.outputs, initializer=self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
            producer_name="skdeepfm",
            doc_string=doc_string,
        )
        # The oldest IR that these opsets allow: older onnxruntime releases load it.
        model.ir_version = 8
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        self.onnx.checker.check_model(model)
        return model
