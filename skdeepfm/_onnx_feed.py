"""The input feed of an exported model, built from raw rows (a DataFrame or an array).

Each field's values become the element type of its input (see
:class:`._onnx_encoder.FieldInput`), with the same meaning as in
``FieldEncoder.transform``: a value of another type than the vocabulary's is
sent as a value outside it, a missing value as the field's missing value.
One-row DataFrames take a path without a pandas Series per column (each costs
about 10 µs in pandas 3, more than the model's run): their columns' arrays are
read in one go (:func:`._few_rows.frame_arrays`).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd

from ._few_rows import frame_arrays, has_fitted_columns, is_arrow_string
from ._fields import (
    _LIST_TYPES,
    CATEGORICAL,
    NUMERIC,
    _as_float,
    _check_finite,
    flatten_cells,
    plain_values,
    validate_fields,
)
from ._onnx_encoder import DOUBLE, INT64, STRING, cached_field_inputs

#: Integers above this lose digits in a float64: a float cell that large in
#: a field of integer categories takes the general path.
_EXACT_FLOAT_INT = 2**53


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def _as_int(value, unseen):
    """``value`` as an int64 when it equals one (as the encoder compares), else ``unseen``."""
    if isinstance(value, Integral | np.bool_):
        value = int(value)
        return value if -(2**63) <= value < 2**63 else unseen
    if _is_number(value):
        as_float = float(value)
        if math.isfinite(as_float) and as_float == int(as_float) and abs(as_float) < 2**63:
            return int(as_float)
    return unseen


def _as_double(value, unseen):
    return float(value) if isinstance(value, Real | np.bool_) else unseen


def _typed(values, spec):
    """1-D values of a categorical field (or the elements of a multi-valued one) as ``spec.input_type``."""
    missing = pd.isna(values) if values.dtype.kind in "OfcmM" else np.zeros(len(values), bool)
    if spec.input_type == STRING:
        if values.dtype.kind == "U":
            out = values.astype(object)
        else:
            out = np.array([v if isinstance(v, str) else spec.unseen for v in values], dtype=object)
        out[out == spec.missing] = spec.unseen
        out[missing] = spec.missing
        return out
    if spec.input_type == INT64:
        if values.dtype.kind in "iub" and (values.dtype.kind != "u" or values.max(initial=0) < 2**63):
            out = values.astype(np.int64)
        else:
            out = np.array([_as_int(v, spec.unseen) for v in values], dtype=np.int64)
        out[out == spec.missing] = spec.unseen
        out[missing] = spec.missing
        return out
    if values.dtype.kind in "iubf":
        out = values.astype(np.float64)
    else:
        out = np.array([_as_double(v, spec.unseen) for v in values], dtype=np.float64)
    out[missing] = np.nan
    return out


def _string_column(column, spec):
    """A pandas string column of a field of strings: its cells are strings or missing.

    The general :func:`_typed` checks each cell's type in Python, most of a
    bulk feed's time.
    """
    missing = column.isna().to_numpy()
    out = column.to_numpy(dtype=object, na_value=spec.missing)
    out[(out == spec.missing) & ~missing] = spec.unseen
    return out


def _feed_columns(specs, columns):
    inputs = {}
    for spec, column in zip(specs, columns, strict=True):
        if (
            spec.kind == CATEGORICAL
            and spec.input_type == STRING
            and isinstance(column, pd.Series)
            and isinstance(column.dtype, pd.StringDtype)
        ):
            inputs[spec.name] = _string_column(column, spec)
            continue
        values = plain_values(column)
        if spec.kind == NUMERIC:
            _check_finite(values, spec.name)
            inputs[spec.name] = _as_float(values, spec.name)
        elif spec.kind == CATEGORICAL:
            _check_finite(values, spec.name)
            inputs[spec.name] = _typed(values, spec)
        else:
            flat, lengths = flatten_cells(values)
            inputs[spec.name] = _typed(flat, spec)
            inputs[spec.lengths_name] = lengths
    return inputs


# -- one row ------------------------------------------------------------------


class _GeneralPath(Exception):
    """A cell the one-row path leaves to the general one (which also raises the right errors)."""


def _is_missing(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return value != value
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def _scalar(value, spec):
    """One cell of a categorical field (or one element) as ``spec.input_type``."""
    kind = spec.input_type
    if _is_missing(value):
        return spec.missing if kind != DOUBLE else math.nan
    if isinstance(value, float | np.floating) and (
        math.isinf(value) or (kind == INT64 and abs(value) >= _EXACT_FLOAT_INT)
    ):
        raise _GeneralPath
    if kind == STRING:
        return value if isinstance(value, str) and value != spec.missing else spec.unseen
    if kind == INT64:
        value = _as_int(value, spec.unseen)
        return spec.unseen if value == spec.missing else value
    return _as_double(value, spec.unseen)


_DTYPES = {STRING: object, INT64: np.int64, DOUBLE: np.float64}


def _feed_row(specs, cells):
    inputs = {}
    for spec, cell in zip(specs, cells, strict=True):
        if spec.kind == NUMERIC:
            if not (_is_number(cell) and math.isfinite(cell)) and not _is_missing(cell):
                raise _GeneralPath
            inputs[spec.name] = np.array([math.nan if _is_missing(cell) else float(cell)])
        elif spec.kind == CATEGORICAL:
            if type(cell) is str and spec.input_type == STRING:
                # The common case, without _scalar's checks of other types.
                value = cell if cell != spec.missing else spec.unseen
            else:
                value = _scalar(cell, spec)
            inputs[spec.name] = np.array([value], dtype=_DTYPES[spec.input_type])
        else:
            if isinstance(cell, _LIST_TYPES):
                elements = [_scalar(element, spec) for element in cell]
            else:
                elements = [_scalar(None if _is_missing(cell) else cell, spec)]
            inputs[spec.name] = np.array(elements, dtype=_DTYPES[spec.input_type])
            inputs[spec.lengths_name] = np.array([len(elements)], dtype=np.int64)
    return inputs


def _first_cell(array):
    """The first cell of a column's array, as a Python scalar (None where a string is missing)."""
    if not isinstance(array, np.ndarray):
        if is_arrow_string(array):
            return array.__arrow_array__().to_pylist()[0]
    elif array.dtype.kind not in "biufcOU":
        raise _GeneralPath  # datetime-like: seconds, as the encoder reads them
    return array[:1].tolist()[0]


def _one_row_cells(estimator, X):
    """The cells of a one-row DataFrame with the fitted columns, else None."""
    if not isinstance(X, pd.DataFrame) or len(X) != 1 or not has_fitted_columns(estimator, X):
        return None
    arrays = frame_arrays(X)
    if arrays is None:
        return X.iloc[0].tolist()
    return [_first_cell(array) for array in arrays]


def feed(estimator, X):
    """The input feed of an exported model for the rows of ``X``.

    Parameters
    ----------
    estimator : fitted DeepFMClassifier or DeepFMRegressor
    X : {array-like, DataFrame} of shape (n_samples, n_features)

    Returns
    -------
    inputs : dict of str to ndarray
        One 1-D array per field (and one lengths array per multi-valued field).
    """
    specs = cached_field_inputs(estimator.encoder_)
    try:
        cells = _one_row_cells(estimator, X)
        if cells is not None:
            return _feed_row(specs, cells)
    except _GeneralPath:
        pass
    return _feed_columns(specs, validate_fields(estimator, X, reset=False))
