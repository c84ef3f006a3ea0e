"""DeepFMClassifier: the scikit-learn estimator API over the encoder and the network."""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from ._encoder import FieldEncoder
from ._fields import validate_fields
from ._network import DeepFMNetwork
from ._training import (
    TrainingConfig,
    network_device,
    predict_logits,
    resolve_device,
    seeded_generator,
    train,
)

#: Parameters passed on to the FieldEncoder, with the same meaning.
_ENCODER_PARAMETERS = ("numeric_features", "multivalue_features", "min_frequency", "max_categories")

#: Above this many rows, early_stopping="auto" holds out a validation set.
AUTO_EARLY_STOPPING_MIN_SAMPLES = 1_000


def auto_batch_size(n_samples):
    """Batch size for ``batch_size="auto"``: ``clip(n_samples // 10, 32, 1024)``.

    Small data gets about ten optimiser steps per epoch, large data batches
    of 1024 rows.
    """
    return int(min(1024, max(32, n_samples // 10)))


def _validation_score(y, logits, sample_weight):
    """ROC AUC for two classes; negative log-loss otherwise (higher is better)."""
    if logits.shape[1] == 1 and len(np.unique(y)) == 2:
        return roc_auc_score(y, logits[:, 0], sample_weight=sample_weight)
    if logits.shape[1] == 1:
        proba = expit(logits[:, 0])
        return -log_loss(y, np.column_stack([1 - proba, proba]), sample_weight=sample_weight, labels=[0, 1])
    proba = softmax(logits, axis=1)
    return -log_loss(y, proba, sample_weight=sample_weight, labels=np.arange(logits.shape[1]))


class DeepFMClassifier(ClassifierMixin, BaseEstimator):
    """DeepFM classifier for tables of categorical columns.

    Each column of ``X`` is a *field*: categorical (strings, integers,
    booleans, pandas ``category``), numeric (floats) or multi-valued (lists
    of categories); missing values are allowed. A :class:`FieldEncoder`
    learns each field's vocabulary or scaling; a :class:`DeepFMNetwork` -- a
    factorization machine and a DNN over shared field embeddings -- is
    trained on the encoding with Adam on mini-batches. Categories unseen
    during ``fit`` are accepted at prediction time and map to a reserved
    code that contributes nothing to the linear and FM terms (or, in a field
    with infrequent categories, to the trained infrequent code).

    Read more in the :ref:`User Guide <training>`.

    Parameters
    ----------
    embedding_dim : int, default=16
        Length of each field's embedding vector.
    hidden_layer_sizes : int or tuple of int, default=(400, 400, 400)
        Width of each hidden layer of the DNN. ``()`` leaves the DNN part a
        single linear layer over the concatenated embeddings.
    dropout : float, default=0.2
        Probability of zeroing a hidden unit during training.
    batch_norm : bool, default=True
        Whether to normalise each hidden layer's pre-activations (BatchNorm).
    alpha : float, default=1e-2
        L2 penalty on the DNN's weights (Adam's weight decay).
    embedding_alpha : float, default=1e-4
        L2 penalty on the embedding and first-order tables (Adam's weight
        decay on every row at every step, so that rarely seen categories
        shrink towards zero).
    batch_size : int or "auto", default="auto"
        Rows per optimiser step. "auto" is ``clip(n_samples // 10, 32, 1024)``.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    max_iter : int, default=100
        Maximum number of epochs (passes over the training rows).
    early_stopping : bool or "auto", default="auto"
        Whether to hold out ``validation_fraction`` of the rows, stop when
        their score stops improving and keep the best epoch's weights. "auto"
        enables it above 1,000 rows (without it, DeepFM overfits a few
        thousand rows within a few epochs). Without it, training stops when the
        training loss stops improving.
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping (stratified).
    n_iter_no_change : int, default=5
        Epochs without an improvement of more than ``tol`` before stopping.
    tol : float, default=1e-4
        Minimum improvement of the validation score (or training loss).
    shuffle : bool, default=True
        Whether to shuffle the rows at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initial weights, the shuffling and
        dropout. With an int, fits on CPU are repeatable bit for bit. torch's
        global random state is never used or changed.
    verbose : int, default=0
        0: silent; 1 or more: a progress bar per epoch and a summary line
        (loss, validation score, seconds).
    device : str, default="auto"
        "cpu", "cuda", "cuda:N", or "auto" (CUDA when available).
    numeric_features : "auto", None, or array-like, default="auto"
        Which fields are numeric (a learned vector scaled by the
        standardised value). "auto": the floating-point columns. See
        :class:`FieldEncoder`.
    multivalue_features : "auto", None, or array-like, default="auto"
        Which fields hold lists of categories (their vectors are pooled, see
        ``multivalue_pooling``).
        "auto": the object columns with list, tuple, set or array cells. See
        :class:`FieldEncoder`.
    min_frequency : int, float or None, default=None
        Categories seen fewer times in ``fit`` share one "infrequent" code
        (an int count or a fraction of the rows). See :class:`FieldEncoder`.
    max_categories : int or None, default=None
        At most this many codes per field for its categories, the infrequent
        one counted. See :class:`FieldEncoder`.
    multivalue_pooling : {"mean", "sum", "max"}, default="mean"
        How the element vectors of a multi-valued field are pooled into the
        field's vector (``embedding_bag``'s mode).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of fields seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the fields seen during ``fit``; defined only when ``X`` has
        feature names that are all strings.
    encoder_ : FieldEncoder
        The fitted encoder of the fields.
    field_dims_ : ndarray of shape (n_features_in_,)
        Number of codes of each field, reserved codes included.
    network_ : DeepFMNetwork
        The trained network, in eval mode. One output for two classes,
        ``n_classes`` otherwise.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss of each epoch (without the L2 penalty).
    validation_scores_ : list of float or None
        Validation score of each epoch with early stopping: ROC AUC for two
        classes, negative log-loss for more. None without early stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_``, whose epoch's weights were kept.
        None without early stopping.

    See Also
    --------
    FieldEncoder : The encoder of the raw fields.
    DeepFMNetwork : The torch module trained here.
    sklearn.neural_network.MLPClassifier : Shares the names of the training
        parameters.

    Notes
    -----
    Two classes are fitted with one logit and the binary cross-entropy, more
    with one logit per class and the cross-entropy (see
    :class:`DeepFMNetwork` for the FM term with several outputs).
    ``sample_weight`` multiplies each row's loss; weights are rescaled to
    mean one, so their scale does not change the step size.

    References
    ----------
    Guo, H., Tang, R., Ye, Y., Li, Z. and He, X. (2017). DeepFM: a
    factorization-machine based neural network for CTR prediction. IJCAI.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm import DeepFMClassifier
    >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone", "tv"] * 25,
    ...                   "ad": ["shoes", "games", "games", "shoes"] * 25})
    >>> y = ["click", "skip", "click", "skip"] * 25
    >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
    >>> clf.classes_
    array(['click', 'skip'], dtype='<U5')
    >>> clf.predict(X.head(2))
    array(['click', 'skip'], dtype='<U5')
    """

    _parameter_constraints: dict = {
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "embedding_alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
        **{name: FieldEncoder._parameter_constraints[name] for name in _ENCODER_PARAMETERS},
        "multivalue_pooling": [StrOptions({"mean", "sum", "max"})],
    }

    def __init__(
        self,
        *,
        embedding_dim=16,
        hidden_layer_sizes=(400, 400, 400),
        dropout=0.2,
        batch_norm=True,
        alpha=1e-2,
        embedding_alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=100,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        shuffle=True,
        random_state=None,
        verbose=0,
        device="auto",
        numeric_features="auto",
        multivalue_features="auto",
        min_frequency=None,
        max_categories=None,
        multivalue_pooling="mean",
    ):
        self.embedding_dim = embedding_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.alpha = alpha
        self.embedding_alpha = embedding_alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.numeric_features = numeric_features
        self.multivalue_features = multivalue_features
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.multivalue_pooling = multivalue_pooling

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Learn the fields' vocabularies and train the network.

        A failed call leaves an already fitted model as it was.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : array-like of shape (n_samples,)
            Class labels (any hashable: ints, strings, ...).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the loss; None for equal
            weights.

        Returns
        -------
        self : DeepFMClassifier
            The fitted classifier.
        """
        previous = self.__dict__.copy()
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    def _fit(self, X, y, sample_weight):
        hidden = self._check_hidden_layer_sizes()
        device = resolve_device(self.device)
        columns = validate_fields(self, X, reset=True)
        n_samples = len(columns[0])
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"X has {n_samples} rows, y has {len(y)}."
            )
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"DeepFMClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes.tolist()[0]!r}."
            )
        sample_weight = _check_sample_weight(
            sample_weight, columns[0], dtype=np.float64, ensure_non_negative=True
        )

        encoder = FieldEncoder(
            numeric_features=self.numeric_features,
            multivalue_features=self.multivalue_features,
            min_frequency=self.min_frequency,
            max_categories=self.max_categories,
        )
        encoder.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            encoder.feature_names_in_ = self.feature_names_in_
        encoded = encoder._fit_columns(columns)

        rng = check_random_state(self.random_state)
        train_idx, validation_idx = self._split_validation(n_samples, y_encoded, rng)
        if validation_idx is None:
            train_rows, validation = (encoded, y_encoded, sample_weight), None
        else:
            train_rows = (encoded.take(train_idx), y_encoded[train_idx], sample_weight[train_idx])
            validation = (
                encoded.take(validation_idx),
                y_encoded[validation_idx],
                sample_weight[validation_idx],
            )
        n_outputs = 1 if len(classes) == 2 else len(classes)
        seed = int(rng.randint(np.iinfo(np.int32).max - 1))
        generator = seeded_generator(seed)
        network = DeepFMNetwork(
            encoder.field_dims_,
            self.embedding_dim,
            hidden,
            self.dropout,
            self.batch_norm,
            n_outputs,
            bag_mode=self.multivalue_pooling,
            generator=generator,
        )
        n_train = len(train_rows[0])
        config = TrainingConfig(
            batch_size=auto_batch_size(n_train)
            if self.batch_size == "auto"
            else min(self.batch_size, n_train),
            learning_rate=self.learning_rate_init,
            max_iter=self.max_iter,
            alpha=self.alpha,
            embedding_alpha=self.embedding_alpha,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            shuffle=self.shuffle,
            verbose=self.verbose,
            seed=seed,
        )
        history = train(
            network,
            *train_rows,
            config,
            device=device,
            validation=validation,
            scorer=_validation_score,
        )
        if history.interrupted:
            warnings.warn(
                f"DeepFMClassifier training was interrupted (KeyboardInterrupt) after {history.n_iter} "
                "epoch(s); the model keeps the best weights so far.",
                UserWarning,
                stacklevel=4,
            )
        elif not history.converged:
            warnings.warn(
                f"DeepFMClassifier stopped at max_iter={self.max_iter} epochs before converging; "
                "consider a larger max_iter.",
                ConvergenceWarning,
                stacklevel=4,
            )

        self.classes_ = classes
        self.encoder_ = encoder
        self.field_dims_ = encoder.field_dims_
        self.network_ = network
        self.n_iter_ = history.n_iter
        self.loss_curve_ = history.loss_curve
        self.validation_scores_ = history.validation_scores if validation is not None else None
        self.best_validation_score_ = history.best_validation_score
        return self

    def _check_hidden_layer_sizes(self):
        sizes = (
            list(np.ravel(self.hidden_layer_sizes))
            if np.ndim(self.hidden_layer_sizes)
            else [self.hidden_layer_sizes]
        )
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(
                "The 'hidden_layer_sizes' parameter of DeepFMClassifier must be a sequence of positive ints. "
                f"Got {self.hidden_layer_sizes!r} instead."
            )
        return tuple(int(s) for s in sizes)

    def _split_validation(self, n_samples, y, rng):
        """Training and held-out row indices; (None, None) without early stopping."""
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
        counts = np.bincount(y)
        stratify = y if counts.min() >= 2 and n_validation >= len(counts) else None
        train_idx, val_idx = train_test_split(
            np.arange(n_samples), test_size=n_validation, stratify=stratify, random_state=rng
        )
        return train_idx, val_idx

    def _logits(self, X):
        check_is_fitted(self)
        columns = validate_fields(self, X, reset=False)
        encoded = self.encoder_._encode_columns(columns)
        return predict_logits(self.network_, encoded, network_device(self.network_))

    def decision_function(self, X):
        """Logits of the rows of ``X``.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories, with the fields seen during ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the log-odds of ``classes_[1]``; otherwise one
            logit per class.
        """
        logits = self._logits(X)
        return logits[:, 0] if logits.shape[1] == 1 else logits

    def predict_proba(self, X):
        """Probability of each class for the rows of ``X``.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories, with the fields seen during ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to one.
        """
        logits = self._logits(X)
        if logits.shape[1] == 1:
            positive = expit(logits[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(logits, axis=1)

    def predict_log_proba(self, X):
        """Log of the probability of each class for the rows of ``X``.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories, with the fields seen during ``fit``.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Computed from the logits without overflow.
        """
        logits = self._logits(X)
        if logits.shape[1] == 1:
            return np.column_stack([log_expit(-logits[:, 0]), log_expit(logits[:, 0])])
        return log_softmax(logits, axis=1)

    def predict(self, X):
        """Most probable class of each row of ``X``.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories, with the fields seen during ``fit``.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._logits(X)
        if logits.shape[1] == 1:
            return self.classes_[(logits[:, 0] > 0).astype(np.intp)]
        return self.classes_[np.argmax(logits, axis=1)]

    def field_interactions(self, X=None):
        """Mean absolute FM interaction between each pair of fields.

        See :func:`skdeepfm._insight.field_interactions`.
        """
        from ._insight import field_interactions

        return field_interactions(self, X)

    def __getstate__(self):
        # A copy: on Python >= 3.11 the parent returns the instance's own dict.
        state = dict(super().__getstate__())
        network = state.get("network_")
        if network is not None and network_device(network).type != "cpu":
            # Pickle a CPU copy, so that a model trained on a GPU loads on
            # machines without one; the live model stays where it is.
            state["network_"] = copy.deepcopy(network).to("cpu")
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.poor_score = False
        return tags
