"""Training on data that does not fit in memory: CSV chunks, Parquet batches, Dask."""

import tracemalloc

import dask.dataframe as dd
import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dask import distributed
from dask_ml.wrappers import Incremental
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from skdeepfm import DeepFMClassifier, DeepFMRegressor

from .conftest import make_interaction_data

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(embedding_dim=4, hidden_layer_sizes=(32,), random_state=0, device="cpu")
CLASSES = ["click", "skip"]


@pytest.fixture(scope="module")
def click_log(tmp_path_factory):
    """A CSV and a Parquet file of the same 60,000 rows."""
    X, y = make_interaction_data(60_000, seed=3)
    table = X.assign(label=y)
    directory = tmp_path_factory.mktemp("log")
    csv, parquet = directory / "clicks.csv", directory / "clicks.parquet"
    table.to_csv(csv, index=False)
    table.to_parquet(parquet, row_group_size=5_000)
    return csv, parquet, X, y


def test_partial_fit_over_csv_chunks_keeps_memory_bounded_by_the_chunk(click_log):
    csv, _, X, y = click_log
    clf = DeepFMClassifier(**SMALL, hash_buckets=64)
    dtypes = {"user": str, "ad": str, "noise": "int64", "label": str}
    chunks = pd.read_csv(csv, chunksize=2_000, dtype=dtypes)
    # The first call imports what training needs; memory is measured after it.
    first = next(chunks)
    clf.partial_fit(first.drop(columns="label"), first["label"], classes=CLASSES)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        peaks = []
        for chunk in chunks:
            tracemalloc.reset_peak()
            clf.partial_fit(chunk.drop(columns="label"), chunk["label"])
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    whole = pd.read_csv(csv, dtype=dtypes)
    # Nothing accumulates from chunk to chunk, and no call needs memory of the
    # order of the whole table.
    assert max(peaks[-10:]) < 1.5 * max(peaks[:10]) + 100_000
    assert max(peaks) < whole.memory_usage(deep=True).sum() / 2
    assert clf.n_iter_ == 30
    assert clf.score(X, y) > 0.97
    assert len(whole) == len(X)


def test_partial_fit_over_parquet_record_batches(click_log):
    _, parquet, X, y = click_log
    clf = DeepFMClassifier(**SMALL)
    for batch in pq.ParquetFile(parquet).iter_batches(batch_size=4_000):
        chunk = pa.Table.from_batches([batch]).to_pandas()
        clf.partial_fit(chunk.drop(columns="label"), chunk["label"], classes=CLASSES)
    assert clf.n_iter_ == 15
    np.testing.assert_array_equal(clf.feature_names_in_, ["user", "ad", "noise"])
    assert clf.score(X, y) > 0.97


def test_dask_incremental_and_dask_backed_grid_search():
    X, y = make_interaction_data(4_000, seed=4)
    cluster = distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    )
    with cluster, distributed.Client(cluster):
        X_dask = dd.from_pandas(X, npartitions=8)
        y_dask = dd.from_pandas(pd.Series(y, name="label"), npartitions=8)
        incremental = Incremental(DeepFMClassifier(**SMALL), scoring="accuracy")
        for _ in range(3):
            incremental.partial_fit(X_dask, y_dask, classes=CLASSES)
        assert incremental.estimator_.n_iter_ == 3 * 8
        assert incremental.score(X_dask, y_dask) > 0.97
        # The streaming guide's ROC AUC: dask-ml's score knows no "roc_auc".
        proba = incremental.predict_proba(X_dask).compute()
        assert roc_auc_score(y_dask.compute() == CLASSES[1], proba[:, 1]) > 0.97

        search = GridSearchCV(
            DeepFMRegressor(hidden_layer_sizes=(16,), max_iter=3, random_state=0, device="cpu"),
            {"embedding_dim": [2, 4]},
            cv=2,
        )
        with joblib.parallel_backend("dask"):
            search.fit(X[:600], (y[:600] == "click").astype(float))
        assert search.best_params_["embedding_dim"] in (2, 4)
        assert len(search.cv_results_["mean_test_score"]) == 2
