"""What DeepFMClassifier and DeepFMRegressor share: parameters, fit, partial_fit.

The estimator API only: the subclasses say how targets become training
targets and how a validation score is computed; the encoder, the network and
the training loop live in their own modules.
"""

from __future__ import annotations

import copy
import inspect
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d
from tqdm.auto import tqdm

from ._averaging import average_weights, averages_refit, refit_run_config, refresh_statistics
from ._calibration import fit_logit_calibration
from ._encoder import FieldEncoder
from ._few_rows import few_rows_encoding
from ._fields import validate_fields
from ._hashing import check_hash_parameters
from ._network import DeepFMNetwork
from ._training import (
    TrainingConfig,
    network_device,
    predict_logits,
    resolve_device,
    seeded_generator,
    train,
)
from ._warnings import warn

#: Parameters passed on to the FieldEncoder, with the same meaning.
ENCODER_PARAMETERS = (
    "numeric_features",
    "multivalue_features",
    "min_frequency",
    "max_categories",
    "hash_buckets",
)

#: Above this many rows, early_stopping="auto" holds out a validation set.
AUTO_EARLY_STOPPING_MIN_SAMPLES = 1_000


#: Optimiser steps per epoch that an automatic batch gives tables below
#: ``SMALL_TABLE_STEPS * 1024`` rows.
SMALL_TABLE_STEPS = 20

#: Training rows per 1024 rows of an automatic batch above
#: ``SMALL_TABLE_STEPS * 1024`` rows: at least 40 steps per epoch, which
#: batches of 4096 keep from 163,840 rows on.
ROWS_PER_AUTO_BATCH_KIB = 40_960


def auto_batch_size(n_samples):
    """Batch size for ``batch_size="auto"``.

    ``clip(n_samples // 20, 32, 1024)`` up to 20,480 rows: small data gets
    about twenty optimiser steps per epoch (ten cost the quality panel's
    Criteo and Avazu samples 0.005-0.013 AUC: early stopping keeps their
    first epoch). Above, ``1024 * clip(n_samples // 40960, 1, 4)``: 1024 rows
    up to 81,919 rows, growing to the published DeepFM recipe's 4096 from
    163,840 rows on, so that an epoch keeps at least 40 steps (fewer stopped
    training early on frappe's 52k rows).
    """
    if n_samples < SMALL_TABLE_STEPS * 1024:
        return int(min(1024, max(32, n_samples // SMALL_TABLE_STEPS)))
    return 1024 * int(min(4, max(1, n_samples // ROWS_PER_AUTO_BATCH_KIB)))


def _restore_on_failure(method):
    """Run ``method``; on any exception put the estimator's state back as it was.

    A failed ``fit`` or ``partial_fit`` must not leave a half-trained model.
    A shallow copy is enough: training never changes the fitted objects in
    place (a continued network is trained as a copy).
    """

    def wrapper(self, *args, **kwargs):
        previous = self.__dict__.copy()
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    wrapper.__name__ = method.__name__
    wrapper.__qualname__ = method.__qualname__
    wrapper.__doc__ = method.__doc__
    return wrapper


class BaseDeepFM(BaseEstimator):
    """Base class of the DeepFM estimators; not for direct use.

    Subclasses define ``__init__`` (all parameters), ``_prepare_targets``,
    ``_n_outputs``, ``_loss``, ``_validation_score`` and ``_stratify``.
    """

    _parameter_constraints: dict = {
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "embedding_alpha": [Interval(Real, 0, None, closed="left")],
        "fm_scale": [Interval(Real, 0, None, closed="left")],
        "dnn_gradient_scale": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_decay": [Interval(Real, 0, 1, closed="right")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "refit": ["boolean"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "device": [str],
        "mixed_precision": ["boolean", StrOptions({"auto"})],
        "cuda_graphs": ["boolean"],
        **{name: FieldEncoder._parameter_constraints[name] for name in ENCODER_PARAMETERS},
        "multivalue_pooling": [StrOptions({"mean", "sum", "max"})],
    }

    # -- the two ways in ---------------------------------------------------

    @_restore_on_failure
    def _fit_public(self, X, y, sample_weight):
        continuing = self.warm_start and self._is_fitted()
        return self._train_call(X, y, sample_weight, incremental=False, continuing=continuing)

    @_restore_on_failure
    def _partial_fit_public(self, X, y, sample_weight, classes=None):
        return self._train_call(
            X, y, sample_weight, incremental=True, continuing=self._is_fitted(), classes=classes
        )

    def _is_fitted(self):
        return hasattr(self, "network_")

    # -- one training call -------------------------------------------------

    def _train_call(self, X, y, sample_weight, *, incremental, continuing, classes=None):
        """Encode, (re)build what is needed and train; ``self`` is changed only at the end."""
        hidden, device, columns, targets, target_state, sample_weight = self._validated_input(
            X, y, sample_weight, incremental=incremental, continuing=continuing, classes=classes
        )

        if continuing:
            rng = copy.deepcopy(self._random_state)
            encoder = self.encoder_
            encoded = encoder._encode_columns(columns)
        else:
            rng = check_random_state(self.random_state)
            encoder = self._make_encoder()
            encoded = encoder._fit_columns(columns)

        split_rng, split_state = self._validation_rng(rng, continuing)
        train_idx, validation_idx = (
            (None, None) if incremental else self._split_validation(targets, split_rng)
        )
        if validation_idx is None:
            train_rows, validation = (encoded, targets, sample_weight), None
        else:
            train_rows = (encoded.take(train_idx), targets[train_idx], sample_weight[train_idx])
            validation = (
                encoded.take(validation_idx),
                targets[validation_idx],
                sample_weight[validation_idx],
            )
        seed = int(rng.randint(np.iinfo(np.int32).max - 1))

        if continuing:
            network = self.network_
            optimizer_state = self._optimizer_state
        else:
            # partial_fit's first chunk need not show the stream's balance.
            bias_from = () if incremental else train_rows[1:]
            network = self._start_network(encoder, hidden, target_state, seed, *bias_from)
            optimizer_state = None
        config = self._training_config(len(train_rows[0]), incremental, seed)
        if continuing:
            # Train a copy: the live network keeps serving (and stays as it
            # was if this call fails) until the new weights are complete.
            network = copy.deepcopy(network)
            # A calibration belongs to the weights it was fitted to.
            network.set_logit_calibration()
        history = train(
            network,
            *train_rows,
            config,
            device=device,
            validation=validation,
            scorer=self._validation_score,
            optimizer_state=optimizer_state,
        )
        self._warn_after_training(history, incremental)
        if validation is not None and self._calibrates():
            encoded_val, targets_val, weights_val = validation
            logits_val = predict_logits(network, encoded_val, device)
            network.set_logit_calibration(*fit_logit_calibration(logits_val, targets_val, weights_val))
        if validation is not None and self.refit and not continuing and not history.interrupted:
            all_rows = (encoded, targets, sample_weight)
            network, history = self._refit(
                encoder, hidden, target_state, seed, all_rows, network, history, device
            )

        # Everything succeeded: publish the new state.
        self._publish_fit(encoder, network, history, target_state, rng, continuing, validation is not None)
        if not incremental:
            self._validation_random_state = split_state
        return self

    def _publish_fit(self, encoder, network, history, target_state, rng, continuing, validated):
        """Set the fitted state after a training call that succeeded (also the distributed fit's)."""
        if not continuing:
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._set_target_state(target_state)
        self.encoder_ = encoder
        self.field_dims_ = encoder.field_dims_
        self.network_ = network
        self._optimizer_state = history.optimizer_state
        self._random_state = rng
        self.n_iter_ += history.n_iter
        self.loss_curve_ = [*self.loss_curve_, *history.loss_curve]
        if validated:
            self.validation_scores_ = [*(self.validation_scores_ or []), *history.validation_scores]
            self.best_validation_score_ = history.best_validation_score

    def _validated_input(self, X, y, sample_weight, *, incremental, continuing, classes=None):
        """The checked parameters and data of a training call.

        Returns ``(hidden_layer_sizes, device, columns, targets, target_state,
        sample_weight)``; sets ``n_features_in_`` (and ``feature_names_in_``)
        unless ``continuing``. Also used by the distributed estimators.
        """
        name = type(self).__name__
        hidden = self._check_hidden_layer_sizes()
        check_hash_parameters(name, self.hash_buckets, self.min_frequency, self.max_categories)
        device = resolve_device(self.device)
        if continuing:
            self._check_same_architecture(hidden)
            self._check_same_encoder()
        columns = validate_fields(self, X, reset=not continuing)
        targets, target_state, sample_weight = self._validated_targets(
            y, sample_weight, len(columns[0]), incremental=incremental, continuing=continuing, classes=classes
        )
        return hidden, device, columns, targets, target_state, sample_weight

    def _validated_targets(self, y, sample_weight, n_samples, *, incremental, continuing, classes=None):
        """The checked targets of ``n_samples`` rows: ``(targets, target_state, sample_weight)``."""
        name = type(self).__name__
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"X has {n_samples} rows, y has {len(y)}."
            )
        targets, target_state = self._prepare_targets(
            y, incremental=incremental, continuing=continuing, classes=classes
        )
        try:
            sample_weight = _check_sample_weight(
                sample_weight, np.broadcast_to(0, n_samples), dtype=np.float64, ensure_non_negative=True
            )
        except (TypeError, ValueError) as exc:
            if "sample_weight" in str(exc) or "Sample weights" in str(exc):
                raise
            raise type(exc)(
                f"sample_weight must be numbers, one non-negative weight per row of X: {exc}"
            ) from exc
        sample_weight = sample_weight * self._target_weights(y, targets, target_state, incremental)
        if not np.any(sample_weight > 0):
            raise ValueError(
                f"The sample weights of {name} sum to zero: at least one row needs a positive weight."
            )
        if self.batch_norm and self.batch_size == 1:
            raise ValueError(
                f"{name} cannot train with batch_size=1 and batch_norm=True: BatchNorm needs at least "
                "2 rows per batch. Use a larger batch_size or batch_norm=False."
            )
        if n_samples < 2 and self.batch_norm:
            raise ValueError(
                f"{name} got n_samples=1; with batch_norm=True each call to fit or partial_fit needs "
                "at least 2 rows (BatchNorm cannot train on one row)."
            )
        return targets, target_state, sample_weight

    def _start_network(self, encoder, hidden, target_state, seed, targets=None, sample_weight=None):
        """A new network whose output bias starts from ``targets`` (None: at zero)."""
        network = self._new_network(encoder, hidden, target_state, seed)
        bias = None if targets is None else self._initial_bias(targets, sample_weight, target_state)
        if bias is not None:
            with torch.no_grad():
                network.bias.copy_(torch.as_tensor(bias, dtype=network.bias.dtype))
        return network

    def _refit(self, encoder, hidden, target_state, seed, rows, selected, selection, device):
        """Train a new network on all ``rows`` for the epochs the validation rows chose.

        ``selected`` is the network early stopping kept, ``selection`` its
        history. The new network starts from the same weights, trains for
        the best epoch's number of epochs, its learning rate decayed after
        the same epochs, is averaged with ``selected`` when that trained
        briefly and over its own last epochs otherwise (:mod:`._averaging`),
        and takes ``selected``'s calibration (its rows are all trained on
        now). Returns ``(network, history)``: the new ones, the history
        holding ``selection``'s validation scores; ``selected`` and
        ``selection`` if the refit was interrupted. The history has the new
        network's ``n_iter`` and the selection run's curves.
        """
        config = refit_run_config(selection, self._training_config(len(rows[0]), False, seed))
        if self.verbose:
            tqdm.write(f"Refit on all {len(rows[0])} rows for {config.max_iter} epoch(s)")
        network = self._start_network(encoder, hidden, target_state, seed, *rows[1:])
        history = train(network, *rows, config, device=device)
        if history.interrupted:
            warn(
                f"{type(self).__name__}'s refit on all rows was interrupted (KeyboardInterrupt); the "
                "model keeps the network that early stopping chose.",
                UserWarning,
            )
            return selected, selection
        if averages_refit(selection):
            average_weights(network, selected)
            refresh_statistics(network, rows[0], device, seed)
        network.set_logit_calibration(selected.logit_scale.clone(), selected.logit_shift.clone())
        history.keep_curves_of(selection)
        return network, history

    def _new_network(self, encoder, hidden, target_state, seed):
        """A new network for ``encoder``'s fields, its weights drawn from ``seed``."""
        return DeepFMNetwork(
            encoder.field_dims_,
            self.embedding_dim,
            hidden,
            self.dropout,
            self.batch_norm,
            self._n_outputs(target_state),
            bag_mode=self.multivalue_pooling,
            fm_scale=self.fm_scale,
            generator=seeded_generator(seed),
        )

    def _training_config(self, n_train, incremental, seed):
        """The TrainingConfig of a call on ``n_train`` training rows."""
        batch_size = auto_batch_size(n_train) if self.batch_size == "auto" else self.batch_size
        return TrainingConfig(
            batch_size=min(batch_size, n_train),
            learning_rate=self.learning_rate_init,
            max_iter=1 if incremental else self.max_iter,
            alpha=self.alpha,
            embedding_alpha=self.embedding_alpha,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            shuffle=self.shuffle,
            verbose=self.verbose,
            seed=seed,
            mixed_precision=self.mixed_precision,
            cuda_graphs=self.cuda_graphs,
            dnn_gradient_scale=self.dnn_gradient_scale,
            learning_rate_decay=self.learning_rate_decay,
            **self._config_extras(),
        )

    def _config_extras(self):
        """TrainingConfig fields set by the subclass (the loss)."""
        return {}

    def _make_encoder(self):
        encoder = FieldEncoder(**{name: getattr(self, name) for name in ENCODER_PARAMETERS})
        encoder.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            encoder.feature_names_in_ = self.feature_names_in_
        return encoder

    def _initial_bias(self, targets, sample_weight, target_state):
        """The network's starting bias for these training targets; None keeps zero."""
        return None

    def _calibrates(self):
        """Whether a fit with validation rows calibrates the trained logits on them."""
        return False

    def _target_weights(self, y, targets, target_state, incremental):
        """Per-row weight multipliers from the targets (class weights); 1 by default."""
        return 1.0

    def _warn_after_training(self, history, incremental):
        name = type(self).__name__
        if history.interrupted:
            warn(
                f"{name} training was interrupted (KeyboardInterrupt) after {history.n_iter} "
                "epoch(s); the model keeps the best weights so far.",
                UserWarning,
            )
        elif not history.converged and not incremental:
            warn(
                f"{name} stopped at max_iter={self.max_iter} epochs before converging; "
                "consider a larger max_iter.",
                ConvergenceWarning,
            )

    def _check_same_encoder(self):
        """warm_start and partial_fit keep the fitted encoder: its parameters must not change."""
        for name in ENCODER_PARAMETERS:
            now, fitted = getattr(self, name), getattr(self.encoder_, name)
            if not _same_parameter(now, fitted):
                raise ValueError(
                    f"{type(self).__name__} continues training with the fitted encoder (warm_start=True "
                    f"or partial_fit), but the '{name}' parameter changed from {fitted!r} to {now!r}. "
                    "Set warm_start=False (or start a new estimator) to learn the fields again."
                )

    def _check_hidden_layer_sizes(self):
        sizes = (
            list(np.ravel(self.hidden_layer_sizes))
            if np.ndim(self.hidden_layer_sizes)
            else [self.hidden_layer_sizes]
        )
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be a sequence of "
                f"positive ints. Got {self.hidden_layer_sizes!r} instead."
            )
        return tuple(int(s) for s in sizes)

    def _check_same_architecture(self, hidden):
        """warm_start and partial_fit continue the fitted network: its shape must not change."""
        config = self.network_.get_config()
        wanted = {
            "embedding_dim": (self.embedding_dim, config["embedding_dim"]),
            "hidden_layer_sizes": (list(hidden), config["hidden_layer_sizes"]),
            "batch_norm": (bool(self.batch_norm), config["batch_norm"]),
            "multivalue_pooling": (self.multivalue_pooling, config["bag_mode"]),
            "fm_scale": (float(self.fm_scale), config["fm_scale"]),
        }
        for name, (now, fitted) in wanted.items():
            if now != fitted:
                raise ValueError(
                    f"{type(self).__name__} continues training the fitted network (warm_start=True or "
                    f"partial_fit), but the '{name}' parameter changed from {fitted!r} to {now!r}. "
                    "Set warm_start=False (or start a new estimator) to train a new network."
                )

    def _validation_rng(self, rng, continuing):
        """(random state that draws the validation split, the one to keep for later fits).

        A fit draws its split from ``rng`` and keeps a copy of ``rng`` as it
        was: a warm-start fit of the same rows holds out the same rows (a new
        split would validate on rows the network trained on).
        """
        kept = getattr(self, "_validation_random_state", None) if continuing else None
        if kept is not None:
            return copy.deepcopy(kept), kept
        return rng, copy.deepcopy(rng)

    def _split_validation(self, targets, rng):
        """Training and held-out row indices; (None, None) without early stopping."""
        n_samples = len(targets)
        use = self.early_stopping
        if use == "auto":
            use = n_samples > AUTO_EARLY_STOPPING_MIN_SAMPLES
        if not use:
            return None, None
        n_validation = int(np.ceil(self.validation_fraction * n_samples))
        if n_validation < 2 or n_samples - n_validation < 2:
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} leaves "
                f"{n_validation} validation and {n_samples - n_validation} training rows of {n_samples}; "
                "both need at least 2. Use more data, another validation_fraction or early_stopping=False."
            )
        train_idx, val_idx = train_test_split(
            np.arange(n_samples),
            test_size=n_validation,
            stratify=self._stratify(targets, n_validation),
            random_state=rng,
        )
        return train_idx, val_idx

    # -- prediction ----------------------------------------------------------

    def _logits(self, X):
        # A few rows of a DataFrame (served requests) are encoded cell by
        # cell, to the same codes: the general path costs more than the network.
        encoded = few_rows_encoding(self, X)
        if encoded is None:
            check_is_fitted(self)
            columns = validate_fields(self, X, reset=False)
            encoded = self.encoder_._encode_columns(columns)
        return predict_logits(self.network_, encoded, network_device(self.network_))

    def field_interactions(self, X=None):
        """Mean absolute FM interaction between each pair of fields.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features) or None, default=None
            Rows to average over; None averages over the training vocabulary,
            each category weighted by its training frequency.

        Returns
        -------
        interactions : pandas.DataFrame of shape (n_fields, n_fields)
            Symmetric, indexed by the field names on both axes.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> interactions = clf.field_interactions()
        >>> interactions.shape, list(interactions.columns)
        ((2, 2), ['device', 'ad'])
        >>> clf.field_interactions(X.head(10)).shape
        (2, 2)
        """
        from ._insight import field_interactions

        return field_interactions(self, X)

    # -- pickling ------------------------------------------------------------

    def __setstate__(self, state):
        # A parameter added after the estimator was pickled takes its default,
        # as in skdeepfm.load (defaults of new parameters keep old behaviour).
        parameters = inspect.signature(type(self).__init__).parameters
        for name in self._get_param_names():
            state.setdefault(name, parameters[name].default)
        super().__setstate__(state)

    def __getstate__(self):
        # A copy: on Python >= 3.11 the parent returns the instance's own dict.
        state = dict(super().__getstate__())
        network = state.get("network_")
        if network is not None and network_device(network).type != "cpu":
            # Pickle CPU copies, so that a model trained on a GPU loads (and
            # keeps training) on machines without one; the live model stays
            # where it is.
            state["network_"] = copy.deepcopy(network).to("cpu")
            state["_optimizer_state"] = _to_cpu(state.get("_optimizer_state"))
        return state

    def __sklearn_is_fitted__(self):
        # What check_is_fitted asks, without its scan of every attribute (a
        # tenth of a one-row feed). _publish_fit sets the fitted state in one
        # go, and a failed fit puts the previous state back.
        return "network_" in self.__dict__

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags


def _same_parameter(a, b):
    """Whether two values of an encoder parameter (str, None, number or array-like) are equal."""
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    if np.ndim(a) or np.ndim(b):
        return np.asarray(a).tolist() == np.asarray(b).tolist()
    return a == b


def _to_cpu(state):
    """A copy of a nested dict/list of tensors with every tensor on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: _to_cpu(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_to_cpu(value) for value in state)
    return state
