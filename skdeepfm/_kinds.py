"""Which kind each field is, and the numbers a datetime-like column stands for.

numpy and pandas only: this module never imports torch. In ``"auto"`` mode
the kind of a column comes from its dtype where the dtype tells
(floating-point and datetime-like columns are numeric, Arrow list columns
multi-valued) and from its values where it does not (an object column, as
numpy arrays, ``ColumnTransformer`` and ``SimpleImputer`` give): floats are
numeric, lists multi-valued; a column that looks numeric but is not learned
so gets a warning naming it and the parameter to set.
"""

from __future__ import annotations

import datetime
from numbers import Integral

import numpy as np
import pandas as pd

from ._columns import is_arrow_list_array
from ._warnings import warn

try:  # optional: Arrow-backed columns
    import pyarrow as pa
except ImportError:  # pragma: no cover - pandas works without it
    pa = None

CATEGORICAL, NUMERIC, MULTIVALUE = "categorical", "numeric", "multivalue"
_LIST_TYPES = (list, tuple, set, frozenset, np.ndarray)

#: What ``pd.api.types.infer_dtype`` calls an object column of datetime-like cells.
_TEMPORAL_INFERRED = frozenset(
    {"datetime64", "datetime", "date", "timedelta64", "timedelta", "time", "period"}
)
#: ... of real numbers, one of them at least a float (or a Decimal): numeric in "auto" mode.
_FLOAT_INFERRED = frozenset({"floating", "mixed-integer-float", "decimal"})
#: What ``pd.api.types.infer_dtype`` calls an object column without a list cell.
_LISTLESS_INFERRED = frozenset(
    {"string", "bytes", "integer", "boolean", "complex", "interval", "empty"}
    | _FLOAT_INFERRED
    | _TEMPORAL_INFERRED
)
#: Cells of a column read to tell whether its strings are numbers.
_SAMPLE = 1_000


def _inferred(column):
    """Pandas' name for the type of an object column's cells; None for other dtypes."""
    if column.dtype != np.dtype(object):
        return None
    return pd.api.types.infer_dtype(column, skipna=True)


def is_temporal(column, inferred=None):
    """Whether ``column`` holds datetimes, dates, times, timedeltas or periods (dtype or cells)."""
    dtype = column.dtype
    if dtype.kind in "mM" or isinstance(dtype, pd.DatetimeTZDtype | pd.PeriodDtype):
        return True
    if pa is not None and isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_temporal(dtype.pyarrow_dtype)
    return (inferred if inferred is not None else _inferred(column)) in _TEMPORAL_INFERRED


def temporal_seconds(values):
    """Seconds since 1970-01-01 UTC of datetime-like ``values`` (NaN where missing), else None.

    Datetimes and dates count from the epoch (naive ones read as UTC,
    time-zone-aware ones converted to it), periods from their start,
    timedeltas and times of day are their length in seconds.
    """
    kind = values.dtype.kind
    if isinstance(values, pd.api.extensions.ExtensionArray) or kind not in "mMO":
        if not is_temporal(pd.Series(values, copy=False)):
            return None
        values = pd.Series(values, copy=False).to_numpy()
        kind = values.dtype.kind
    inferred = pd.api.types.infer_dtype(values, skipna=True) if kind == "O" else None
    if kind == "m" or inferred in ("timedelta", "timedelta64"):
        seconds = pd.to_timedelta(values) / pd.Timedelta(seconds=1)
    elif kind == "M" or inferred in ("datetime", "datetime64", "date", "period"):
        if inferred == "period":
            values = pd.PeriodIndex(values).to_timestamp()
        stamps = pd.to_datetime(values, utc=True)
        seconds = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    elif inferred == "time":
        seconds = [
            np.nan
            if pd.isna(t)
            else (datetime.datetime.combine(datetime.date.min, t) - datetime.datetime.min).total_seconds()
            for t in values
        ]
    else:
        return None
    return np.asarray(seconds, dtype=np.float64)


def _is_float_column(column, inferred):
    dtype = column.dtype
    if dtype.kind == "f" or isinstance(dtype, pd.Float64Dtype | pd.Float32Dtype):
        return True
    if pa is not None and isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_floating(dtype.pyarrow_dtype) or pa.types.is_decimal(dtype.pyarrow_dtype)
    return inferred in _FLOAT_INFERRED


def _warn_if_numeric_looking(column, name, inferred):
    """Warn when a column learned as categorical holds numbers with fractions among its cells."""
    strings = inferred == "string" or (inferred is None and pd.api.types.is_string_dtype(column.dtype))
    if not (strings or inferred in ("mixed", "mixed-integer")):
        return
    head = column.iloc[:_SAMPLE] if isinstance(column, pd.Series) else column[:_SAMPLE]
    sample = pd.Series(head, copy=False).dropna()
    if inferred in ("mixed", "mixed-integer"):
        cells = [v for v in sample if isinstance(v, float | np.floating)]
        numbers = np.asarray(cells, dtype=np.float64)
        what = "numbers with fractions beside other values"
    else:
        cells = list(sample)
        try:
            numbers = np.asarray(pd.to_numeric(sample, errors="coerce"), dtype=np.float64)
        except (OverflowError, TypeError, ValueError):
            return
        if np.isnan(numbers).any():
            return
        what = "numbers written as strings"
    fractions = np.flatnonzero(numbers != np.round(numbers))
    if len(fractions):
        example = cells[fractions[0]]
        warn(
            f"Column {name!r} holds {what} (such as {example!r}); numeric_features='auto' learns it "
            "as categorical, one code per distinct value. To learn it as numeric, convert it to floats or "
            "list it in numeric_features; to keep it categorical, list the numeric columns in "
            "numeric_features (or set None).",
            UserWarning,
        )


def _has_list_cells(column, inferred):
    # Only plain object columns can hold Python lists; str, category and
    # numeric columns are not scanned. pandas' type inference (compiled)
    # clears the usual all-string column without a Python call per cell.
    if is_arrow_list_array(column):
        return True
    if inferred is None or inferred in _LISTLESS_INFERRED:
        return False
    return any(isinstance(c, _LIST_TYPES) for c in column)


def _selected(spec, columns, names, parameter):
    """Boolean mask of the columns named by a list of names, indices or a mask."""
    n = len(columns)
    items = list(spec)
    if items and all(isinstance(i, bool | np.bool_) for i in items):
        if len(items) != n:
            raise ValueError(f"{parameter} as a boolean mask must have {n} entries; got {len(items)}.")
        return np.asarray(items, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    for item in items:
        if isinstance(item, str):
            if names is None or item not in list(names):
                raise ValueError(
                    f"{parameter} names column {item!r}, which is not a column of X"
                    + ("" if names is None else f"; the columns are {list(names)}")
                    + "."
                )
            mask[list(names).index(item)] = True
        elif isinstance(item, Integral) and -n <= item < n:
            mask[item] = True
        else:
            raise ValueError(
                f"{parameter} must hold column names, indices in [0, {n}) or a boolean mask; got {item!r}."
            )
    return mask


def _name(names, j):
    return str(names[j]) if names is not None else f"x{j}"


def field_kinds(columns, names, numeric_features, multivalue_features):
    """The kind of every column, from the two parameters (see FieldEncoder).

    In ``"auto"`` mode, floating-point and datetime-like columns are numeric,
    whether the dtype or the cells (an object column) say so; a column of
    numbers that stays categorical (numbers written as strings, floats among
    strings) is warned about. A datetime-like column is never categorical:
    one code per timestamp would leave every later timestamp unknown.
    """
    auto_numeric = isinstance(numeric_features, str) and numeric_features == "auto"
    inferred = [_inferred(c) for c in columns]
    temporal = np.array([is_temporal(c, i) for c, i in zip(columns, inferred, strict=True)], dtype=bool)
    if auto_numeric:
        numeric = temporal | [_is_float_column(c, i) for c, i in zip(columns, inferred, strict=True)]
    elif numeric_features is None:
        numeric = np.zeros(len(columns), dtype=bool)
    else:
        numeric = _selected(numeric_features, columns, names, "numeric_features")
    if isinstance(multivalue_features, str) and multivalue_features == "auto":
        multi = np.array([_has_list_cells(c, i) for c, i in zip(columns, inferred, strict=True)], dtype=bool)
        multi &= ~numeric
    elif multivalue_features is None:
        multi = np.zeros(len(columns), dtype=bool)
    else:
        multi = _selected(multivalue_features, columns, names, "multivalue_features")
    both = np.flatnonzero(numeric & multi)
    if len(both):
        raise ValueError(
            f"Column {_name(names, both[0])!r} is in both "
            "numeric_features and multivalue_features; a field has one kind."
        )
    categorical = ~numeric & ~multi
    for j in np.flatnonzero(categorical & temporal):
        raise ValueError(
            f"Column {_name(names, j)!r} holds datetimes (or dates, times, timedeltas, periods), which "
            "are learned as numbers (seconds since 1970-01-01 UTC) and never as one category per "
            "timestamp, which every later timestamp would miss: list it in numeric_features (or leave "
            "numeric_features='auto'), or derive categorical columns from it first (such as "
            "X[col].dt.hour and X[col].dt.dayofweek)."
        )
    if auto_numeric:
        for j in np.flatnonzero(categorical):
            _warn_if_numeric_looking(columns[j], _name(names, j), inferred[j])
    return [NUMERIC if n else MULTIVALUE if m else CATEGORICAL for n, m in zip(numeric, multi, strict=True)]
