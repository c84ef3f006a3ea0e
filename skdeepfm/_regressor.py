"""DeepFMRegressor: the scikit-learn regressor API over the encoder and the network."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _assert_all_finite

from ._base import BaseDeepFM

__all__ = ["DeepFMRegressor"]


class DeepFMRegressor(RegressorMixin, BaseDeepFM):
    """DeepFM regressor for tables of categorical columns (ratings, amounts).

    The same fields, encoder and network as :class:`DeepFMClassifier`, with
    one linear output trained on the standardised target: factorization
    machines were first made for ratings. Categories unseen during ``fit``
    are accepted at prediction time and map to a reserved code that
    contributes nothing to the linear and FM terms.

    Read more in the :ref:`User Guide <training>`.

    Parameters
    ----------
    loss : {"squared_error", "huber"}, default="squared_error"
        The training loss, on the standardised target: the squared error
        (the target centred on its mean, divided by its standard deviation),
        or the Huber loss, robust to outliers: the target is centred on its
        median and divided by its IQR / 1.349 (a robust standard deviation,
        which outliers do not inflate), the loss is quadratic within one
        such deviation and linear beyond, and early stopping scores minus
        the mean Huber loss of the validation rows instead of R².
    embedding_dim : int, default=16
        Length of each field's embedding vector.
    hidden_layer_sizes : int or tuple of int, default=(200, 200)
        Width of each hidden layer of the DNN. ``()`` leaves the DNN part a
        single linear layer over the concatenated embeddings.
    dropout : float, default=0.2
        Probability of zeroing a hidden unit during training.
    batch_norm : bool, default=True
        Whether to normalise each hidden layer's pre-activations (BatchNorm).
    alpha : float, default=1e-2
        L2 penalty on the DNN's weights (Adam's weight decay).
    embedding_alpha : float, default=3e-4
        L2 penalty on the embedding and first-order tables.
    fm_scale : float, default=1.0
        Multiplier of the FM second-order term, ``fm_scale * sum_{i<j}
        <v_i, v_j>`` (1: the paper's FM; 0 turns the term off).
    dnn_gradient_scale : float, default=0.01
        Multiplier of the gradient that the DNN passes back to the shared
        embeddings during training (the predictions' formula is unchanged).
        BatchNorm makes the DNN indifferent to the embeddings' scale, so its
        gradient grows as the embeddings shrink: at their initial scale
        (0.01) it is hundreds of times the FM term's, the DNN alone shapes
        the embeddings and the FM term stays near zero. 0.01 lets both parts
        shape them: measured, higher test AUC on frappe (0.9519 against
        0.9475) and a planted pair of fields ranked first by
        ``field_interactions`` for 5 seeds of 5 (against 4); slightly lower
        AUC (by 0.002 to 0.005) after one pass over very large
        vocabularies. 1 is plain backpropagation; 0 leaves the embeddings to
        the FM and first-order terms.
    batch_size : int or "auto", default="auto"
        Rows per optimiser step. "auto": ``clip(n_samples // 20, 32, 1024)``
        up to 20,480 rows, then ``1024 * clip(n_samples // 40960, 1, 4)``
        (4096 from 163,840 rows on, as the published DeepFM recipe; at least
        40 steps per epoch).
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    learning_rate_decay : float, default=1.0
        Multiplier of the learning rate after every epoch that does not
        improve the validation score by more than ``tol`` (the training loss
        without early stopping). 1 keeps the rate constant.
    max_iter : int, default=100
        Maximum number of epochs (passes over the training rows).
    early_stopping : bool or "auto", default="auto"
        Whether to hold out ``validation_fraction`` of the rows, stop when
        their R² (minus their Huber loss with ``loss="huber"``) stops
        improving and keep the best epoch's weights. "auto"
        enables it above 1,000 rows. Without it, training stops when the
        training loss stops improving.
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping.
    refit : bool, default=True
        With early stopping, once the held-out rows have chosen the number
        of epochs, train the network again from its first weights on all
        rows, held-out ones included, for that many epochs (the learning
        rate decayed after the same epochs) and keep it. When early stopping
        kept at most 4 epochs, the two networks (both short runs from the
        same weights) are averaged: the kept weights are their mean; after
        a longer run, the refit's weights are averaged over its last half
        of epochs (at most 6). A mean's BatchNorm statistics are computed
        again. More rows to learn from for up to twice the fit time. ``n_iter_`` is then the kept network's
        epochs, ``loss_curve_`` and ``validation_scores_`` the first run's.
        A ``warm_start`` fit that continues a fitted model does not refit,
        and holds out rows that the refitted network has trained on: set
        ``refit=False`` to continue training with early stopping.
    n_iter_no_change : int, default=5
        Epochs without an improvement of more than ``tol`` before stopping.
    tol : float, default=1e-4
        Minimum improvement of the validation score (or training loss).
    shuffle : bool, default=True
        Whether to shuffle the rows at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initial weights, the shuffling and
        dropout. With an int, fits on CPU are repeatable bit for bit for the
        same torch thread count (see the User Guide). torch's global random
        state is never used or changed.
    warm_start : bool, default=False
        With a fitted model, ``fit`` continues training the current network
        (and encoder) instead of starting anew, holding out the validation
        rows of the first fit; changed network or encoder parameters raise.
    verbose : int, default=0
        0: silent; 1 or more: a progress bar per epoch and a summary line.
    device : str, default="auto"
        "cpu", "cuda", "cuda:N", or "auto" (CUDA when available).
    mixed_precision : bool or "auto", default="auto"
        Whether training runs the network in bfloat16 (weights, loss and
        optimiser stay float32). "auto": where the hardware computes bfloat16
        natively (CPUs with AVX-512 BF16 or AMX, CUDA GPUs with bfloat16), about
        1.4x faster on such a CPU; measured on frappe, test AUC 0.0014-0.0018
        below float32 training (mean of four seeds). True where it is not supported raises a ValueError.
        Prediction always runs in float64.
    cuda_graphs : bool, default=True
        On a CUDA device, replay full-size training steps from a CUDA graph
        (one launch per step instead of a few hundred; about 5x faster on an
        H100). False launches every step from Python, e.g. to debug or
        profile a step. No effect on the CPU, or with multi-valued fields.
    numeric_features : "auto", None, or array-like, default="auto"
        Which fields are numeric. See :class:`FieldEncoder`.
    multivalue_features : "auto", None, or array-like, default="auto"
        Which fields hold lists of categories. See :class:`FieldEncoder`.
    min_frequency : int, float or None, default=None
        Categories seen fewer times in ``fit`` share one "infrequent" code.
        See :class:`FieldEncoder`.
    max_categories : int or None, default=None
        At most this many codes per field for its categories, the infrequent
        one counted. See :class:`FieldEncoder`.
    hash_buckets : int or None, default=None
        None learns each categorical field's vocabulary in ``fit`` (or the
        first ``partial_fit``). An int hashes each category (with a hash
        that is stable across processes) onto that many codes per field, so
        that categories first seen in later ``partial_fit`` calls get trained
        codes of their own (shared with the categories they collide with).
        Cannot be combined with ``min_frequency`` or ``max_categories``. See
        :class:`FieldEncoder`.
    multivalue_pooling : {"mean", "sum", "max"}, default="mean"
        How the element vectors of a multi-valued field are pooled.

    Attributes
    ----------
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
        The trained network (one output), in eval mode.
    target_mean_ : float
        Centre of the training target: its mean (its median with
        ``loss="huber"``); the network predicts the target minus it,
        divided by ``target_scale_``.
    target_scale_ : float
        Standard deviation of the training target (with ``loss="huber"``,
        its IQR / 1.349, or the standard deviation when the IQR is zero;
        1 when constant).
    n_iter_ : int
        Number of epochs the kept network trained: with ``refit``, the
        epoch that early stopping chose; without, the epochs run.
    loss_curve_ : list of float
        Mean training loss of each epoch, on the standardised target; with
        ``refit``, of the run that early stopping followed.
    validation_scores_ : list of float or None
        Validation R² of each epoch with early stopping (minus the mean
        Huber loss on the standardised target with ``loss="huber"``); None
        without.
    best_validation_score_ : float or None
        The best of ``validation_scores_``, whose epoch's weights were kept.

    See Also
    --------
    DeepFMClassifier : The classifier over the same fields.
    sklearn.neural_network.MLPRegressor : Shares the names of the training
        parameters.

    Notes
    -----
    With ``partial_fit``, the target's mean and scale are those of the
    first call's rows.

    References
    ----------
    Guo, H., Tang, R., Ye, Y., Li, Z. and He, X. (2017). DeepFM: a
    factorization-machine based neural network for CTR prediction. IJCAI.

    Rendle, S. (2010). Factorization machines. ICDM.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdeepfm import DeepFMRegressor
    >>> X = pd.DataFrame({"user": ["ann", "bob", "cy", "ann"] * 25,
    ...                   "movie": ["alien", "alien", "heat", "heat"] * 25})
    >>> y = [5.0, 1.0, 4.0, 2.0] * 25
    >>> reg = DeepFMRegressor(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
    >>> reg.predict(X.head(2)).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **BaseDeepFM._parameter_constraints,
        "loss": [StrOptions({"squared_error", "huber"})],
    }

    def __init__(
        self,
        *,
        loss="squared_error",
        embedding_dim=16,
        hidden_layer_sizes=(200, 200),
        dropout=0.2,
        batch_norm=True,
        alpha=1e-2,
        embedding_alpha=3e-4,
        fm_scale=1.0,
        dnn_gradient_scale=0.01,
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate_decay=1.0,
        max_iter=100,
        early_stopping="auto",
        validation_fraction=0.1,
        refit=True,
        n_iter_no_change=5,
        tol=1e-4,
        shuffle=True,
        random_state=None,
        warm_start=False,
        verbose=0,
        device="auto",
        mixed_precision="auto",
        cuda_graphs=True,
        numeric_features="auto",
        multivalue_features="auto",
        min_frequency=None,
        max_categories=None,
        hash_buckets=None,
        multivalue_pooling="mean",
    ):
        self.loss = loss
        self.embedding_dim = embedding_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.alpha = alpha
        self.embedding_alpha = embedding_alpha
        self.fm_scale = fm_scale
        self.dnn_gradient_scale = dnn_gradient_scale
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate_decay = learning_rate_decay
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.mixed_precision = mixed_precision
        self.cuda_graphs = cuda_graphs
        self.numeric_features = numeric_features
        self.multivalue_features = multivalue_features
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.hash_buckets = hash_buckets
        self.multivalue_pooling = multivalue_pooling

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Learn the fields' vocabularies and train the network.

        With ``warm_start=True`` and a fitted model, training continues from
        the current weights. A failed call leaves a fitted model as it was.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : array-like of shape (n_samples,)
            Target values (finite numbers).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the loss; None for equal
            weights.

        Returns
        -------
        self : DeepFMRegressor
            The fitted regressor.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMRegressor
        >>> X = pd.DataFrame({"user": ["ann", "bob"] * 50, "movie": ["alien", "heat"] * 50})
        >>> y = [5.0, 1.0] * 50
        >>> reg = DeepFMRegressor(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> reg.n_features_in_, reg.n_iter_ > 0
        (2, True)
        """
        return self._fit_public(X, y, sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one pass over the rows of ``X``, continuing the current model.

        The first call (on an unfitted model) learns the encoding and the
        target's scale from its rows; see
        :meth:`DeepFMClassifier.partial_fit` for what later calls keep.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : array-like of shape (n_samples,)
            Target values (finite numbers).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the loss.

        Returns
        -------
        self : DeepFMRegressor
            The updated regressor.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMRegressor
        >>> X = pd.DataFrame({"user": ["ann", "bob"] * 50, "movie": ["alien", "heat"] * 50})
        >>> y = [5.0, 1.0] * 50
        >>> reg = DeepFMRegressor(hidden_layer_sizes=(16,), random_state=0)
        >>> for start in range(0, 100, 50):
        ...     reg = reg.partial_fit(X.iloc[start:start + 50], y[start:start + 50])
        >>> reg.n_iter_
        2
        """
        return self._partial_fit_public(X, y, sample_weight)

    def predict(self, X):
        """Predicted target of each row of ``X``.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories, with the fields seen during ``fit``.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predictions in the units of the training target.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMRegressor
        >>> X = pd.DataFrame({"user": ["ann", "bob"] * 50, "movie": ["alien", "heat"] * 50})
        >>> y = [5.0, 1.0] * 50
        >>> reg = DeepFMRegressor(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> reg.predict(X.head(2)).shape
        (2,)
        """
        logits = self._logits(X)
        return logits[:, 0] * self.target_scale_ + self.target_mean_

    def _prepare_targets(self, y, *, incremental, continuing, classes):
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"DeepFMRegressor needs numeric targets y; got values of dtype {y.dtype}."
            ) from exc
        _assert_all_finite(y, input_name="y")
        if continuing:
            mean, scale = self.target_mean_, self.target_scale_
        else:
            mean, scale = self._target_centre_and_scale(y)
        return (y - mean) / scale, (mean, scale)

    def _target_centre_and_scale(self, y):
        """Mean and standard deviation; for the Huber loss the median and IQR / 1.349.

        A few gross outliers inflate the standard deviation (3 % at +/-500
        made a target of standard deviation 2 one of 80): the Huber loss's
        quadratic zone, one scale wide, would then hold every outlier. The
        IQR / 1.349 is the standard deviation of a normal distribution,
        unmoved by them; the standard deviation serves where the IQR is zero,
        1 where both are.
        """
        if self.loss == "huber":
            q25, centre, q75 = np.percentile(y, [25, 50, 75])
            spreads = ((q75 - q25) / 1.349, np.std(y))
        else:
            centre, spreads = np.mean(y), (np.std(y),)
        scale = next((float(s) for s in spreads if s > 0 and np.isfinite(s)), 1.0)
        return float(centre), scale

    def _n_outputs(self, target_state):
        return 1

    def _set_target_state(self, target_state):
        self.target_mean_, self.target_scale_ = target_state

    def _config_extras(self):
        return {"loss": self.loss}

    def _stratify(self, targets, n_validation):
        return None

    def _validation_score(self, y, output, sample_weight):
        if self.loss == "huber":
            # Minus the mean Huber loss on the standardised target: R² would be
            # dominated by the outliers that the loss is there to ignore.
            residual = np.abs(y - output[:, 0])
            losses = np.where(residual <= 1.0, 0.5 * residual**2, residual - 0.5)
            return -float(np.average(losses, weights=sample_weight))
        # R² is the same on the standardised target as in its own units.
        return r2_score(y, output[:, 0], sample_weight=sample_weight)
