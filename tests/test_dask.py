"""The Dask estimators on a LocalCluster of two single-threaded worker processes."""

import pickle
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

import skdeepfm._averaging as averaging
from skdeepfm import DeepFMClassifier, DeepFMRegressor, FieldEncoder
from skdeepfm._batch_norm import batch_norm_layers
from skdeepfm.datasets import make_ad_clicks

from .conftest import assert_mean_of_epochs, assert_mean_of_two, assert_statistics_of_all_rows

dask = pytest.importorskip("dask", reason="the Dask estimators need the 'dask' extra")
distributed = pytest.importorskip("distributed", reason="the Dask estimators need the 'dask' extra")
dd = pytest.importorskip("dask.dataframe")

from skdeepfm.dask import DaskDeepFMClassifier, DaskDeepFMRegressor  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _workers(client):
    return sorted(client.scheduler_info()["workers"])


def _placed(client, frame, cuts, workers):
    """``frame`` cut at ``cuts`` into partitions held by ``workers`` (one per partition)."""
    pieces = np.split(np.arange(len(frame)), cuts)
    # hash=False: each placement holds its own keys. Equal data scattered
    # again under its content hash can race with the release of the earlier
    # copy (the scheduler then cancels it as "lost dependencies").
    futures = [
        client.scatter(frame.iloc[rows], workers=[worker], hash=False)
        for rows, worker in zip(pieces, workers, strict=True)
    ]
    # List cells stay lists only without dask's conversion of objects to strings.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)


def _data(n_samples, random_state=0):
    X, y = make_ad_clicks(n_samples=n_samples, random_state=random_state)
    return X.reset_index(drop=True), pd.Series(np.asarray(y), name="y")


@pytest.fixture(scope="module")
def fitted(client):
    # 10,000 training rows: on 4,000 the test AUC of one seed moves by 0.02
    # from seed to seed, locally and on the cluster alike.
    X, y = _data(14_000)
    X_train, y_train = X.iloc[:10_000], y.iloc[:10_000]
    w = _workers(client)
    Xd = _placed(client, X_train, [5000], w)
    yd = _placed(client, y_train, [5000], w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = DaskDeepFMClassifier(random_state=0).fit(Xd, yd)
        local = DeepFMClassifier(random_state=0).fit(X_train, y_train)
    return model, local, X.iloc[10_000:], y.iloc[10_000:], Xd


@pytest.mark.parametrize(
    "exchange",
    [
        # 150 table rows: summed whole (a rank looks up 700 a step) ...
        dict(batch_size=200),
        # ... or as the rows each rank touched (140 lookups a step) ...
        dict(batch_size=40),
        # ... and the lazy optimiser of tables many times the rows a step looks up.
        dict(batch_size=40, hash_buckets=1000),
    ],
    ids=["whole-tables", "touched-rows", "lazy-tables"],
)
def test_deterministic_fit_equals_one_process(client, exchange):
    # No dropout, no shuffle, no BatchNorm: the global batches of two ranks of
    # 1,000 rows (half a batch each a step) are those of one process on the
    # rows interleaved in blocks of half a batch.
    X, y = _data(2000)
    params = dict(
        dropout=0.0,
        batch_norm=False,
        shuffle=False,
        early_stopping=False,
        max_iter=3,
        n_iter_no_change=10,
        mixed_precision=False,
        random_state=0,
        **exchange,
    )
    half = exchange["batch_size"] // 2
    w = _workers(client)
    order = np.concatenate(
        [
            np.r_[half * b : half * (b + 1), 1000 + half * b : 1000 + half * (b + 1)]
            for b in range(1000 // half)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = DaskDeepFMClassifier(**params).fit(
            _placed(client, X, [1000], w), _placed(client, y, [1000], w)
        )
        local = DeepFMClassifier(**params).fit(X.iloc[order], y.iloc[order])
    assert model.n_ranks_ == 2
    np.testing.assert_allclose(model.loss_curve_, local.loss_curve_, rtol=1e-6)
    mine, theirs = model.network_.state_dict(), local.network_.state_dict()
    assert mine.keys() == theirs.keys()
    for name in mine:
        np.testing.assert_allclose(mine[name].numpy(), theirs[name].numpy(), atol=1e-5, err_msg=name)


def test_default_parameters_reach_the_local_auc(fitted):
    model, local, X_test, y_test, _ = fitted
    assert model.n_ranks_ == 2
    proba = model.predict_proba(X_test)  # in-memory rows: a plain array, as locally
    auc = roc_auc_score(y_test, proba[:, 1])
    local_auc = roc_auc_score(y_test, local.predict_proba(X_test)[:, 1])
    assert auc > local_auc - 0.01
    # Early stopping scored every rank's validation rows, then calibrated on
    # them, and the ranks refit on all their rows for the chosen epoch.
    # (The best epoch may be the last: an improvement below tol still counts as none.)
    best_epoch = int(np.argmax(model.validation_scores_)) + 1
    assert model.n_iter_ == best_epoch <= len(model.validation_scores_) < model.max_iter
    assert len(model.loss_curve_) == len(model.validation_scores_)
    assert float(model.network_.logit_scale[0]) != 1.0


def test_dask_predictions_equal_to_local(client, fitted):
    model, _, _, _, Xd = fitted
    proba = model.predict_proba(Xd)
    assert isinstance(proba, dask.array.Array)
    local = model.to_local()
    assert type(local) is DeepFMClassifier
    X = Xd.compute()
    np.testing.assert_array_equal(proba.compute(), local.predict_proba(X))
    np.testing.assert_array_equal(model.predict(Xd).compute(), local.predict(X))
    np.testing.assert_array_equal(model.decision_function(Xd).compute(), local.decision_function(X))


def _set_average_max_epochs(client, value):
    """Set the refit's averaging bound on every worker (training runs there)."""
    client.run(exec, f"import skdeepfm._averaging as module; module.AVERAGE_MAX_EPOCHS = {value}")


def test_a_short_refit_is_the_mean_of_the_ranks_two_networks(client):
    X, y = _data(3000)
    w = _workers(client)
    Xd, yd = _placed(client, X, [1500], w), _placed(client, y, [1500], w)
    params = dict(embedding_dim=4, hidden_layer_sizes=(16,), early_stopping=True, max_iter=3)
    params.update(batch_size=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        chosen = DaskDeepFMClassifier(**params, refit=False).fit(Xd, yd)
        averaged = DaskDeepFMClassifier(**params).fit(Xd, yd)
        _set_average_max_epochs(client, 0)
        try:
            refit_alone = DaskDeepFMClassifier(**params).fit(Xd, yd)
        finally:
            _set_average_max_epochs(client, averaging.AVERAGE_MAX_EPOCHS)
    assert averaged.n_iter_ == refit_alone.n_iter_ <= 3
    assert_mean_of_two(averaged, chosen, refit_alone)
    # The ranks agreed on the statistics of the averaged weights over all their rows.
    assert_statistics_of_all_rows(averaged, X, var_rtol=2e-3)
    layer = batch_norm_layers(averaged.network_)[0]
    assert not torch.allclose(layer.running_var, batch_norm_layers(refit_alone.network_)[0].running_var)


# Run on the workers: TailMean.add also saves the weights at the end of each epoch to a file.
_RECORD_TAIL = """
from skdeepfm._weight_mean import TailMean
if not hasattr(TailMean, "unrecorded_add"):
    TailMean.unrecorded_add = TailMean.add
def add(self, epoch, _folder={folder!r}):
    import os, torch
    weights = [p.detach().clone() for p in self.network.parameters()]
    torch.save(weights, os.path.join(_folder, f"{{os.getpid()}}-{{self.network_id}}-{{epoch}}.pt"))
    self.unrecorded_add(epoch)
TailMean.add = add
TailMean.network_id = property(lambda self: id(self.network))
"""


def test_a_long_refit_ends_with_the_mean_of_its_last_epochs_on_every_rank(client, tmp_path):
    X, y = _data(3000)
    w = _workers(client)
    Xd, yd = _placed(client, X, [1500], w), _placed(client, y, [1500], w)
    params = dict(embedding_dim=4, hidden_layer_sizes=(16,), early_stopping=True, max_iter=30)
    params.update(n_iter_no_change=3, learning_rate_decay=0.5, batch_size=270, random_state=0)
    client.run(exec, _RECORD_TAIL.format(folder=str(tmp_path)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = DaskDeepFMClassifier(**params).fit(Xd, yd)
    finally:
        client.run(exec, "from skdeepfm._weight_mean import TailMean; TailMean.add = TailMean.unrecorded_add")
    best = int(np.argmax(model.validation_scores_)) + 1
    assert model.n_iter_ == best > averaging.AVERAGE_MAX_EPOCHS
    # Each rank's refit network recorded its epochs 1..best (its selection run more).
    runs = {}
    for path in tmp_path.glob("*.pt"):
        pid, network, epoch = path.stem.split("-")
        runs.setdefault((pid, network), {})[int(epoch)] = torch.load(path)
    refits = [epochs for epochs in runs.values() if len(epochs) == best]
    assert len(refits) == 2  # one per rank
    for epochs in refits:
        n_last = min(best // 2, averaging.TAIL_MAX_EPOCHS)
        assert_mean_of_epochs(model, [epochs[e] for e in range(best - n_last + 1, best + 1)])
    assert_statistics_of_all_rows(model, X, var_rtol=2e-3)


def test_pickles_without_client_and_clones(client, fitted):
    model = fitted[0]
    model.client = client
    try:
        restored = pickle.loads(pickle.dumps(model))
    finally:
        model.client = None
    assert restored.client is None
    X = fitted[4].compute().head(50)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert clone(model).get_params() == model.get_params()


def test_uneven_and_one_sided_placement(client):
    X, y = _data(1500)
    a, b = _workers(client)
    params = dict(hidden_layer_sizes=(16,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # 150 rows on one worker, 1,350 on the other, and an empty partition.
        uneven = DaskDeepFMClassifier(**params).fit(
            _placed(client, X, [150, 150], [a, b, b]), _placed(client, y, [150, 150], [a, b, b])
        )
        one_sided = DaskDeepFMRegressor(**params).fit(
            _placed(client, X, [700], [b, b]), _placed(client, y.astype(float), [700], [b, b])
        )
    assert uneven.n_ranks_ == 2
    assert uneven.n_iter_ == 2
    assert one_sided.n_ranks_ == 1
    assert type(one_sided.to_local()) is DeepFMRegressor
    assert np.isfinite(one_sided.predict(X.head(20))).all()


def _assert_same_encoder(fitted, expected):
    for name in ("field_kinds_", "field_dims_", "n_infrequent_categories_", "numeric_center_"):
        np.testing.assert_array_equal(getattr(fitted, name), getattr(expected, name), err_msg=name)
    np.testing.assert_allclose(fitted.numeric_scale_, expected.numeric_scale_, rtol=1e-12)
    for mine, theirs in zip(fitted.categories_, expected.categories_, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(fitted.code_counts_, expected.code_counts_, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_encoder_learned_from_the_workers_equals_one_fit_on_all_rows(client):
    # Categorical, numeric (with missing values) and list fields, infrequent
    # categories, on uneven blocks; then a column whose kind the blocks see
    # differently (floats on one worker, strings on the other).
    X, y = _data(1200)
    X.loc[::7, "hour"] = np.nan
    X["mixed"] = pd.Series([0.5, 1.5] * 300 + ["a", "b"] * 300, dtype=object)
    a, b = _workers(client)
    params = dict(hidden_layer_sizes=(4,), max_iter=1, min_frequency=3, random_state=0)
    for columns in (list(X.columns[:-1]), list(X.columns)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DaskDeepFMClassifier(**params).fit(
                _placed(client, X[columns], [600], [a, b]), _placed(client, y, [600], [a, b])
            )
            expected = FieldEncoder(min_frequency=3).fit(X[columns])
        _assert_same_encoder(model.encoder_, expected)


def test_no_rows_is_a_clear_error(client):
    X, y = _data(200)
    w = _workers(client)
    with pytest.raises(ValueError, match="got no rows: every partition of X is empty"):
        DaskDeepFMClassifier().fit(
            _placed(client, X.iloc[:0], [], w[:1]), _placed(client, y.iloc[:0], [], w[:1])
        )


def test_list_fields_as_text_are_refused(client):
    X = pd.DataFrame({"tags": ["['a', 'b']", "['c']"] * 50, "ad": ["x", "y"] * 50})
    y = pd.Series([0, 1] * 50)
    w = _workers(client)
    with pytest.raises(ValueError, match="Column 'tags' holds the text of lists"):
        DaskDeepFMClassifier().fit(_placed(client, X, [], w[:1]), _placed(client, y, [], w[:1]))


def _inject_failure():
    from skdeepfm import _distributed

    original = _distributed.GlooGroup.all_reduce
    calls = []

    def failing(self, tensor):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("injected failure of a rank")
        return original(self, tensor)

    failing.original = original
    _distributed.GlooGroup.all_reduce = failing


def _remove_failure():
    from skdeepfm import _distributed

    _distributed.GlooGroup.all_reduce = _distributed.GlooGroup.all_reduce.original


def test_a_failing_rank_raises_its_error_promptly(client):
    X, y = _data(1000)
    w = _workers(client)
    client.run(_inject_failure, workers=[w[1]])
    try:
        started = time.perf_counter()
        with pytest.raises(RuntimeError, match="injected failure of a rank"):
            DaskDeepFMClassifier(hidden_layer_sizes=(8,), max_iter=3).fit(
                _placed(client, X, [500], w), _placed(client, y, [500], w)
            )
        assert time.perf_counter() - started < 30
    finally:
        client.run(_remove_failure, workers=[w[1]])
    # The other rank was released: the cluster trains again at once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = DaskDeepFMClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(
            _placed(client, X, [500], w), _placed(client, y, [500], w)
        )
    assert model.n_ranks_ == 2


def test_continuing_is_refused_with_the_local_way(client):
    X, y = _data(200)
    w = _workers(client)
    Xd, yd = _placed(client, X, [], w[:1]), _placed(client, y, [], w[:1])
    assert not hasattr(DaskDeepFMClassifier(), "partial_fit")
    with pytest.raises(
        AttributeError,
        match=r"DaskDeepFMClassifier has no partial_fit; use to_local\(\) for a DeepFMClassifier",
    ):
        DaskDeepFMClassifier().partial_fit(Xd, yd, classes=[0, 1])
    with pytest.raises(ValueError, match=r"does not continue training yet \(warm_start=True\)"):
        DaskDeepFMRegressor(warm_start=True).fit(Xd, yd.astype(float))
