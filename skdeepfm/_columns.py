"""Columns of inputs that are not pandas or numpy: polars and other dataframes, Arrow lists.

numpy and pandas only (pyarrow and narwhals when installed): this module
never imports torch. A dataframe that narwhals reads (polars, pyarrow
tables, ...) is split into its columns, each converted on its own, so that
a float column stays floats: one object array for the whole frame would
turn every number into a category. An Arrow list column is flattened in
pyarrow, without a Python object per cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

try:  # optional: scikit-learn >= 1.9 depends on it
    import narwhals.stable.v2 as nw
except ImportError:  # pragma: no cover - older scikit-learn
    nw = None

try:  # optional: Arrow-backed columns
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - pandas works without it
    pa = pc = None


def is_other_frame(X):
    """Whether ``X`` is an eager dataframe other than pandas that narwhals reads (polars, ...)."""
    return (
        nw is not None
        and not isinstance(X, pd.DataFrame)
        and hasattr(X, "columns")
        and nw.dependencies.is_into_dataframe(X)
    )


def _column(series):
    """One narwhals column as numpy values, or a pandas Series where numpy would lose information.

    Integers with nulls stay nullable integers (numpy would make them
    floats, hence numeric); lists and fixed-size arrays stay Arrow lists.
    """
    dtype = series.dtype
    if pa is not None and isinstance(dtype, nw.List | nw.Array):
        return pd.Series(pd.arrays.ArrowExtensionArray(series.to_arrow()), copy=False)
    if dtype.is_integer() and series.null_count():
        values = series.fill_null(0).to_numpy().astype(np.int64)
        return pd.Series(pd.arrays.IntegerArray(values, series.is_null().to_numpy()), copy=False)
    return series.to_numpy()


def frame_columns(X):
    """The columns of a dataframe that :func:`is_other_frame` accepts, one per field."""
    frame = nw.from_native(X, eager_only=True)
    return [_column(frame.get_column(name)) for name in frame.columns]


def is_arrow_list_array(values):
    """Whether ``values`` is a pandas array of Arrow lists (list, large_list, fixed_size_list)."""
    if pa is None or not isinstance(getattr(values, "dtype", None), pd.ArrowDtype):
        return False
    arrow_type = values.dtype.pyarrow_dtype
    return (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or (pa.types.is_fixed_size_list(arrow_type))
    )


def arrow_list_cells(values):
    """Elements of an Arrow list array and each cell's count, as :func:`flatten_cells` gives them.

    A missing cell (a null list) contributes one missing element. String
    elements stay a pandas Arrow string array (encoded without a Python
    string each); others become a numpy array.
    """
    arrow = pa.array(values)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if pa.types.is_fixed_size_list(arrow.type):
        arrow = arrow.cast(pa.list_(arrow.type.value_type))
    missing = arrow.is_null().to_numpy(zero_copy_only=False)
    sizes = pc.fill_null(pc.list_value_length(arrow), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = arrow.flatten()
    lengths = np.where(missing, 1, sizes)
    if missing.any():
        # Each null cell becomes one null element, in its place.
        starts = np.cumsum(lengths) - lengths
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        index = np.full(lengths.sum(), len(flat), dtype=np.int64)
        index[np.repeat(starts, sizes) + within] = np.arange(len(flat))
        flat = pa.concat_arrays([flat, pa.nulls(1, flat.type)]).take(pa.array(index))
    if pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type):
        return pd.arrays.ArrowExtensionArray(flat), lengths
    if flat.null_count or not (pa.types.is_integer(flat.type) or pa.types.is_floating(flat.type)):
        return np.asarray(flat.to_pylist(), dtype=object), lengths
    return flat.to_numpy(zero_copy_only=False), lengths
