"""FieldEncoder: learned encoding of raw columns (fields) into codes and values.

numpy and pandas only: this module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._fields import (
    CATEGORICAL,
    MISSING_INDEX,
    MULTIVALUE,
    N_RESERVED,
    NUMERIC,
    CategoricalField,
    MultiValueField,
    NumericField,
    _check_finite,
    column_name,
    plain_values,
    validate_fields,
)
from ._hashing import HashedField, HashedMultiValueField, check_hash_parameters
from ._kinds import field_kinds


@dataclass
class EncodedFields:
    """Encoded rows, as the network consumes them.

    Attributes
    ----------
    codes : ndarray of shape (n_samples, n_fields), int32 or int64
        The code of each cell (0 for multi-valued fields, whose codes are in
        ``bags``). The encoder gives int32 (half the memory of int64) unless
        ``hash_buckets`` needs more.
    values : ndarray of shape (n_samples, n_fields), float32, or None
        The multiplier of each cell's vector: the scaled value of a numeric
        field, 1 elsewhere. None when no field is numeric.
    bags : dict of int to (ndarray, ndarray)
        For each multi-valued field: the codes of all elements, row after
        row, and the number of elements of each row.
    """

    codes: np.ndarray
    values: np.ndarray | None = None
    bags: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.codes)

    def take(self, rows):
        """The encoded rows at integer positions ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.intp)
        bags = {}
        for j, (elements, lengths) in self.bags.items():
            starts = np.cumsum(lengths) - lengths
            taken = lengths[rows]
            new_starts = np.cumsum(taken) - taken
            positions = np.repeat(starts[rows] - new_starts, taken) + np.arange(taken.sum())
            bags[j] = (elements[positions], taken)
        values = None if self.values is None else self.values[rows]
        return EncodedFields(self.codes[rows], values, bags)


class FieldEncoder(TransformerMixin, BaseEstimator):
    """Encode each column (field) of raw data into codes and values.

    Each input column is a *field* of one of three kinds:

    - **categorical**: strings (object, ``str`` and ``string`` dtypes),
      integers, booleans, pandas ``category``, or a mix. Each cell gets the
      code of its category in a learned, sorted vocabulary.
    - **numeric**: each cell gets the field's one code and its value,
      centred on the median, divided by the IQR / 1.349 (or the standard
      deviation when the IQR is zero, or 1 for a constant column) and
      clipped to [-5, 5]; DeepFM scales the field's vector by it. A
      datetime-like column is numeric: seconds since 1970-01-01 UTC.
    - **multi-valued**: cells hold lists, tuples, sets or 1-D arrays of
      categories (``["sports", "music"]``), or an Arrow list column holds
      them; each element gets a code from a
      vocabulary learned over all elements, and the network pools their
      vectors (mean). An empty list has no element; a scalar cell is a
      one-element list.

    Every field reserves its first codes:

    - ``0`` (:data:`UNKNOWN_INDEX`): a category never seen during ``fit``;
      unknown categories never raise;
    - ``1`` (:data:`MISSING_INDEX`): a missing value (None, NaN, ``pd.NA``,
      ``NaT``), all kinds sharing one code;
    - ``2`` (:data:`INFREQUENT_INDEX`): the categories set aside by
      ``min_frequency`` and ``max_categories``. In a field that has such
      categories, unseen categories share this (trained) code instead of the
      unknown one, as ``OneHotEncoder(handle_unknown="infrequent_if_exist")``
      does; the encoder stores the kept categories only, so its size stays
      bounded however many distinct values a field has;
    - ``3 + i``: the ``i``-th category of ``categories_[field]``; for a
      numeric field, ``3`` is its one code; with ``hash_buckets``, the
      category's hash bucket, so that codes ``0`` and ``2`` are never used.

    Read more in the :ref:`User Guide <fields>`.

    Parameters
    ----------
    numeric_features : "auto", None, or array-like, default="auto"
        Which fields are numeric. "auto": the floating-point and
        datetime-like columns, and the object columns of real numbers with
        a float among them (a column that looks numeric but is not, such as
        numbers written as strings, is warned about). None: none. Otherwise
        column names, column indices, or a boolean mask. A datetime-like
        column is always numeric: leaving it out raises.
    multivalue_features : "auto", None, or array-like, default="auto"
        Which fields are multi-valued. "auto": the object columns in which a
        cell is a list, tuple, set or 1-D array, and Arrow list columns. None: none (list cells are
        then categories, compared by their ``repr``). Otherwise column
        names, column indices, or a boolean mask.
    min_frequency : int, float or None, default=None
        Categories (or elements) seen fewer times than this in ``fit`` are
        infrequent: an int is a count, a float in (0, 1) a fraction of the
        rows. None: no minimum.
    max_categories : int or None, default=None
        Keep at most this many codes for the categories of a field, the
        infrequent code counted: the most frequent categories are kept.
        None: no maximum.
    hash_buckets : int or None, default=None
        None: each categorical and multi-valued field learns its vocabulary
        in ``fit``, and values unseen then share the reserved
        :data:`UNKNOWN_INDEX` (or :data:`INFREQUENT_INDEX`) code. An int:
        such fields learn nothing; a value's code is
        ``3 + stable_hash(value) % hash_buckets``, so that values first seen
        after ``fit`` (in a later chunk of a stream) get a code of their own,
        possibly shared with other values (a collision). Cannot be combined
        with ``min_frequency`` or ``max_categories``. See Notes.

    Attributes
    ----------
    categories_ : list of ndarray or None
        The kept categories of each field, sorted; empty for numeric fields;
        None for hashed fields (``hash_buckets``), which have no vocabulary.
    code_counts_ : list of ndarray
        For each field, an int64 array of length ``field_dims_[field]``: how
        many training values got each code in ``fit`` (for a multi-valued
        field, how many elements; for a numeric field, how many rows got its
        one code and how many the missing code).
    field_kinds_ : ndarray of str of shape (n_features_in_,)
        "categorical", "numeric" or "multivalue" for each field.
    field_dims_ : ndarray of shape (n_features_in_,)
        Number of codes of each field, reserved codes included.
    n_infrequent_categories_ : ndarray of shape (n_features_in_,)
        Number of categories of each field grouped as infrequent.
    numeric_center_ : ndarray of shape (n_features_in_,)
        The median of each numeric field; NaN for other fields.
    numeric_scale_ : ndarray of shape (n_features_in_,)
        The scale of each numeric field; NaN for other fields.
    n_features_in_ : int
        Number of fields seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the fields seen during ``fit``. Defined only when ``X`` has
        feature names that are all strings.

    See Also
    --------
    sklearn.preprocessing.OrdinalEncoder : Raises on, or sets aside, unknown
        categories; this encoder reserves a code for them in every field.
    DeepFMClassifier : Trains a DeepFM network on the output of this encoder.

    Notes
    -----
    ``transform`` returns int64 codes when every field is categorical. With
    a numeric field it returns float64: codes for the categorical fields,
    scaled values (NaN when missing) for the numeric ones. With a
    multi-valued field it returns an object array whose multi-valued cells
    are int64 arrays of element codes.

    **Learned or hashed codes.** By default the vocabulary of a field is
    fixed by ``fit``: a category first seen later (in a new chunk of a
    stream) maps to the reserved unknown code and keeps it, so the model
    cannot learn anything about it. For streaming training, set
    ``hash_buckets``: ``fit`` once, on the first chunk (numeric fields learn
    their median and scale there, hashed fields nothing), then
    ``transform`` every later chunk; new values get real codes whose
    vectors can be trained. The hash is stable across processes, Python
    versions and platforms (BLAKE2b of a type-tagged byte string, never
    Python's salted ``hash``). Values that the learned vocabulary holds as
    one category (Python equality) share a code: ``1``, ``1.0`` and ``True``
    are one value, while ``1``, ``"1"`` and ``b"1"`` are three. In hashing
    mode ``categories_`` is None for the hashed fields and
    ``inverse_transform`` raises, as hashing is one-way; pick
    ``hash_buckets`` well above a field's number of distinct values to keep
    collisions rare (about ``n**2 / (2 * hash_buckets)`` pairs among ``n``
    values).

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm import FieldEncoder
    >>> X = pd.DataFrame({"device": ["phone", "tablet", None], "age": [25, 31, 25]})
    >>> enc = FieldEncoder().fit(X)
    >>> enc.field_dims_
    array([5, 5])
    >>> enc.transform(pd.DataFrame({"device": ["tablet", "tv"], "age": [31, 99]}))
    array([[4, 4],
           [0, 0]])

    With ``hash_buckets``, an unseen category gets a code of its own:

    >>> hashed = FieldEncoder(hash_buckets=1000).fit(X)
    >>> hashed.field_dims_
    array([1003, 1003])
    >>> bool(hashed.transform(pd.DataFrame({"device": ["tv"], "age": [99]})).min() >= 3)
    True
    >>> enc.code_counts_[0]  # unknown, missing, infrequent, "phone", "tablet"
    array([0, 1, 0, 1, 1])
    """

    _parameter_constraints: dict = {
        "numeric_features": [StrOptions({"auto"}), "array-like", None],
        "multivalue_features": [StrOptions({"auto"}), "array-like", None],
        "min_frequency": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
            None,
        ],
        "max_categories": [Interval(Integral, 1, None, closed="left"), None],
        "hash_buckets": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        numeric_features="auto",
        multivalue_features="auto",
        min_frequency=None,
        max_categories=None,
        hash_buckets=None,
    ):
        self.numeric_features = numeric_features
        self.multivalue_features = multivalue_features
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.hash_buckets = hash_buckets

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the kind, vocabulary or scaling of every field.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw data; each column is a field.
        y : None
            Ignored.

        Returns
        -------
        self : FieldEncoder
            The fitted encoder.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import FieldEncoder
        >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone"], "age": [25, 31, 25]})
        >>> FieldEncoder().fit(X).field_dims_
        array([5, 5])
        """
        self._fit_columns(validate_fields(self, X, reset=True))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Learn the fields and return the encoding of ``X``.

        Equivalent to ``fit(X).transform(X)``, with one pass over the data.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw data; each column is a field.
        y : None
            Ignored.

        Returns
        -------
        X_encoded : ndarray of shape (n_samples, n_features)
            See Notes for its dtype.
        """
        return self._to_array(self._fit_columns(validate_fields(self, X, reset=True)))

    def _fit_columns(self, columns):
        """Learn the fields from validated columns; return their encoding."""
        check_hash_parameters(type(self).__name__, self.hash_buckets, self.min_frequency, self.max_categories)
        names = getattr(self, "feature_names_in_", None)
        kinds = field_kinds(columns, names, self.numeric_features, self.multivalue_features)
        n_samples = len(columns[0])
        fields = self._new_fields(kinds)
        encoded = self._run(fields, columns, lambda f, values: f.fit_encode(values, n_samples))
        self._set_fields(fields, kinds)
        self.code_counts_ = self._code_counts(encoded)
        return encoded

    def _new_fields(self, kinds):
        """Unfitted fields of ``kinds``, under this encoder's parameters."""
        fields = []
        for j, kind in enumerate(kinds):
            if kind == NUMERIC:
                fields.append(NumericField(column_name(self, j)))
            elif self.hash_buckets is not None:
                hashed = HashedMultiValueField if kind == MULTIVALUE else HashedField
                fields.append(hashed(self.hash_buckets))
            elif kind == MULTIVALUE:
                fields.append(MultiValueField(self.min_frequency, self.max_categories))
            else:
                fields.append(CategoricalField(self.min_frequency, self.max_categories))
        return fields

    def _set_fields(self, fields, kinds):
        """Take fitted ``fields`` and set the fitted attributes, but ``code_counts_``."""
        self._fields = fields
        self.field_kinds_ = np.array(kinds, dtype=object)
        self.categories_ = [f.categories for f in fields]
        self.field_dims_ = np.array([f.dim for f in fields], dtype=np.int64)
        self.n_infrequent_categories_ = np.array([f.n_infrequent for f in fields], dtype=np.int64)
        self.numeric_center_ = np.array([getattr(f, "center", np.nan) for f in fields], dtype=np.float64)
        self.numeric_scale_ = np.array([getattr(f, "scale", np.nan) for f in fields], dtype=np.float64)

    def _code_counts(self, encoded):
        """How many values of ``encoded`` got each code, per field (``code_counts_``)."""
        return [
            np.bincount(
                encoded.bags[j][0] if f.kind == MULTIVALUE else encoded.codes[:, j], minlength=f.dim
            ).astype(np.int64, copy=False)
            for j, f in enumerate(self._fields)
        ]

    def _encode_columns(self, columns):
        """Encoding of validated columns by the fitted fields."""
        return self._run(self._fields, columns, lambda f, values: f.encode(values))

    def _run(self, fields, columns, encode):
        n_samples = len(columns[0])
        # A learned field has fewer codes than rows seen in fit; a hashed one
        # hash_buckets + N_RESERVED.
        wide = self.hash_buckets is not None and self.hash_buckets + N_RESERVED > np.iinfo(np.int32).max
        codes = np.zeros((n_samples, len(fields)), dtype=np.int64 if wide else np.int32)
        values = None
        bags = {}
        for j, (spec, column) in enumerate(zip(fields, columns, strict=True)):
            raw = plain_values(
                column, keep_arrow_strings=spec.kind == CATEGORICAL, keep_arrow_lists=spec.kind == MULTIVALUE
            )
            if spec.kind != MULTIVALUE:
                _check_finite(raw, column_name(self, j))
            result = encode(spec, raw)
            if spec.kind == CATEGORICAL:
                codes[:, j] = result
            elif spec.kind == NUMERIC:
                if values is None:
                    values = np.ones((n_samples, len(fields)), dtype=np.float32)
                codes[:, j], values[:, j] = result
            else:
                bags[j] = result
        return EncodedFields(codes, values, bags)

    def transform(self, X):
        """Encode every cell of ``X``.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw data, with the columns seen during ``fit``.

        Returns
        -------
        X_encoded : ndarray of shape (n_samples, n_features)
            Codes (:data:`UNKNOWN_INDEX` for categories not seen in ``fit``,
            or their hashed codes with ``hash_buckets``; :data:`MISSING_INDEX`
            for missing values), scaled numeric values and arrays of element
            codes; see Notes for the dtype.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import FieldEncoder
        >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone"], "age": [25, 31, 25]})
        >>> FieldEncoder().fit(X).transform(X)
        array([[3, 3],
               [4, 4],
               [3, 3]])
        """
        check_is_fitted(self)
        return self._to_array(self._encode_columns(validate_fields(self, X, reset=False)))

    def _to_array(self, encoded):
        kinds = self.field_kinds_
        if not encoded.bags and encoded.values is None:
            return encoded.codes.astype(np.int64, copy=False)
        out = encoded.codes.astype(np.float64)
        for j in np.flatnonzero(kinds == NUMERIC):
            out[:, j] = np.where(encoded.codes[:, j] == MISSING_INDEX, np.nan, encoded.values[:, j])
        if not encoded.bags:
            return out
        out = out.astype(object)
        for j in np.flatnonzero(kinds == CATEGORICAL):
            out[:, j] = encoded.codes[:, j]
        for j, (elements, lengths) in encoded.bags.items():
            cells = np.empty(len(lengths), dtype=object)
            cells[:] = np.split(elements, np.cumsum(lengths)[:-1])
            out[:, j] = cells
        return out

    def inverse_transform(self, X):
        """Map encoded data back to categories and values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Output of ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features), dtype object
            The category of each code (None for reserved codes), the value of
            each numeric cell (clipping is not undone), the list of categories
            of each multi-valued cell.

        Raises
        ------
        ValueError
            If a field is hashed (``hash_buckets``): hashing is one-way.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import FieldEncoder
        >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone"], "age": [25, 31, 25]})
        >>> enc = FieldEncoder().fit(X)
        >>> enc.inverse_transform(enc.transform(X.head(2)))
        array([['phone', 25],
               ['tablet', 31]], dtype=object)
        """
        check_is_fitted(self)
        hashed = [j for j, categories in enumerate(self.categories_) if categories is None]
        if hashed:
            j = hashed[0]
            raise ValueError(
                f"Column {column_name(self, j)!r} is hashed (hash_buckets="
                f"{self.field_dims_[j] - N_RESERVED}) and hashing is one-way: inverse_transform "
                "cannot map its codes back to categories."
            )
        encoded = np.asarray(X, dtype=object)
        if encoded.ndim != 2 or encoded.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must be a 2-D array with {self.n_features_in_} columns; got shape {encoded.shape}."
            )
        out = np.empty(encoded.shape, dtype=object)
        for j, spec in enumerate(self._fields):
            column = encoded[:, j]
            if spec.kind == NUMERIC:
                out[:, j] = spec.decode(column.astype(np.float64))
            elif spec.kind == MULTIVALUE:
                out[:, j] = [list(spec.elements.decode(self._checked_codes(c, j))) for c in column]
            else:
                out[:, j] = spec.decode(self._checked_codes(column, j))
        return out

    def _checked_codes(self, codes, j):
        codes = np.asarray(codes)
        try:
            as_int = codes.astype(np.int64)
        except (TypeError, ValueError):
            as_int = None
        if (
            as_int is None
            or np.any(as_int != codes)
            or (len(as_int) and (as_int.min() < 0 or as_int.max() >= self.field_dims_[j]))
        ):
            raise ValueError(
                f"Column {column_name(self, j)!r} of X must hold integer codes in "
                f"[0, {self.field_dims_[j] - 1}]."
            )
        return as_int

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: one per field, the input names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names. If None, ``feature_names_in_`` is used when
            defined, else ``["x0", "x1", ...]``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The names of the fields.
        """
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []
        return tags
