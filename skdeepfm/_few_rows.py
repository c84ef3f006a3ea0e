"""The encoding of a few rows of a DataFrame, cell by cell, without a pandas Series per column.

numpy and pandas only (pyarrow when installed): this module never imports
torch. A served model scores one row per request. In pandas 3 reading a
column builds a Series (10-13 µs each), and the encoder's vectorised path
costs tens of µs per field whatever the number of rows: for one row of ten
fields, more than the network. :func:`few_rows_encoding` reads the columns'
arrays in one go (:func:`frame_arrays`) and looks each cell up in the
field's cached hash index, as ``CategoricalField`` does for a few values
(``_lookup``), so that the codes are those of ``FieldEncoder.transform``.
Whatever it does not handle (multi-valued and hashed fields, column types
other than numbers, strings and objects, odd cells) is left to the general
path, which also raises the errors for bad input.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import pandas as pd

from ._codes import INFREQUENT_INDEX, MISSING_INDEX, N_RESERVED, UNKNOWN_INDEX
from ._encoder import EncodedFields
from ._fields import (
    _FEW_VALUES,
    NUMERIC_CLIP,
    NUMERIC_INDEX,
    CategoricalField,
    NumericField,
    _position,
    _vocabulary_index,
)

#: At most this many rows take the cell-by-cell path: as many as
#: ``CategoricalField`` looks up one by one in the general path.
MAX_ROWS = _FEW_VALUES

#: The fitted feature names, as a pandas Index, and the columns Index last
#: found equal to them, by estimator (kept out of the estimator: predicting
#: must not change its attributes).
_NAME_INDEXES = weakref.WeakKeyDictionary()


def has_fitted_columns(estimator, X):
    """Whether ``X`` is a pandas DataFrame with the columns of fit, in order.

    Then its names are unique (they were in fit) and scikit-learn's checks
    of names and counts pass.
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or not isinstance(X, pd.DataFrame):
        return False
    entry = _NAME_INDEXES.get(estimator)
    if entry is None or entry[0] is not names:
        # The Index pandas builds from the names (str in pandas 3): comparing
        # Indexes of two dtypes converts one (100 µs).
        entry = _NAME_INDEXES[estimator] = [names, pd.Index(names.tolist()), None]
    columns = X.columns
    if columns is entry[2]:
        # Rows taken from one frame share its (immutable) columns Index.
        return True
    if columns.equals(entry[1]):
        entry[2] = columns
        return True
    return False


def frame_arrays(X):
    """The 1-D array of each column of the DataFrame ``X``, in order, or None.

    Reads pandas' block manager, where each column's values are: public
    column access builds a Series per column. None where the manager is not
    the one expected (another pandas version), so that callers read the
    columns publicly.
    """
    try:
        manager = X._mgr
        blocks = manager.blocks
        arrays = []
        for number, position in zip(manager.blknos.tolist(), manager.blklocs.tolist(), strict=True):
            values = blocks[number].values
            arrays.append(values if values.ndim == 1 else values[position])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return arrays if len(arrays) == len(X.columns) else None


def is_arrow_string(array):
    """Whether ``array`` (a pandas array) holds strings stored by pyarrow."""
    dtype = array.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    return isinstance(dtype, pd.ArrowDtype) and dtype.kind == "U"


def plain_cells(array):
    """(cells, dtype kind) of one column's array, as ``plain_values`` gives its values, or None.

    Strings stored by pyarrow come as a list of Python strings (None where
    missing) and kind "O"; other pandas arrays are converted as
    ``Series.to_numpy`` does; datetime-like and complex columns give None.
    """
    if not isinstance(array, np.ndarray):
        if is_arrow_string(array):
            return array.__arrow_array__().to_pylist(), "O"
        if not isinstance(array, pd.api.extensions.ExtensionArray):
            return None
        categorical = isinstance(array.dtype, pd.CategoricalDtype)
        array = array.to_numpy()
        if categorical:
            array = np.asarray(array, dtype=object)
    kind = array.dtype.kind
    if kind not in "OUbiuf":
        return None
    return array, kind


class _CategoricalCells:
    """The cell-by-cell lookup of one learned categorical field."""

    def __init__(self, field):
        # Weak: a refitted encoder's old vocabulary is not kept alive.
        self.categories = weakref.ref(field.categories)
        self.kind = field.categories.dtype.kind
        self.n_categories = len(field.categories)
        self.unseen = INFREQUENT_INDEX if field.n_infrequent else UNKNOWN_INDEX
        # The general path's hash indexes (CategoricalField._lookup), by
        # whether the cells are compared as objects.
        self.indexes = {}

    def codes(self, field, cells, kind):
        """The codes of ``cells`` in ``field``, or None for the general path."""
        # With as many values as categories or more the general path hashes
        # both at once: the same codes for strings and missing values, the
        # only cells taken then (Python and pandas compare strings alike;
        # numbers, booleans and objects may compare otherwise in a hash pass).
        few = len(cells) < self.n_categories
        if kind == "f" and np.isinf(cells).any():
            return None  # the general path names the column
        as_object = self.kind != kind
        if as_object and kind != "O":
            cells = np.asarray(cells, dtype=object)
        index = self.indexes.get(as_object)
        if index is None:
            index = self.indexes[as_object] = _vocabulary_index(field, as_object)
        unseen = self.unseen
        codes = []
        if kind in "biu":
            # Numbers and booleans of a numpy column: never missing.
            if not few:
                return None
            for value in cells:
                position = _position(index, value)
                codes.append(unseen if position < 0 else position + N_RESERVED)
            return codes
        for value in cells:
            if type(value) is not str:
                if value is None:
                    codes.append(MISSING_INDEX)
                    continue
                missing = pd.isna(value)
                if type(missing) is not bool:
                    return None  # a list-like cell: pd.isna answers per element
                if missing:
                    codes.append(MISSING_INDEX)
                    continue
                if not few:
                    return None
            position = _position(index, value)
            codes.append(unseen if position < 0 else position + N_RESERVED)
        return codes


class _NumericCells:
    """The cell-by-cell scaling of one numeric field."""

    def __init__(self, field):
        self.categories = weakref.ref(field.categories)

    def codes(self, field, cells, kind):
        """(codes, scaled values) of ``cells`` in ``field``, or None for the general path.

        Python floats round as numpy's float64 do: the same scaled values as
        ``NumericField.encode``.
        """
        if kind not in "biuf":
            return None
        center, scale = field.center, field.scale
        codes, scaled = [], []
        for value in cells.tolist():
            value = float(value)
            if value != value:
                codes.append(MISSING_INDEX)
                scaled.append(1.0)
            elif math.isinf(value):
                return None  # the general path names the column
            else:
                codes.append(NUMERIC_INDEX)
                scaled.append(min(max((value - center) / scale, -NUMERIC_CLIP), NUMERIC_CLIP))
        return codes, scaled


#: The cell-by-cell encoder of each fitted field, by field (kept out of the
#: fields, which are pickled and saved, and dropped with them).
_CELL_ENCODERS = weakref.WeakKeyDictionary()

_CELL_KINDS = {CategoricalField: _CategoricalCells, NumericField: _NumericCells}


def _cell_encoder(field):
    """The cell-by-cell encoder of ``field``, or None for a field the general path encodes."""
    cells = _CELL_ENCODERS.get(field)
    if cells is None or cells.categories() is not field.categories:
        kind = _CELL_KINDS.get(type(field))
        if kind is None:
            return None  # multi-valued and hashed fields
        cells = _CELL_ENCODERS[field] = kind(field)
    return cells


def few_rows_encoding(estimator, X):
    """The encoding of ``X`` by ``estimator.encoder_``, or None for the general path.

    Parameters
    ----------
    estimator : fitted FieldEncoder, DeepFMClassifier or DeepFMRegressor
        The estimator whose fitted columns ``X`` must have.
    X : object
        Taken when a pandas DataFrame of 1 to :data:`MAX_ROWS` rows with the
        columns of fit, in order, of learned categorical and numeric fields.

    Returns
    -------
    encoded : EncodedFields or None
        As ``FieldEncoder._encode_columns`` gives for the validated columns.
    """
    encoder = estimator if hasattr(estimator, "_fields") else getattr(estimator, "encoder_", None)
    fields = getattr(encoder, "_fields", None)
    if fields is None or not has_fitted_columns(estimator, X) or not 0 < len(X) <= MAX_ROWS:
        return None
    arrays = frame_arrays(X)
    if arrays is None or len(arrays) != len(fields):
        return None
    columns, numeric = [], {}
    for j, (field, array) in enumerate(zip(fields, arrays, strict=True)):
        cells = _cell_encoder(field)
        plain = None if cells is None else plain_cells(array)
        if plain is None:
            return None
        codes = cells.codes(field, *plain)
        if codes is None:
            return None
        if type(cells) is _NumericCells:
            codes, numeric[j] = codes
        columns.append(codes)
    codes = np.array(columns, dtype=np.int32).T.copy()
    values = None
    if numeric:
        values = np.ones(codes.shape, dtype=np.float32)
        for j, scaled in numeric.items():
            values[:, j] = scaled
    return EncodedFields(codes, values)
