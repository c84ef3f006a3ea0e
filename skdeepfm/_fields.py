"""The three kinds of field and how each is learned and encoded.

numpy and pandas only: this module never imports torch. A *field* is one
input column. Every field reserves its first codes (:data:`UNKNOWN_INDEX`,
:data:`MISSING_INDEX`, :data:`INFREQUENT_INDEX`); learned codes follow.

- categorical: one code per cell, from a learned, sorted vocabulary;
- numeric: one learned vector per field, scaled by the cell's robustly
  standardised value (Guo et al. 2017); a missing value has its own code;
- multi-valued: a cell holds several categories (a list, tuple, set or 1-D
  array); each element gets a code, and the network pools their vectors.
"""

from __future__ import annotations

import contextlib
import weakref
from itertools import chain
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

try:  # optional: sorts string vocabularies faster
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - pandas works without it
    pa = pc = None

from ._codes import INFREQUENT_INDEX, MISSING_INDEX, N_RESERVED, UNKNOWN_INDEX
from ._columns import arrow_list_cells, frame_columns, is_arrow_list_array, is_other_frame
from ._kinds import _LIST_TYPES, CATEGORICAL, MULTIVALUE, NUMERIC, temporal_seconds

#: Code of the one learned vector of a numeric field.
NUMERIC_INDEX = N_RESERVED
#: Standardised numeric values are clipped to [-NUMERIC_CLIP, NUMERIC_CLIP].
NUMERIC_CLIP = 5.0


def column_name(estimator, j):
    """Name of column ``j`` for messages: its feature name, else ``x{j}``."""
    names = getattr(estimator, "feature_names_in_", None)
    return str(names[j]) if names is not None else f"x{j}"


def validate_fields(estimator, X, *, reset):
    """Validate ``X`` for ``estimator`` and split it into its columns.

    DataFrames keep one pandas Series per column, so that their dtypes
    (category, str, bool, ...) survive; polars and other dataframes that
    narwhals reads are converted column by column (:func:`frame_columns`);
    anything else goes through
    scikit-learn's ``check_array`` without dtype conversion. Feature counts and
    names are set (``reset=True``) or checked (``reset=False``) on
    ``estimator``, so that errors name it.

    Returns
    -------
    columns : list of pandas.Series or numpy.ndarray
        One 1-D array per field, each of length ``n_samples``.
    """
    other_frame = is_other_frame(X)
    if isinstance(X, pd.DataFrame) or other_frame:
        duplicated = [] if other_frame else list(dict.fromkeys(X.columns[X.columns.duplicated()].tolist()))
        if duplicated:
            # Each column is a field, found by its name: two of one name are ambiguous.
            raise ValueError(
                f"X has duplicated column names {duplicated!r}; each column of X is a field and "
                f"{type(estimator).__name__} needs a distinct name for each."
            )
        names = getattr(estimator, "feature_names_in_", None)
        if reset or names is None or list(X.columns) != names.tolist() or other_frame:
            # scikit-learn's checks and messages for names and counts. The
            # columns of fit, in order, pass them: skipped for speed (one-row
            # predictions).
            validate_data(estimator, X, reset=reset, skip_check_array=True)
        n_samples, n_fields = X.shape
        if n_samples == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                f"of 1 is required by {type(estimator).__name__}."
            )
        if n_fields == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                f"of 1 is required by {type(estimator).__name__}."
            )
        if other_frame:
            return frame_columns(X)
        # Names are unique (checked above): items() is the cheapest way to
        # the columns, which matters for one-row predictions.
        return [column for _, column in X.items()]
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=None,
        ensure_all_finite=False,
        accept_sparse=False,
    )
    return [X[:, j] for j in range(X.shape[1])]


def _hashable(value):
    """Key for a cell that cannot be hashed (a dict): its repr.

    The key is a tuple, so it never collides with a string category.
    """
    try:
        hash(value)
    except TypeError:
        return ("<unhashable>", repr(value))
    return value


def plain_values(column, *, keep_arrow_strings=False, keep_arrow_lists=False):
    """1-D values of ``column`` that ``pd.factorize`` accepts.

    With ``keep_arrow_strings``, a pandas string column stored by pyarrow
    (pandas' default ``str`` dtype) stays a pandas array: converting it to
    Python strings cost most of an encoder's fit, while pandas factorizes it
    in pyarrow (:class:`CategoricalField` takes it). With ``keep_arrow_lists``,
    an Arrow list column stays a pandas array, for :func:`flatten_cells`.
    """
    if keep_arrow_lists and isinstance(column, pd.Series) and is_arrow_list_array(column.array):
        return column.array
    if keep_arrow_strings and isinstance(column, pd.Series) and _is_string_array(column.array):
        return column.array
    values = column.to_numpy() if isinstance(column, pd.Series) else column
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype.kind == "O":
        values = np.asarray(values, dtype=object)
    return values


def _is_string_array(values):
    """Whether ``values`` is a pandas string array that pyarrow can take (by its dtype only)."""
    if pa is None or not isinstance(values, pd.api.extensions.ExtensionArray):
        return False
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    )


def _arrow_strings(values):
    """The pyarrow string array behind a pandas array of ``values``, else None."""
    if not _is_string_array(values):
        return None
    try:
        arrow = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return None
    return arrow


def _check_finite(values, name):
    """Reject +/-inf: a float column may hold NaN (missing), never infinity."""
    if values.dtype.kind == "f" and np.isinf(values).any():
        raise ValueError(
            f"Input X contains infinity in column {name!r}; only finite values "
            "and NaN (a missing value) are allowed."
        )


def _sort_key(value):
    """A total order over mixed cells: numbers, booleans, strings, then other types by repr."""
    if isinstance(value, bool | np.bool_):
        return (1, "", float(value), repr(value))
    if isinstance(value, Real):
        return (0, "", float(value), repr(value))
    if isinstance(value, str):
        return (2, "", 0.0, value)
    return (3, type(value).__name__, 0.0, repr(value))


def _factorize(values, sort):
    """``pd.factorize`` that never fails on odd cells; missing -> -1.

    Unhashable cells (dicts) are keyed by their repr. With ``sort``, the
    uniques are sorted by value; when pandas cannot order them (bytes beside
    floats, tuples beside strings), by :func:`_sort_key`, so that the order
    never depends on the order of the rows.
    """
    keyed = False
    try:
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    except TypeError:
        keyed = True
        values = np.fromiter(map(_hashable, values), dtype=object, count=len(values))
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    if sort and len(uniques):
        rank, uniques = _sort_uniques(uniques, keyed)
        codes = np.where(codes < 0, -1, rank[np.maximum(codes, 0)])
    return codes, uniques


def _factorize_counts(values, sort):
    """:func:`_factorize` and how many values got each unique: ``(codes, uniques, counts)``."""
    codes, uniques = _factorize(values, sort)
    return codes, uniques, np.bincount(codes[codes >= 0], minlength=len(uniques))


def _sort_uniques(uniques, keyed):
    """(rank of each unique, sorted uniques), in the order ``pd.factorize(sort=True)`` gives.

    Sorting the uniques, not the rows: strings are ordered by pyarrow (code
    point order, as Python's, but without a Python comparison per pair: five
    times faster on 100,000 strings); other values by pandas; what pandas
    cannot order, and cells keyed by repr, by :func:`_sort_key`.
    """
    strings = pa is not None and not keyed and uniques.dtype == object
    order = None
    if strings and all(type(u) is str for u in uniques):
        # Lone surrogates are not UTF-8: pandas sorts them below.
        with contextlib.suppress(pa.ArrowException, UnicodeEncodeError):
            order = pc.sort_indices(pa.array(uniques, type=pa.string())).to_numpy()
    if order is None and not keyed:
        try:
            rank, sorted_uniques = pd.factorize(uniques, sort=True, use_na_sentinel=True)
            return rank.astype(np.int64), sorted_uniques
        except TypeError:
            pass
    if order is None:
        uniques = np.asarray(uniques, dtype=object)
        order = np.array(sorted(range(len(uniques)), key=lambda i: _sort_key(uniques[i])), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank, uniques[order]


def infrequent_mask(counts, n_samples, min_frequency, max_categories):
    """Which categories are infrequent, with ``OneHotEncoder``'s semantics.

    ``min_frequency``: an int count or a float fraction of ``n_samples``
    below which a category is infrequent. ``max_categories``: at most that
    many output categories, the infrequent bucket counted; among equal counts
    the categories that sort first are kept.
    """
    mask = np.zeros(len(counts), dtype=bool)
    if min_frequency is not None:
        threshold = min_frequency if isinstance(min_frequency, Integral) else min_frequency * n_samples
        mask = counts < threshold
    if max_categories is not None:
        n_kept = len(counts) - mask.sum()
        if n_kept + 1 > max_categories:
            n_frequent = max_categories - 1
            order = np.argsort(-counts, kind="stable")
            mask[order[n_frequent:]] = True
    return mask


#: Hash indexes of fitted vocabularies, by field: kept out of the fields
#: themselves so that they are neither pickled nor saved.
_VOCABULARY_INDEXES = weakref.WeakKeyDictionary()


#: The fitted vocabularies as pyarrow string arrays (None where a category is
#: not a string), by field, for :func:`_arrow_positions`.
_ARROW_VOCABULARIES = weakref.WeakKeyDictionary()


def _arrow_positions(field, arrow_values):
    """(vocabulary position or -1, missing mask) of pyarrow strings, or None.

    One pyarrow hash pass (``index_in``) without a Python string per value;
    None when the vocabulary is not all strings.
    """
    entry = _ARROW_VOCABULARIES.get(field)
    if entry is None or entry[0] is not field.categories:
        categories = field.categories
        vocabulary = None
        if categories.dtype == object and all(type(c) is str for c in categories):
            # Lone surrogates are not UTF-8: such a vocabulary takes pandas' path.
            with contextlib.suppress(pa.ArrowException, UnicodeEncodeError):
                vocabulary = pa.array(categories, type=arrow_values.type)
        entry = _ARROW_VOCABULARIES[field] = (categories, vocabulary)
    if entry[1] is None:
        return None
    positions = pc.index_in(arrow_values, value_set=entry[1])
    codes = pc.fill_null(positions, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, arrow_values.is_null().to_numpy(zero_copy_only=False)


#: Up to this many values are looked up one by one (see CategoricalField._lookup).
_FEW_VALUES = 8


def _position(index, value):
    """Position of ``value`` in a unique ``index``, or -1."""
    try:
        return index.get_loc(_hashable(value))
    except (KeyError, TypeError):
        return -1


def _object_index(values):
    """``pd.Index`` of ``values``; object arrays stay objects (no string inference)."""
    return pd.Index(values, dtype=object if values.dtype.kind == "O" else None, tupleize_cols=False)


def _vocabulary_index(field, as_object):
    """The cached ``pd.Index`` of ``field.categories`` (as objects if asked)."""
    cached = _VOCABULARY_INDEXES.setdefault(field, {})
    entry = cached.get(as_object)
    if entry is None or entry[0] is not field.categories:
        categories = field.categories.astype(object) if as_object else field.categories
        # Object categories stay objects: pandas would infer a string dtype,
        # which refuses some Python strings (lone surrogates) and compares
        # differently.
        index = _object_index(categories)
        index.get_indexer(categories[:0])  # build the hash table now, once
        entry = cached[as_object] = (field.categories, index)
    return entry[1]


class CategoricalField:
    """A sorted vocabulary, with rare categories grouped into one code."""

    kind = CATEGORICAL

    def __init__(self, min_frequency=None, max_categories=None):
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def fit_encode(self, values, n_samples):
        """Learn the vocabulary of ``values``; return their codes."""
        codes, uniques, counts = _factorize_counts(values, sort=True)
        remap = self.fit_counts(uniques, counts, n_samples)
        if remap is None:
            return np.full(len(codes), MISSING_INDEX, dtype=np.int64)
        return np.where(codes < 0, MISSING_INDEX, remap[np.maximum(codes, 0)])

    def fit_counts(self, uniques, counts, n_samples):
        """Learn the vocabulary from the sorted distinct values and their counts.

        Returns the new code of each distinct value (None when there is none).
        """
        infrequent = infrequent_mask(counts, n_samples, self.min_frequency, self.max_categories)
        uniques = np.asarray(uniques, dtype=object if uniques.dtype.kind == "O" else None)
        self.categories = uniques[~infrequent]
        self.n_infrequent = int(infrequent.sum())
        # Old code -> new code: kept categories keep their sorted order.
        if not len(uniques):
            return None
        return np.where(infrequent, INFREQUENT_INDEX, np.cumsum(~infrequent) - 1 + N_RESERVED)

    @property
    def dim(self):
        """Number of codes, reserved ones included."""
        return len(self.categories) + N_RESERVED

    def encode(self, values):
        """Codes of ``values``: unseen -> unknown (or infrequent, if the field has any)."""
        codes, missing = self._positions(values)
        unseen = INFREQUENT_INDEX if self.n_infrequent else UNKNOWN_INDEX
        codes = np.where(codes < 0, unseen, codes + N_RESERVED)
        return np.where(missing, MISSING_INDEX, codes)

    def _positions(self, values):
        """(vocabulary position or -1, missing mask) of ``values``."""
        categories = self.categories
        if len(values) >= len(categories) and (arrow := _arrow_strings(values)) is not None:
            found = _arrow_positions(self, arrow)
            if found is not None:
                return found
        if isinstance(values, pd.api.extensions.ExtensionArray):
            values = plain_values(pd.Series(values, copy=False))
        as_object = categories.dtype.kind != values.dtype.kind
        if as_object:
            categories, values = categories.astype(object), np.asarray(values, dtype=object)
        if len(values) < len(categories):
            return self._lookup(values, as_object)
        return self._factorize_with_vocabulary(categories, values)

    def _lookup(self, values, as_object):
        """(vocabulary position or -1, missing mask) from the field's cached hash index.

        Costs O(len(values)): a few rows against a vocabulary of millions
        (one-row predictions) do not pay for the vocabulary.
        """
        missing = pd.isna(values)
        if len(values) <= _FEW_VALUES:
            # Building an Index of the values costs more than looking each up.
            index = _vocabulary_index(self, as_object)
            pairs = zip(values, missing, strict=True)
            codes = np.array([-1 if gone else _position(index, v) for v, gone in pairs], dtype=np.int64)
            return codes, missing
        try:
            codes = _vocabulary_index(self, as_object).get_indexer(_object_index(values))
        except TypeError:
            keyed = np.fromiter(map(_hashable, values), dtype=object, count=len(values))
            codes = _vocabulary_index(self, True).get_indexer(_object_index(keyed))
        return codes, missing

    @staticmethod
    def _factorize_with_vocabulary(categories, values):
        """(vocabulary position or -1, missing mask) by one hash pass over both.

        The categories go first: pd.factorize numbers values by first
        appearance, so category i gets code i and an unseen value a code of at
        least len(categories). For as many values as categories or more, about
        twice as fast as a hash index lookup.
        """
        try:
            codes, _ = pd.factorize(np.concatenate([categories, values]), use_na_sentinel=True)
        except TypeError:
            keyed = np.fromiter(map(_hashable, values), dtype=object, count=len(values))
            codes, _ = pd.factorize(np.concatenate([categories.astype(object), keyed]), use_na_sentinel=True)
        codes = codes[len(categories) :]
        missing = codes < 0
        return np.where(codes >= len(categories), -1, codes), missing

    def decode(self, codes):
        """Category of each code; None for reserved codes."""
        lookup = np.concatenate([np.full(N_RESERVED, None, dtype=object), self.categories.astype(object)])
        return lookup[codes]


def _as_float(values, name):
    """float64 values of a numeric column; non-numbers, overflows and infinity raise.

    Datetime-like values are seconds (see :func:`temporal_seconds`).
    """
    if values.dtype.kind != "f" and (seconds := temporal_seconds(values)) is not None:
        return seconds
    try:
        floats = pd.to_numeric(pd.Series(values), errors="raise")
        floats = floats.to_numpy(dtype=np.float64, na_value=np.nan)
    except OverflowError as exc:
        raise ValueError(
            f"Column {name!r} is numeric (learned as numbers in fit) but holds a number too large "
            f"for a float64: {exc}"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Column {name!r} is numeric (learned as numbers in fit) but holds a value that is not "
            f"a number: {exc}"
        ) from exc
    # Object and string columns are converted here: infinity is refused as in float columns.
    _check_finite(floats, name)
    return floats


class NumericField:
    """One learned vector, scaled by the robustly standardised value.

    The value is centred on the median and divided by the interquartile range
    / 1.349 (the standard deviation of a normal distribution), or by the
    standard deviation when the IQR is zero, or by 1 for a constant column;
    then clipped to ``[-NUMERIC_CLIP, NUMERIC_CLIP]``, so that outliers
    cannot dominate the FM and DNN terms.
    """

    kind = NUMERIC
    dim = N_RESERVED + 1
    categories = np.empty(0, dtype=object)
    n_infrequent = 0

    def __init__(self, name):
        self.name = name

    def fit_encode(self, values, n_samples):
        """Learn the centre and scale of ``values``; return (codes, scaled values)."""
        floats = _as_float(values, self.name)
        self.fit_present(floats[~np.isnan(floats)])
        return self._encode(floats)

    def fit_present(self, present):
        """Learn the centre and scale from the values present (not NaN)."""
        self.center, self.scale = 0.0, 1.0
        if len(present):
            # Values near the float64 limits (1e308) overflow the spread; a
            # non-finite spread is skipped below.
            with np.errstate(over="ignore", invalid="ignore"):
                q25, self.center, q75 = np.percentile(present, [25, 50, 75])
                spreads = ((q75 - q25) / 1.349, present.std())
            for spread in spreads:
                if spread > 0 and np.isfinite(spread):
                    self.scale = float(spread)
                    break
            self.center = float(self.center)

    def encode(self, values):
        """(codes, scaled values) of ``values``: a missing value has code MISSING_INDEX, value 1."""
        return self._encode(_as_float(values, self.name))

    def _encode(self, floats):
        missing = np.isnan(floats)
        with np.errstate(over="ignore"):
            scaled = np.clip((floats - self.center) / self.scale, -NUMERIC_CLIP, NUMERIC_CLIP)
        codes = np.where(missing, MISSING_INDEX, NUMERIC_INDEX)
        return codes, np.where(missing, 1.0, scaled)

    def decode(self, scaled):
        """Raw values back from scaled ones (clipping is not undone)."""
        return np.asarray(scaled, dtype=np.float64) * self.scale + self.center


def _is_missing_scalar(cell):
    return not isinstance(cell, _LIST_TYPES) and pd.isna(cell)


_ORDERED_LIST_TYPES = (list, tuple, np.ndarray)


def flatten_cells(values):
    """Elements of the cells of a multi-valued column, and each cell's count.

    A list-like cell contributes its elements; a missing cell (None, NaN)
    one missing element; any other scalar itself, as a one-element list.
    The elements of a set are sorted (:func:`_sort_key`): a set's iteration
    order changes with ``PYTHONHASHSEED``, and the order of the pooled
    vectors changes the float rounding of their sum. Arrow list arrays are
    flattened by pyarrow (:func:`arrow_list_cells`).
    """
    if is_arrow_list_array(values):
        return arrow_list_cells(values)
    cells = [
        c
        if isinstance(c, _ORDERED_LIST_TYPES)
        else sorted(c, key=_sort_key)
        if isinstance(c, set | frozenset)
        else [None]
        if _is_missing_scalar(c)
        else [c]
        for c in values
    ]
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    flat = np.fromiter(chain.from_iterable(cells), dtype=object, count=int(lengths.sum()))
    return flat, lengths


class MultiValueField:
    """A vocabulary over the elements of list-like cells; the network pools them."""

    kind = MULTIVALUE

    def __init__(self, min_frequency=None, max_categories=None):
        self.elements = CategoricalField(min_frequency, max_categories)

    @property
    def categories(self):
        """The learned element vocabulary."""
        return self.elements.categories

    @property
    def n_infrequent(self):
        """How many elements were grouped as infrequent."""
        return self.elements.n_infrequent

    @property
    def dim(self):
        """Number of codes, reserved ones included."""
        return self.elements.dim

    def fit_encode(self, values, n_samples):
        """Learn the element vocabulary; return (element codes, lengths)."""
        flat, lengths = flatten_cells(values)
        return self.elements.fit_encode(flat, n_samples), lengths

    def encode(self, values):
        """(element codes, lengths) of ``values``."""
        flat, lengths = flatten_cells(values)
        return self.elements.encode(flat), lengths
