"""The encoder's part of an ONNX export, and the input feed that it takes.

From a fitted :class:`FieldEncoder`'s public state (``categories_``,
``field_kinds_``, ``numeric_center_``, ``numeric_scale_``,
``n_infrequent_categories_``): one graph input per field, named after its
column, and the nodes that turn raw values into the codes (table rows) and
values that the network's part reads, as ``FieldEncoder.transform`` does.
:func:`feed` builds the inputs from a DataFrame with the same conventions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ._codes import INFREQUENT_INDEX, MISSING_INDEX, N_RESERVED, UNKNOWN_INDEX
from ._fields import (
    CATEGORICAL,
    MULTIVALUE,
    NUMERIC,
    NUMERIC_CLIP,
    NUMERIC_INDEX,
    column_name,
)

#: The ONNX element type of each kind of input.
STRING, INT64, DOUBLE = "string", "int64", "double"
#: Suffix of the input holding the number of elements of each row of a multi-valued field.
LENGTHS_SUFFIX = ".lengths"


@dataclass
class FieldInput:
    """How one field is fed to an exported model.

    Attributes
    ----------
    index : int
        The field's position among the encoder's fields.
    name : str
        The column's name, which is the graph input's name.
    kind : str
        "categorical", "numeric" or "multivalue".
    input_type : str
        "string", "int64" or "double": the element type of the input.
    vocabulary : ndarray or None
        The kept categories, as ``input_type`` values (None for numeric fields).
    missing : str, int or None
        The value that stands for a missing cell in a string or int64 input
        (NaN in a double input: None here).
    unseen : str, int or float or None
        A value outside the vocabulary, which :func:`feed` sends for a cell
        that the input type cannot hold (a number in a string field): the
        encoder gives such a cell the unseen code.
    unseen_code : int
        The code of a value not in the vocabulary: infrequent if the field
        has infrequent categories, else unknown.
    """

    index: int
    name: str
    kind: str
    input_type: str
    vocabulary: np.ndarray | None = None
    missing: object = None
    unseen: object = None
    unseen_code: int = UNKNOWN_INDEX

    @property
    def lengths_name(self):
        """The name of the lengths input of a multi-valued field, else None."""
        return self.name + LENGTHS_SUFFIX if self.kind == MULTIVALUE else None

    def describe(self):
        """A JSON-ready description for the model's metadata and the docs."""
        out = {"name": self.name, "kind": self.kind, "input": self.name, "type": self.input_type}
        if self.kind == MULTIVALUE:
            out["lengths_input"] = self.lengths_name
        if self.kind != NUMERIC:
            out["missing"] = "NaN" if self.missing is None else self.missing
            out["n_categories"] = len(self.vocabulary)
        return out


def _is_bool(value):
    return isinstance(value, bool | np.bool_)


def _vocabulary(categories, name):
    """(input type, typed vocabulary) of a field's categories; ValueError when no ONNX type holds them."""
    values = list(categories)
    if not values or all(isinstance(c, str) for c in values):
        strings = np.array([str(c) for c in values], dtype=object)
        for category in strings:
            try:
                category.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"Column {name!r} holds the category {category!r}, which is not valid UTF-8 text "
                    "(ONNX strings are UTF-8): clean the column before fitting to export this model."
                ) from exc
        return STRING, strings
    if all(isinstance(c, Integral) or _is_bool(c) for c in values):
        as_int = [int(c) for c in values]
        if all(-(2**63) <= c < 2**63 for c in as_int):
            return INT64, np.array(as_int, dtype=np.int64)
    if all((isinstance(c, Real) or _is_bool(c)) and float(c) == c for c in values):
        return DOUBLE, np.array([float(c) for c in values], dtype=np.float64)
    types = sorted({type(c).__name__ for c in values})
    raise ValueError(
        f"Column {name!r} holds categories of the types {types}; an ONNX input has one type (strings, "
        "integers or floats). Convert the column to one type (for example with .astype(str)) before "
        "fitting to export this model."
    )


def _outside(vocabulary, candidates):
    """The first of ``candidates`` that is not in ``vocabulary``."""
    taken = set(vocabulary.tolist())
    return next(c for c in candidates if c not in taken)


def _strings_outside(vocabulary, first, stem):
    candidates = (first if i == 0 else f"{stem}{i}" for i in range(len(vocabulary) + 2))
    return _outside(vocabulary, candidates)


def _with_sentinels(spec):
    """Set the missing value and the unseen placeholder of a categorical or multi-valued field."""
    vocabulary = spec.vocabulary
    if spec.input_type == STRING:
        # The empty string is missing unless it is a category: CSV readers
        # read an empty cell as missing, and a client can send it.
        spec.missing = _strings_outside(vocabulary, "", "\x00missing")
        spec.unseen = _strings_outside(np.append(vocabulary, spec.missing), "\x00unseen", "\x00unseen")
    elif spec.input_type == INT64:
        low = np.iinfo(np.int64).min
        spec.missing = int(_outside(vocabulary, range(low, low + len(vocabulary) + 1)))
        spec.unseen = int(_outside(vocabulary, range(spec.missing + 1, spec.missing + len(vocabulary) + 2)))
    else:
        spec.unseen = float(_outside(vocabulary, (-np.inf, np.inf, np.finfo(np.float64).min)))
    return spec


def field_inputs(encoder):
    """The :class:`FieldInput` of every field of a fitted encoder.

    Raises
    ------
    ValueError
        For a field that an ONNX graph cannot encode (hashed, or with
        categories of several types), naming it and what to do.
    """
    specs = []
    for j, kind in enumerate(encoder.field_kinds_):
        name = column_name(encoder, j)
        if kind == NUMERIC:
            specs.append(FieldInput(j, name, NUMERIC, DOUBLE))
            continue
        if kind not in (CATEGORICAL, MULTIVALUE):
            raise ValueError(
                f"Column {name!r} is a field of kind {kind!r}, which the ONNX export cannot encode."
            )
        categories = encoder.categories_[j]
        if categories is None:
            raise ValueError(
                f"Column {name!r} is hashed (hash_buckets={encoder.hash_buckets}): ONNX has no operator for "
                "its BLAKE2b hash. Fit with hash_buckets=None (a learned vocabulary) to export this model."
            )
        input_type, vocabulary = _vocabulary(categories, name)
        unseen_code = INFREQUENT_INDEX if encoder.n_infrequent_categories_[j] else UNKNOWN_INDEX
        specs.append(
            _with_sentinels(FieldInput(j, name, kind, input_type, vocabulary, unseen_code=unseen_code))
        )
    names = {spec.name for spec in specs}
    for spec in specs:
        if spec.lengths_name in names:
            raise ValueError(
                f"Column {spec.name!r} is multi-valued and its lengths input would be named "
                f"{spec.lengths_name!r}, which is another column: rename one of them to export this model."
            )
    return specs


#: The field inputs of each fitted encoder, computed once (one-row feeds).
_SPECS = weakref.WeakKeyDictionary()


def cached_field_inputs(encoder):
    """:func:`field_inputs`, kept while the encoder's vocabularies stay the same objects."""
    key = tuple(map(id, encoder.categories_))
    cached = _SPECS.get(encoder)
    if cached is None or cached[0] != key:
        cached = _SPECS[encoder] = (key, field_inputs(encoder))
    return cached[1]


# -- the graph ----------------------------------------------------------------


@dataclass
class EncodedGraph:
    """Names of the encoder part's results, for the network's part.

    Every code is a row of the network's tables (the field's offset added).

    Attributes
    ----------
    categorical : list of int
        The categorical fields, in the order of the columns of ``codes``.
    codes : str or None
        (n_samples, len(categorical)) int64 rows.
    numeric : list of int
        The numeric fields, in the order of the columns of ``numeric_codes``.
    numeric_codes, numeric_values : str or None
        (n_samples, len(numeric)) int64 rows and their multipliers.
    bags : list of (int, str, str)
        For each multi-valued field: its index, the (n_elements,) int64 rows
        of its elements and the (n_samples,) int64 lengths.
    """

    categorical: list
    codes: str | None
    numeric: list
    numeric_codes: str | None
    numeric_values: str | None
    bags: list

    @property
    def order(self):
        """The fields in the order the network's part stacks their vectors."""
        return [*self.categorical, *self.numeric, *(j for j, _, _ in self.bags)]


def _lookup(graph, spec, source, offset):
    """(n,) int64 rows of the values in ``source`` (LabelEncoder), as ``CategoricalField.encode``."""
    keys = spec.vocabulary
    codes = np.arange(N_RESERVED, N_RESERVED + len(keys), dtype=np.int64) + offset
    if spec.input_type != DOUBLE:
        keys = np.append(keys, np.array([spec.missing], dtype=keys.dtype))
        codes = np.append(codes, MISSING_INDEX + offset)
    key_type = {STRING: None, INT64: np.int64, DOUBLE: np.float64}[spec.input_type]
    rows = graph.node(
        "LabelEncoder",
        [source],
        domain="ai.onnx.ml",
        keys_tensor=graph.tensor(keys, key_type),
        values_tensor=graph.tensor(codes, np.int64),
        default_tensor=graph.tensor(np.array([spec.unseen_code + offset], dtype=np.int64)),
    )
    if spec.input_type == DOUBLE:
        missing = graph.const(np.array(MISSING_INDEX + offset, dtype=np.int64), "missing_row")
        rows = graph.node("Where", [graph.node("IsNaN", [source]), missing, rows])
    return rows


def _numeric(graph, specs, encoder, offsets):
    """(rows, values) of the numeric fields: standardised, clipped, rounded to float32.

    Rounded as the encoder stores them, so that float64 graphs match.
    """
    j = [spec.index for spec in specs]
    raw = graph.stack_columns([spec.name for spec in specs], "numeric")
    missing = graph.node("IsNaN", [raw])
    present_rows = graph.const(offsets[j] + NUMERIC_INDEX, "numeric_row", np.int64)
    missing_rows = graph.const(offsets[j] + MISSING_INDEX, "missing_row", np.int64)
    rows = graph.node("Where", [missing, missing_rows, present_rows])
    centred = graph.node("Sub", [raw, graph.const(encoder.numeric_center_[j], "center", np.float64)])
    scaled = graph.node("Div", [centred, graph.const(encoder.numeric_scale_[j], "scale", np.float64)])
    low = graph.const(np.array(-NUMERIC_CLIP), "clip", np.float64)
    high = graph.const(np.array(NUMERIC_CLIP), "clip", np.float64)
    clipped = graph.node("Clip", [scaled, low, high])
    values = graph.node("Cast", [clipped], to=graph.onnx.TensorProto.FLOAT)
    if graph.dtype != np.float32:
        values = graph.node("Cast", [values], to=graph.tensor_type)
    values = graph.node("Where", [missing, graph.const(np.array(1.0), "one"), values])
    return rows, values


def encoder_graph(graph, encoder, offsets=None):
    """Declare the inputs of ``encoder``'s fields and add the nodes that encode them.

    Parameters
    ----------
    graph : GraphBuilder
    encoder : FieldEncoder
        Fitted.
    offsets : ndarray of shape (n_fields,) or None, default=None
        Added to each field's codes (the network's table offsets); None: the
        codes of ``FieldEncoder.transform``.

    Returns
    -------
    encoded : EncodedGraph
    """
    specs = cached_field_inputs(encoder)
    offsets = np.zeros(len(specs), np.int64) if offsets is None else np.asarray(offsets, np.int64)
    proto = graph.onnx.TensorProto
    elem_types = {STRING: proto.STRING, INT64: proto.INT64, DOUBLE: proto.DOUBLE}
    for spec in specs:
        dim = "n_elements" if spec.kind == MULTIVALUE else "n_samples"
        graph.add_input(spec.name, elem_types[spec.input_type], [dim])
        if spec.kind == MULTIVALUE:
            graph.add_input(spec.lengths_name, proto.INT64, ["n_samples"])
    categorical = [s for s in specs if s.kind == CATEGORICAL]
    numeric = [s for s in specs if s.kind == NUMERIC]
    codes = None
    if categorical:
        rows = [_lookup(graph, s, s.name, int(offsets[s.index])) for s in categorical]
        codes = graph.stack_columns(rows, "codes")
    numeric_codes = numeric_values = None
    if numeric:
        numeric_codes, numeric_values = _numeric(graph, numeric, encoder, offsets)
    bags = [
        (s.index, _lookup(graph, s, s.name, int(offsets[s.index])), s.lengths_name)
        for s in specs
        if s.kind == MULTIVALUE
    ]
    return EncodedGraph(
        [s.index for s in categorical], codes, [s.index for s in numeric], numeric_codes, numeric_values, bags
    )
