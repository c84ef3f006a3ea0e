"""The panel's raw tables as LightGBM and CatBoost read them: categories, floats, multi-hot columns.

Both take ``kinds`` from ``skdeepfm._baseline.column_kinds``, so that every model of a benchmark
sees the same categorical, numeric and multi-valued columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skdeepfm._baseline import cell_elements, cells_as_strings


def multi_hot(column, elements):
    """One 0/1 column per element of ``elements``; elements not in it are ignored."""
    index = {element: j for j, element in enumerate(elements)}
    values = np.zeros((len(column), len(elements)), dtype=np.float32)
    for i, cell in enumerate(column):
        for element in cell_elements(cell):
            j = index.get(element)
            if j is not None:
                values[i, j] = 1.0
    names = [f"{column.name}={element}" for element in elements]
    return pd.DataFrame(values, columns=names, index=column.index)


def _floats(column):
    """A numeric column as float64, missing as NaN."""
    floats = column.to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(floats, index=column.index, name=column.name).to_frame()


def _tables(X_train, X_test, kinds, categorical):
    """Train and test tables: ``categorical(train, test)`` for each categorical column, floats, multi-hot."""
    train_parts, test_parts = [], []
    for name in X_train.columns:
        train_column, test_column = X_train[name], X_test[name]
        if name in kinds["multivalue"]:
            elements = sorted({element for cell in train_column for element in cell_elements(cell)})
            train_part, test_part = multi_hot(train_column, elements), multi_hot(test_column, elements)
        elif name in kinds["numeric"]:
            train_part, test_part = _floats(train_column), _floats(test_column)
        else:
            train_part, test_part = categorical(train_column, test_column)
        train_parts.append(train_part)
        test_parts.append(test_part)
    return pd.concat(train_parts, axis=1), pd.concat(test_parts, axis=1)


def _training_categories(train_column, test_column):
    """Both columns as pandas categories of the training values; a value unseen in training is missing."""
    categories = pd.Categorical(train_column).categories
    return tuple(
        pd.Series(
            pd.Categorical(column.where(column.isin(categories)), categories=categories),
            index=column.index,
            name=column.name,
        ).to_frame()
        for column in (train_column, test_column)
    )


def for_lightgbm(X_train, X_test, kinds):
    """Train and test tables for LightGBM: categories of the training values, floats, multi-hot columns."""
    return _tables(X_train, X_test, kinds, _training_categories)


def _strings(train_column, test_column):
    # CatBoost rejects NaN in a categorical feature: a missing cell becomes "<missing>".
    return cells_as_strings(train_column.to_frame()), cells_as_strings(test_column.to_frame())


def for_catboost(X_train, X_test, kinds):
    """Train and test tables for CatBoost, and the names of its ``cat_features``.

    Categorical columns are strings (a missing cell ``"<missing>"``; CatBoost handles a value
    unseen in training itself), numeric columns floats with NaN, multi-valued columns multi-hot.
    """
    train, test = _tables(X_train, X_test, kinds, _strings)
    return train, test, list(kinds["categorical"])
