"""A linear baseline for the same tables as DeepFMClassifier: one-hot, multi-hot and scaled numbers.

:func:`linear_baseline` builds an unfitted scikit-learn pipeline that reads
a DataFrame the way skdeepfm does -- multi-valued, numeric and categorical
columns, detected by :func:`column_kinds` -- and fits a logistic regression
on the encoded columns. The benchmarks compare DeepFM against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ._kinds import CATEGORICAL, MULTIVALUE, NUMERIC, field_kinds

MISSING_STRING = "<missing>"
"""The string a missing categorical cell becomes before one-hot encoding."""


def _is_missing(value):
    """Whether a single cell is missing (None, NaN, ``pd.NA``, ``NaT``); a container never is."""
    result = pd.isna(value)
    return isinstance(result, (bool, np.bool_)) and bool(result)


def _is_multivalue_cell(value):
    """Whether a cell holds several values: a list, tuple, set, frozenset or 1-D numpy array."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, (list, tuple, set, frozenset))


def column_kinds(X):
    """Sort the columns of a table into categorical, numeric and multi-valued ones.

    Parameters
    ----------
    X : pandas.DataFrame
        The table. Anything else is first converted with ``pandas.DataFrame``.

    Returns
    -------
    kinds : dict of str to list
        Column names under the keys ``"multivalue"`` (object columns where
        some non-missing cell is a list, tuple, set, frozenset or 1-D numpy array),
        ``"numeric"`` (floating-point columns and object columns of floats, as
        ``FieldEncoder`` detects them; datetime-like columns too, which this
        baseline does not convert) and
        ``"categorical"`` (every other column), each list in column order.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm._baseline import column_kinds
    >>> X = pd.DataFrame({"tags": [["a", "b"], None], "price": [1.5, None], "city": ["Oslo", "Rome"]})
    >>> column_kinds(X)
    {'categorical': ['city'], 'numeric': ['price'], 'multivalue': ['tags']}
    """
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    # The same detection as FieldEncoder's "auto" mode, so both see the same kinds.
    kinds = field_kinds([X.iloc[:, j] for j in range(X.shape[1])], list(X.columns), "auto", "auto")
    return {
        kind: [name for name, k in zip(X.columns, kinds, strict=True) if k == kind]
        for kind in (CATEGORICAL, NUMERIC, MULTIVALUE)
    }


def cell_elements(cell):
    """The elements of a multi-valued cell as strings; ``[]`` for a missing cell.

    This is the ``analyzer`` of the multi-hot ``CountVectorizer``. It is a
    module-level function so that the pipeline can be pickled.

    Parameters
    ----------
    cell : list, tuple, set, 1-D ndarray, scalar or None
        One cell. A scalar that is not missing counts as a one-element list.

    Returns
    -------
    elements : list of str
    """
    if _is_multivalue_cell(cell):
        return [str(element) for element in cell]
    if _is_missing(cell):
        return []
    return [str(cell)]


def _fill_missing_cells(column):
    """Replace missing cells of a multi-valued column by empty tuples.

    ``CountVectorizer`` rejects ``np.nan`` as a document before its analyzer
    sees it, so missing cells are emptied first.
    """
    values = column.to_numpy() if isinstance(column, (pd.Series, pd.DataFrame)) else np.asarray(column)
    values = values.ravel()
    filled = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        filled[i] = () if not _is_multivalue_cell(value) and _is_missing(value) else value
    return filled


def cells_as_strings(X):
    """Cast every cell to ``str``, a missing cell to ``"<missing>"``.

    Makes a column of mixed types (numbers and strings, ``None`` and
    ``NaN``) acceptable to ``OneHotEncoder``. A module-level function so that
    the pipeline can be pickled.

    Parameters
    ----------
    X : pandas.DataFrame or array-like of shape (n_samples, n_columns)
        Categorical columns.

    Returns
    -------
    strings : pandas.DataFrame of object dtype
        The same shape, columns and index.
    """
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    return frame.astype(object).map(_cell_as_string).astype(object)


def _cell_as_string(value):
    """One categorical cell as a string."""
    return MISSING_STRING if _is_missing(value) else str(value)


def _selectors(X, names):
    """How ColumnTransformer should pick ``names``: by name when every name is a string, else by position."""
    if all(isinstance(name, str) for name in X.columns):
        return list(names)
    return [X.columns.get_loc(name) for name in names]


def linear_baseline(X, *, random_state=None):
    """An unfitted logistic regression on one-hot, multi-hot and scaled numeric columns of ``X``.

    The columns are sorted by :func:`column_kinds`:

    * categorical columns are cast to strings (a missing cell becomes
      ``"<missing>"``) and one-hot encoded, ignoring categories unseen in
      training;
    * numeric columns get their median for a missing value, a missing
      indicator (for the columns with missing values in training) and are
      standardized;
    * each multi-valued column is multi-hot encoded, one 0/1 column per
      element seen in training.

    Parameters
    ----------
    X : pandas.DataFrame
        A table like the one the pipeline will be fitted on; only its columns
        and their kinds are read.
    random_state : int, RandomState instance or None, default=None
        Passed to ``LogisticRegression``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted: a ``ColumnTransformer`` named ``"encode"`` followed by
        ``LogisticRegression(max_iter=1000)`` named ``"classify"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm._baseline import linear_baseline
    >>> X = pd.DataFrame(
    ...     {"tags": [["a"], ["a", "b"], None, ["b"]], "price": [1.0, None, 3.0, 4.0], "city": list("xyxz")}
    ... )
    >>> model = linear_baseline(X).fit(X, [0, 1, 0, 1])
    >>> model.predict_proba(X).shape
    (4, 2)
    """
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    kinds = column_kinds(X)
    transformers = []
    if kinds["categorical"]:
        categorical = make_pipeline(
            FunctionTransformer(cells_as_strings, feature_names_out="one-to-one"),
            OneHotEncoder(handle_unknown="ignore"),
        )
        transformers.append(("categorical", categorical, _selectors(X, kinds["categorical"])))
    if kinds["numeric"]:
        numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        transformers.append(("numeric", numeric, _selectors(X, kinds["numeric"])))
    for name, selector in zip(kinds["multivalue"], _selectors(X, kinds["multivalue"]), strict=True):
        multi_hot = make_pipeline(
            FunctionTransformer(_fill_missing_cells, feature_names_out="one-to-one"),
            CountVectorizer(analyzer=cell_elements, binary=True, token_pattern=None),
        )
        # A scalar selector hands the vectorizer a 1-D column of documents.
        transformers.append((f"multivalue_{name}", multi_hot, selector))
    encode = ColumnTransformer(transformers, remainder="drop")
    return Pipeline(
        [("encode", encode), ("classify", LogisticRegression(max_iter=1000, random_state=random_state))]
    )
