"""DeepFM estimators trained data-parallel on a Dask cluster.

:class:`DaskDeepFMClassifier` and :class:`DaskDeepFMRegressor` take dask
DataFrames (or arrays) and train one network on the workers that hold
their partitions: each such worker becomes one rank of a
``torch.distributed`` gloo group and trains on its own rows, with the
gradients summed over the ranks at every step (see
``skdeepfm._distributed``). Dask places the work and gathers the result;
the gradient exchange does not go through Dask.

Needs the ``dask`` extra: ``pip install "skdeepfm[dask]"``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import inspect
import math
import os
import socket
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._averaging import average_weights, averages_refit, refit_run_config
from ._base import AUTO_EARLY_STOPPING_MIN_SAMPLES
from ._calibration import fit_logit_calibration
from ._classifier import DeepFMClassifier
from ._distributed import GlooGroup, agree_refreshed_statistics, train_rank, weights_digest
from ._fields import validate_fields
from ._hashing import check_hash_parameters
from ._regressor import DeepFMRegressor
from ._summaries import agreed_kinds, fit_from_summaries, summarize_columns

try:
    import dask
    import dask.array as da
    import dask.dataframe as dd
    from distributed import default_client, get_worker, wait
    from distributed.comm import get_address_host
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError('skdeepfm.dask needs dask and distributed: pip install "skdeepfm[dask]".') from exc

__all__ = ["DaskDeepFMClassifier", "DaskDeepFMRegressor", "PeerLostError"]

#: Seconds a rank waits for the others (to meet, or in any exchange) before
#: it raises: the bound on how long a fit hangs when a rank is lost.
COLLECTIVE_TIMEOUT = 120.0


def _free_port():
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _part(X, y, sample_weight):
    """One partition's rows as plain pandas / numpy objects."""
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X)) if np.ndim(X) == 2 else pd.DataFrame(np.asarray(X)[:, None])
    y = np.asarray(y).ravel()
    if len(y) != len(X):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples in a partition: "
            f"X has {len(X)} rows, y has {len(y)}. X and y need the same partitions."
        )
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).ravel()
    return X, y, sample_weight


def _refuse_list_text(X):
    """Refuse columns whose every value is the text of a list: list cells that dask made strings."""
    for name in X.columns:
        column = X[name]
        if column.dtype.kind not in "OUT" and not isinstance(column.dtype, pd.StringDtype):
            continue
        values = column.dropna()
        if len(values) and all(isinstance(v, str) and v[:1] == "[" and v[-1:] == "]" for v in values[:100]):
            raise ValueError(
                f"Column {name!r} holds the text of lists (e.g. {values.iloc[0]!r}), not lists: dask "
                "converts object columns to strings. Build the dask DataFrame under "
                'dask.config.set({"dataframe.convert-string": False}) to keep the lists.'
            )


#: glibc's ``mallopt`` parameters and its default mmap threshold (bytes).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_MMAP_THRESHOLD = 128 * 1024
#: Allocations below this many bytes stay on the heap while a rank trains.
_TRAINING_MMAP_THRESHOLD = 64 * 2**20


@contextlib.contextmanager
def _heap_for_training():
    """Keep the training's tensors on the heap while the block runs, under Dask's malloc setting.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set (65,536),
    which also stops glibc from raising its mmap threshold: every tensor over
    128 KiB is then mapped and unmapped afresh, and a training step pays the
    page faults (forward and backward measured 2.2 times slower). The block
    runs with both thresholds raised; afterwards they are set back and the
    free memory is returned to the system, as Dask's setting wants.
    """
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = None
    if trim is not None and trim.isdigit():
        with contextlib.suppress(OSError, AttributeError, TypeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            raised = libc.mallopt(_M_MMAP_THRESHOLD, _TRAINING_MMAP_THRESHOLD)
            if not (raised and libc.mallopt(_M_TRIM_THRESHOLD, _TRAINING_MMAP_THRESHOLD)):
                libc = None
    try:
        yield
    finally:
        if libc is not None:
            mmap = os.environ.get("MALLOC_MMAP_THRESHOLD_", "")
            libc.mallopt(_M_MMAP_THRESHOLD, int(mmap) if mmap.isdigit() else _DEFAULT_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, int(trim))
            libc.malloc_trim(0)


def _n_rows(part):
    return len(part[0])


def _head(part):
    """The first row of a partition's X: the columns' names and count."""
    return part[0].iloc[:1]


def _delayed_parts(collection, name):
    """One delayed object per partition (row block) of a dask DataFrame, Series or array."""
    if isinstance(collection, da.Array):
        if collection.ndim == 2:
            collection = collection.rechunk({1: collection.shape[1]})
        return list(np.ravel(collection.to_delayed()))
    if isinstance(collection, dd.DataFrame | dd.Series):
        return list(collection.to_delayed())
    raise TypeError(
        f"{name} must be a dask DataFrame, Series or array for a Dask estimator; got "
        f"{type(collection).__name__}. Use the estimator's to_local() for in-memory data."
    )


def _train_on_worker(*args):
    """One rank: encode this worker's partitions and train on them with the other ranks."""
    with _heap_for_training():
        return _train_here(*args)


def _block(parts, estimator):
    """A worker's partitions as one block of rows: (validated columns, y, sample_weight)."""
    X = pd.concat([part[0] for part in parts], ignore_index=True)
    _refuse_list_text(X)
    columns = validate_fields(estimator, X, reset=False)
    y = np.concatenate([part[1] for part in parts])
    weights = [part[2] for part in parts]
    return columns, y, None if weights[0] is None else np.concatenate(weights)


def _summarize_block(block, encoder):
    """What the client needs of a block: its fields' summaries, targets and weights."""
    columns, y, w = block
    return {**summarize_columns(encoder, columns), "y": y, "sample_weight": w}


def _train_here(block, skeleton, network, configs, class_weights, settings):
    rank, world_size, host, port, split_seed = settings
    config, refit_config = configs
    columns, y, w = block
    w = np.ones(len(y)) if w is None else w
    encoded = skeleton.encoder_._encode_columns(columns)
    code_counts = skeleton.encoder_._code_counts(encoded)
    targets, _ = skeleton._prepare_targets(y, incremental=False, continuing=True, classes=None)
    if class_weights is not None:
        w = w * class_weights[targets]
    validation = None
    all_rows = (encoded, targets, w)
    first_weights = copy.deepcopy(network) if refit_config is not None else None
    if skeleton.early_stopping:
        rng = np.random.RandomState(split_seed)
        train_idx, val_idx = skeleton._split_validation(targets, rng)
        validation = (encoded.take(val_idx), targets[val_idx], w[val_idx])
        encoded, targets, w = encoded.take(train_idx), targets[train_idx], w[train_idx]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, get_worker().state.nthreads))
    group = GlooGroup(host, port, rank, world_size, COLLECTIVE_TIMEOUT)
    try:
        history, gathered = train_rank(
            network,
            encoded,
            targets,
            w,
            config,
            group=group,
            validation=validation,
            scorer=skeleton._validation_score,
        )
        if refit_config is not None and validation is not None:
            network, history = _refit_rank(first_weights, all_rows, refit_config, network, history, group)
    except RuntimeError as exc:
        if any(sign in str(exc) for sign in ("closed by peer", "Timed out", "timed out", "Connection reset")):
            raise PeerLostError(f"Rank {rank} stopped: another rank left the training ({exc}).") from exc
        raise
    finally:
        # Leaving closes the connections: a rank still waiting on this one
        # gets an error at once instead of at the timeout.
        group.close()
        torch.set_num_threads(threads)
    digest = weights_digest(network)
    if rank:
        return digest, code_counts, None
    return digest, code_counts, (network, history, gathered)


def _refit_rank(network, rows, config, selected, selection, group):
    """The refit (``refit=True``) of a rank: ``network``, the first weights, trained on all its rows.

    For the epochs and decays of the ``selection`` run, and averaged with
    ``selected`` (the network it kept) after a short run, as a local fit's
    refit; the history keeps the selection run's curves.
    """
    history, _ = train_rank(network, *rows, refit_run_config(selection, config), group=group)
    if averages_refit(selection):
        average_weights(network, selected)
        agree_refreshed_statistics(network, rows[0], group, config.seed)
    history.keep_curves_of(selection)
    return network, history


class PeerLostError(RuntimeError):
    """A rank stopped because another rank left the group (or never came)."""


#: Seconds the client waits, after a rank fails, for the others' errors:
#: the error to raise is the one that is not a consequence of another.
ERROR_GRACE = 5.0


def _first_error(client, futures):
    """Wait for ``futures``; when one fails, cancel the others and raise the root error.

    A rank whose peer failed stops with a :class:`PeerLostError` at about the
    same time: the error of the rank that failed first in its own right wins.
    """
    pending = list(futures)
    while pending:
        done, pending = wait(pending, return_when="FIRST_COMPLETED")
        if any(future.status == "error" for future in done):
            with contextlib.suppress(TimeoutError):
                wait(list(pending), timeout=ERROR_GRACE)
            failed = [future for future in futures if future.status == "error"]
            root = [future for future in failed if not isinstance(future.exception(), PeerLostError)]
            try:
                (root or failed)[0].result()  # raises the rank's error
            finally:
                client.cancel(list(futures))


def _predict_part(model, method, X):
    return getattr(model, method)(X)


class _LocalOnly:
    """A method of the local estimators that the Dask ones do not have.

    Reading it raises ``AttributeError`` (``hasattr`` is False) that points
    to ``to_local()``.
    """

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        owner = owner if instance is None else type(instance)
        local = getattr(owner, "_local_class", None)
        raise AttributeError(
            f"{owner.__name__} has no {self.name}; use to_local() for a "
            f"{local.__name__ if local else 'local estimator'} that has one."
        )


class _DaskMixin:
    """Dask placement, rank setup and result collection shared by the Dask estimators."""

    _local_class: type

    def _get_client(self):
        return default_client() if self.client is None else self.client

    def _local_params(self):
        params = self.get_params(deep=False)
        params.pop("client")
        return params

    def fit(self, X, y, sample_weight=None):
        """Train one network on the workers that hold the partitions of ``X``.

        Parameters
        ----------
        X : dask DataFrame or dask array of shape (n_samples, n_features)
            The training rows; each worker trains on the partitions it holds.
        y : dask Series or dask array of shape (n_samples,)
            Targets, partitioned as ``X``.
        sample_weight : dask Series or dask array of shape (n_samples,), default=None
            Non-negative weights, partitioned as ``X``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        if self.warm_start:
            raise ValueError(
                f"{type(self).__name__} does not continue training yet (warm_start=True); "
                "continue with to_local() and partial_fit, or set warm_start=False."
            )
        client = self._get_client()
        x_parts = _delayed_parts(X, "X")
        y_parts = _delayed_parts(y, "y")
        w_parts = [None] * len(x_parts) if sample_weight is None else _delayed_parts(sample_weight, "w")
        if not len(x_parts) == len(y_parts) == len(w_parts):
            raise ValueError(
                f"X, y and sample_weight need the same partitions; got {len(x_parts)}, {len(y_parts)} "
                f"and {len(w_parts)} partitions."
            )
        parts = client.compute([dask.delayed(_part)(*p) for p in zip(x_parts, y_parts, w_parts, strict=True)])
        wait(parts)
        n_rows = client.gather(client.map(_n_rows, parts))
        parts = [part for part, n in zip(parts, n_rows, strict=True) if n]
        if not parts:
            raise ValueError(f"{type(self).__name__} got no rows: every partition of X is empty.")
        by_worker = {}
        for key, workers in client.who_has(parts).items():
            if not workers:
                raise ValueError("No worker of the cluster holds data: a partition of X has been lost.")
            by_worker.setdefault(sorted(workers)[0], []).append(key)
        futures = {part.key: part for part in parts}
        workers = sorted(by_worker)
        self._fit_on_ranks(client, parts, {w: [futures[k] for k in by_worker[w]] for w in workers})
        return self

    def _fit_on_ranks(self, client, parts, rank_parts):
        # The agreed inputs, from the whole data: the encoder (fitted on the
        # client from the workers' summaries of their rows), the classes or
        # the target's scale, the class weights, the initial bias and the
        # weights' seed. The rows stay on the workers, one block each.
        local = self._local_class(**self._local_params())
        hidden = local._check_hidden_layer_sizes()
        check_hash_parameters(type(self).__name__, self.hash_buckets, self.min_frequency, self.max_categories)
        validate_fields(local, client.submit(_head, parts[0]).result(), reset=True)
        encoder = local._make_encoder()
        blocks = {
            worker: client.submit(
                _block, futures, local, workers=[worker], allow_other_workers=False, pure=False
            )
            for worker, futures in rank_parts.items()
        }
        summaries = client.gather(
            [client.submit(_summarize_block, block, encoder, workers=[w]) for w, block in blocks.items()]
        )
        y_all = np.concatenate([s["y"] for s in summaries])
        weights = [s["sample_weight"] for s in summaries]
        w_all = None if weights[0] is None else np.concatenate(weights)
        targets, target_state, weights = local._validated_targets(
            y_all, w_all, len(y_all), incremental=False, continuing=False
        )
        if agreed_kinds(summaries) is not None:
            for message, category in dict.fromkeys(w for s in summaries for w in s["warnings"]):
                warnings.warn(message, category, stacklevel=3)
            fit_from_summaries(encoder, summaries)
        else:
            # A field whose kind the blocks see differently ("auto" kinds
            # from the values): the encoder is fitted on the columns.
            blocks_data = client.gather(list(blocks.values()))
            columns = [
                pd.concat([b[0][j] for b in blocks_data], ignore_index=True)
                for j in range(local.n_features_in_)
            ]
            encoder._fit_columns(columns)
            del blocks_data, columns
        rng = check_random_state(local.random_state)
        use_validation = local.early_stopping
        if use_validation == "auto":
            use_validation = len(targets) > AUTO_EARLY_STOPPING_MIN_SAMPLES
        seed = int(rng.randint(np.iinfo(np.int32).max - 1))
        network = local._start_network(encoder, hidden, target_state, seed, targets, weights)
        class_weights = self._class_weight_table(local, y_all, targets, target_state)
        n_train = len(targets) - (
            math.ceil(local.validation_fraction * len(targets)) if use_validation else 0
        )
        config = local._training_config(n_train, False, seed)
        # The refit's global batch is the one for all rows, as a local refit's.
        refit_config = None
        if use_validation and local.refit:
            refit_config = local._training_config(len(targets), False, seed)
        skeleton = local
        skeleton.early_stopping = bool(use_validation)
        skeleton.encoder_ = encoder
        skeleton._set_target_state(target_state)

        workers = list(rank_parts)
        host = get_address_host(workers[0])
        port = client.run(_free_port, workers=[workers[0]])[workers[0]]
        split_seeds = rng.randint(np.iinfo(np.int32).max - 1, size=len(workers))
        futures = [
            client.submit(
                _train_on_worker,
                blocks[worker],
                skeleton,
                network,
                (config, refit_config),
                class_weights,
                (rank, len(workers), host, port, int(split_seeds[rank])),
                workers=[worker],
                allow_other_workers=False,
                pure=False,
            )
            for rank, worker in enumerate(workers)
        ]
        _first_error(client, futures)
        results = client.gather(futures)
        if len({digest for digest, _, _ in results}) != 1:
            raise RuntimeError("The ranks ended with different weights; the distributed fit is invalid.")
        encoder.code_counts_ = [sum(counts) for counts in zip(*(c for _, c, _ in results), strict=True)]
        network, history, validation = results[0][2]
        self._warn_after_training(history, incremental=False)
        if validation is not None and self._calibrates():
            y_val, logits_val, w_val = validation
            network.set_logit_calibration(*fit_logit_calibration(logits_val, y_val, w_val))
        self.n_features_in_ = local.n_features_in_
        if hasattr(local, "feature_names_in_"):
            self.feature_names_in_ = local.feature_names_in_
        self._publish_fit(encoder, network, history, target_state, rng, False, validation is not None)
        self.n_ranks_ = len(workers)

    def _class_weight_table(self, local, y, targets, target_state):
        return None

    # Not supported: hasattr(estimator, "partial_fit") is False, as for a
    # scikit-learn method that is not available, so that tools which feed
    # partitions to partial_fit (dask-ml's Incremental) refuse it up front.
    partial_fit = _LocalOnly()

    def to_local(self):
        """The fitted model as a plain estimator of the local class, with identical predictions.

        Returns
        -------
        estimator : DeepFMClassifier or DeepFMRegressor
            A new estimator with this one's parameters (no client) and fitted state.
        """
        check_is_fitted(self)
        local = self._local_class(**self._local_params())
        params = set(self._get_param_names())
        local.__dict__.update({k: v for k, v in self.__dict__.items() if k not in params and k != "n_ranks_"})
        return local

    def _dask_predict(self, method, X, width, dtype):
        """``method`` of the local model on each partition of ``X``, as a dask array.

        The partitions' predictions start computing at once, each where its
        partition is; the dask array holds them there.
        """
        client = self._get_client()
        model = client.scatter(self.to_local(), broadcast=True, hash=False)
        parts = client.compute(
            [dask.delayed(_predict_part)(model, method, part) for part in _delayed_parts(X, "X")]
        )
        shape = (np.nan,) if width is None else (np.nan, width)
        return da.concatenate([da.from_delayed(part, shape=shape, dtype=dtype) for part in parts])

    def __getstate__(self):
        # The client stays behind: a fitted model pickles (and loads) without a cluster.
        state = super().__getstate__()
        state["client"] = None
        return state


def _with_client(local_class):
    """An ``__init__`` with ``local_class``'s parameters and ``client=None``."""
    signature = inspect.signature(local_class.__init__)
    client = inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, default=None)

    def __init__(self, *, client=None, **params):
        local_class.__init__(self, **params)
        self.client = client

    __init__.__signature__ = signature.replace(parameters=[*signature.parameters.values(), client])
    return __init__


class DaskDeepFMClassifier(_DaskMixin, DeepFMClassifier):
    """DeepFM classifier trained data-parallel on a Dask cluster.

    The parameters of :class:`~skdeepfm.DeepFMClassifier`, plus ``client``.
    Each worker that holds partitions of ``X`` trains on its own rows; the
    gradients are summed over the workers at every step, so every worker
    holds the same weights after every step, and the fitted network is one
    model. ``batch_size`` is the global batch, shared by the workers in
    proportion to their rows.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster; None takes the default client when ``fit`` is called.
    **params
        Every parameter of :class:`~skdeepfm.DeepFMClassifier`, with its meaning.

    Attributes
    ----------
    n_ranks_ : int
        The number of workers that trained.

    See Also
    --------
    DeepFMClassifier : The same model in one process; ``to_local()`` returns one.

    Notes
    -----
    See the user guide's "Training on a Dask cluster" for what agrees
    between the workers and what is not supported yet.
    """

    _local_class = DeepFMClassifier
    _parameter_constraints: dict = {**DeepFMClassifier._parameter_constraints, "client": "no_validation"}
    __init__ = _with_client(DeepFMClassifier)

    def _class_weight_table(self, local, y, targets, classes):
        multipliers = np.broadcast_to(local._target_weights(y, targets, classes, False), targets.shape)
        if local.class_weight is None:
            return None
        table = np.ones(len(classes))
        table[targets] = multipliers
        return table

    def predict_proba(self, X):
        """Probability of each class, a dask array of shape (n_samples, n_classes)."""
        if not _is_dask(X):
            return super().predict_proba(X)
        check_is_fitted(self)
        return self._dask_predict("predict_proba", X, len(self.classes_), np.float64)

    def predict(self, X):
        """Most probable class of each row, a dask array of shape (n_samples,)."""
        if not _is_dask(X):
            return super().predict(X)
        check_is_fitted(self)
        return self._dask_predict("predict", X, None, self.classes_.dtype)

    def decision_function(self, X):
        """Logits, a dask array of shape (n_samples,) or (n_samples, n_classes)."""
        if not _is_dask(X):
            return super().decision_function(X)
        check_is_fitted(self)
        width = None if len(self.classes_) == 2 else len(self.classes_)
        return self._dask_predict("decision_function", X, width, np.float64)


class DaskDeepFMRegressor(_DaskMixin, DeepFMRegressor):
    """DeepFM regressor trained data-parallel on a Dask cluster.

    The parameters of :class:`~skdeepfm.DeepFMRegressor`, plus ``client``;
    trained as :class:`DaskDeepFMClassifier` is.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster; None takes the default client when ``fit`` is called.
    **params
        Every parameter of :class:`~skdeepfm.DeepFMRegressor`, with its meaning.

    Attributes
    ----------
    n_ranks_ : int
        The number of workers that trained.

    See Also
    --------
    DeepFMRegressor : The same model in one process; ``to_local()`` returns one.
    """

    _local_class = DeepFMRegressor
    _parameter_constraints: dict = {**DeepFMRegressor._parameter_constraints, "client": "no_validation"}
    __init__ = _with_client(DeepFMRegressor)

    def predict(self, X):
        """Predicted targets, a dask array of shape (n_samples,)."""
        if not _is_dask(X):
            return super().predict(X)
        check_is_fitted(self)
        return self._dask_predict("predict", X, None, np.float64)


def _is_dask(X):
    return isinstance(X, da.Array | dd.DataFrame | dd.Series)
