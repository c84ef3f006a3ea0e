import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from skdeepfm import DeepFMClassifier, FieldEncoder
from skdeepfm._fields import MISSING_INDEX, flatten_cells
from skdeepfm.datasets import make_ad_clicks


@pytest.fixture(scope="module")
def clicks():
    return make_ad_clicks(n_samples=400, random_state=0)


def test_polars_frames_are_read_column_by_column(clicks):
    X, _ = clicks
    from_pandas = FieldEncoder().fit(X)
    from_polars = FieldEncoder().fit(pl.from_pandas(X))
    assert from_polars.field_kinds_.tolist() == from_pandas.field_kinds_.tolist()
    assert from_polars.field_kinds_[list(X.columns).index("hour")] == "numeric"
    assert from_polars.feature_names_in_.tolist() == list(X.columns)
    np.testing.assert_array_equal(from_polars.field_dims_, from_pandas.field_dims_)
    encoded_polars = from_polars.transform(pl.from_pandas(X))
    encoded_pandas = from_pandas.transform(X)
    assert [np.asarray(c).tolist() for c in encoded_polars.ravel()] == [
        np.asarray(c).tolist() for c in encoded_pandas.ravel()
    ]


def test_polars_nullable_integers_stay_categorical():
    X = pl.DataFrame({"user": [1, None, 3, 1], "price": [1.5, None, 2.5, 3.0]})
    encoder = FieldEncoder().fit(X)
    assert encoder.field_kinds_.tolist() == ["categorical", "numeric"]
    assert encoder.transform(X)[:, 0].tolist() == [3, MISSING_INDEX, 4, 3]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_classifier_fits_and_predicts_polars_as_pandas(clicks):
    X, y = clicks
    params = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0, early_stopping=False)
    from_pandas = DeepFMClassifier(**params).fit(X, y)
    from_polars = DeepFMClassifier(**params).fit(pl.from_pandas(X), y)
    np.testing.assert_allclose(
        from_polars.predict_proba(pl.from_pandas(X)), from_pandas.predict_proba(X), rtol=1e-6
    )
    with pytest.raises(ValueError, match="feature names"):
        from_polars.predict_proba(pl.from_pandas(X[X.columns[::-1]]))


def test_parquet_list_columns_read_by_pyarrow_are_multivalued(clicks, tmp_path):
    X, _ = clicks
    path = tmp_path / "clicks.parquet"
    X.to_parquet(path)
    arrow_X = pd.read_parquet(path, dtype_backend="pyarrow")
    assert isinstance(arrow_X["interests"].dtype, pd.ArrowDtype)
    from_arrow = FieldEncoder().fit(arrow_X)
    from_objects = FieldEncoder().fit(X)
    j = list(X.columns).index("interests")
    assert from_arrow.field_kinds_.tolist() == from_objects.field_kinds_.tolist()
    assert from_arrow.categories_[j].tolist() == from_objects.categories_[j].tolist()
    codes_arrow = from_arrow.transform(arrow_X)[:, j]
    codes_objects = from_objects.transform(X)[:, j]
    assert [c.tolist() for c in codes_arrow] == [c.tolist() for c in codes_objects]


@pytest.mark.parametrize(
    "arrow_type",
    [pa.list_(pa.string()), pa.large_list(pa.large_string()), pa.list_(pa.int64())],
)
def test_arrow_lists_flatten_as_python_lists_do(arrow_type):
    is_int = pa.types.is_integer(arrow_type.value_type)
    cells = [[1, 2], None, [], [3]] if is_int else [["a", "b"], None, [], ["c", None]]
    flat, lengths = flatten_cells(pd.array(cells, dtype=pd.ArrowDtype(arrow_type)))
    expected_flat, expected_lengths = flatten_cells(np.array(cells, dtype=object))
    assert lengths.tolist() == expected_lengths.tolist() == [2, 1, 0, 2 if not is_int else 1]
    assert pd.isna(np.asarray(flat, dtype=object)).tolist() == pd.isna(expected_flat).tolist()
    assert [v for v in np.asarray(flat, dtype=object) if not pd.isna(v)] == [
        v for v in expected_flat if not pd.isna(v)
    ]


def test_fixed_size_lists_and_polars_lists_are_multivalued():
    fixed = pd.Series(pd.array([["a", "b"], ["b", "c"]], dtype=pd.ArrowDtype(pa.list_(pa.string(), 2))))
    encoder = FieldEncoder().fit(pd.DataFrame({"pair": fixed}))
    assert encoder.field_kinds_.tolist() == ["multivalue"]
    assert encoder.categories_[0].tolist() == ["a", "b", "c"]
    polars = FieldEncoder().fit(pl.DataFrame({"tags": [["x"], ["y", "x"], None]}))
    assert polars.field_kinds_.tolist() == ["multivalue"]
    assert polars.code_counts_[0].tolist() == [0, 1, 0, 2, 1]


def test_pyarrow_tables_are_read_column_by_column():
    table = pa.table({"city": ["Oslo", "Rome", None], "price": [1.5, 2.5, None]})
    encoder = FieldEncoder().fit(table)
    assert encoder.field_kinds_.tolist() == ["categorical", "numeric"]
    assert encoder.feature_names_in_.tolist() == ["city", "price"]
