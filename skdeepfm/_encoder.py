"""Learned ordinal encoding of raw columns (fields) into integer codes.

numpy and pandas only: this module never imports torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

# Every field reserves its first codes; learned categories start after them.
#: Code of a category never seen during ``fit``.
UNKNOWN_INDEX = 0
#: Code of a missing value (None, NaN, pd.NA, NaT).
MISSING_INDEX = 1
#: Number of reserved codes at the start of each field.
N_RESERVED = 2


def column_name(estimator, j):
    """Name of column ``j`` for messages: its feature name, else ``x{j}``."""
    names = getattr(estimator, "feature_names_in_", None)
    return str(names[j]) if names is not None else f"x{j}"


def validate_fields(estimator, X, *, reset):
    """Validate ``X`` for ``estimator`` and split it into its columns.

    DataFrames keep one pandas Series per column, so that their dtypes
    (category, str, bool, ...) survive; anything else goes through
    scikit-learn's ``check_array`` without dtype conversion. Feature counts and
    names are set (``reset=True``) or checked (``reset=False``) on
    ``estimator``, so that errors name it.

    Returns
    -------
    columns : list of pandas.Series or numpy.ndarray
        One 1-D array per field, each of length ``n_samples``.
    """
    if isinstance(X, pd.DataFrame):
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
        return [X.iloc[:, j] for j in range(n_fields)]
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
    """Key for a cell that cannot be hashed (a dict, a list): its repr.

    The key is a tuple, so it never collides with a string category.
    """
    try:
        hash(value)
    except TypeError:
        return ("<unhashable>", repr(value))
    return value


def _plain_values(column):
    """1-D values of ``column`` that ``pd.factorize`` and ``pd.Index`` accept."""
    values = column.to_numpy() if isinstance(column, pd.Series) else column
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype.kind == "O":
        values = np.asarray(values, dtype=object)
    return values


def _check_finite(values, name):
    """Reject +/-inf: a float column may hold NaN (missing), never infinity."""
    if values.dtype.kind == "f" and np.isinf(values).any():
        raise ValueError(
            f"Input X contains infinity in column {name!r}; only finite values "
            "and NaN (a missing value) are allowed."
        )


def _factorize(values):
    """Codes and sorted unique values of the non-missing cells of ``values``.

    Missing cells get code -1. The order of the uniques is deterministic:
    sorted by value (pandas orders mixed types safely), never by hash or
    appearance.
    """
    try:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    except TypeError:
        # Unhashable cells (dicts, lists): identify them by their repr.
        keyed = np.fromiter(map(_hashable, values), dtype=object, count=len(values))
        codes, uniques = pd.factorize(keyed, sort=True, use_na_sentinel=True)
    # use_na_sentinel maps every missing kind (None, NaN, NaT, pd.NA) to -1.
    return codes, np.asarray(uniques, dtype=object if uniques.dtype.kind == "O" else None)


class FieldEncoder(TransformerMixin, BaseEstimator):
    """Encode each column (field) of raw categories as integer codes.

    Each input column is a *field*. ``fit`` learns the vocabulary of every
    field from its raw values: strings (object, ``str`` and ``string``
    dtypes), integers, booleans, floats, pandas ``category`` columns, or a mix
    of these. ``transform`` maps each cell to an integer code, independently
    per field:

    - ``0`` (:data:`UNKNOWN_INDEX`): a category never seen during ``fit``;
      unknown categories never raise;
    - ``1`` (:data:`MISSING_INDEX`): a missing value (None, NaN, ``pd.NA``,
      ``NaT``), all kinds sharing one code;
    - ``2 + i``: the ``i``-th category of ``categories_[field]``.

    Categories are sorted by value, so the vocabulary does not depend on the
    order of the rows or on hash seeds. Cells that cannot be hashed (dicts,
    lists) are identified by their ``repr``.

    Read more in the :ref:`User Guide <fields>`.

    Attributes
    ----------
    categories_ : list of ndarray
        The learned categories of each field, sorted, without missing values.
    field_dims_ : ndarray of shape (n_features_in_,)
        Number of codes of each field, reserved codes included:
        ``len(categories_[j]) + 2``.
    n_features_in_ : int
        Number of fields seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the fields seen during ``fit``. Defined only when ``X`` has
        feature names that are all strings.

    See Also
    --------
    sklearn.preprocessing.OrdinalEncoder : Raises on, or sets aside, unknown
        categories; this encoder reserves a code for them in every field.
    DeepFMClassifier : Trains a DeepFM network on the codes of this encoder.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm import FieldEncoder
    >>> X = pd.DataFrame({"device": ["phone", "tablet", None], "age": [25, 31, 25]})
    >>> enc = FieldEncoder().fit(X)
    >>> enc.field_dims_
    array([4, 4])
    >>> enc.transform(pd.DataFrame({"device": ["tablet", "tv"], "age": [31, 99]}))
    array([[3, 3],
           [0, 0]])
    """

    def fit(self, X, y=None):
        """Learn the vocabulary of every field.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : None
            Ignored.

        Returns
        -------
        self : FieldEncoder
            The fitted encoder.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Learn the vocabularies and return the codes of ``X``.

        Equivalent to ``fit(X).transform(X)``, with one pass over the data.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : None
            Ignored.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_features), dtype int64
            The code of every cell.
        """
        return self._fit(X)

    def _fit(self, X):
        return self._fit_columns(validate_fields(self, X, reset=True))

    def _fit_columns(self, columns):
        """Learn the vocabularies of validated columns; return their codes."""
        codes = np.empty((len(columns[0]), len(columns)), dtype=np.int64)
        categories = []
        for j, column in enumerate(columns):
            values = _plain_values(column)
            _check_finite(values, column_name(self, j))
            field_codes, uniques = _factorize(values)
            codes[:, j] = np.where(field_codes < 0, MISSING_INDEX, field_codes + N_RESERVED)
            categories.append(uniques)
        self.categories_ = categories
        self.field_dims_ = np.array([len(c) + N_RESERVED for c in categories], dtype=np.int64)
        return codes

    def transform(self, X):
        """Map every cell of ``X`` to its code.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories, with the columns seen during ``fit``.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_features), dtype int64
            The code of every cell: :data:`UNKNOWN_INDEX` for categories not
            seen in ``fit``, :data:`MISSING_INDEX` for missing values.
        """
        check_is_fitted(self)
        return self._transform_columns(validate_fields(self, X, reset=False))

    def _transform_columns(self, columns):
        """Codes of validated columns."""
        codes = np.empty((len(columns[0]), len(columns)), dtype=np.int64)
        for j, column in enumerate(columns):
            codes[:, j] = self._transform_column(j, column)
        return codes

    def _transform_column(self, j, column):
        values = _plain_values(column)
        _check_finite(values, column_name(self, j))
        categories = self.categories_[j]
        if categories.dtype.kind != values.dtype.kind:
            categories, values = categories.astype(object), np.asarray(values, dtype=object)
        # The categories go first: pd.factorize numbers values by first
        # appearance, so category i gets code i and an unseen value a code of
        # at least len(categories). One hash pass over the column, about twice
        # as fast as pd.Index.get_indexer followed by pd.isna.
        try:
            codes, _ = pd.factorize(np.concatenate([categories, values]), use_na_sentinel=True)
        except TypeError:
            keyed = np.fromiter(map(_hashable, values), dtype=object, count=len(values))
            codes, _ = pd.factorize(np.concatenate([categories.astype(object), keyed]), use_na_sentinel=True)
        n_categories = len(categories)
        codes = codes[n_categories:]
        return np.where(
            codes < 0, MISSING_INDEX, np.where(codes >= n_categories, UNKNOWN_INDEX, codes + N_RESERVED)
        )

    def inverse_transform(self, X):
        """Map codes back to categories.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Codes, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features), dtype object
            The category of each code; None for the unknown and missing codes.
        """
        check_is_fitted(self)
        codes = np.asarray(X)
        if codes.ndim != 2 or codes.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must be a 2-D array of codes with {self.n_features_in_} columns; got shape {codes.shape}."
            )
        out = np.empty(codes.shape, dtype=object)
        for j, (cats, dim) in enumerate(zip(self.categories_, self.field_dims_, strict=True)):
            col = codes[:, j]
            if not np.issubdtype(col.dtype, np.integer) or col.min() < 0 or col.max() >= dim:
                raise ValueError(
                    f"Column {column_name(self, j)!r} of X must hold integer codes in [0, {dim - 1}]."
                )
            lookup = np.concatenate([np.array([None] * N_RESERVED, dtype=object), cats.astype(object)])
            out[:, j] = lookup[col]
        return out

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
