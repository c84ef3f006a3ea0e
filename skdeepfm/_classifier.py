"""DeepFMClassifier: the scikit-learn estimator API over the encoder and the network."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from ._base import BaseDeepFM, auto_batch_size

__all__ = ["DeepFMClassifier", "auto_batch_size"]


def _validation_score(y, logits, sample_weight, scoring="loss"):
    """The early-stopping score of validation rows, higher is better.

    ``scoring="loss"``: minus the log-loss; ``"roc_auc"``: ROC AUC (one
    against the rest, macro-averaged, for more than two classes).
    ``sample_weight`` includes the class weights, so that the kept epoch is
    the best one under the weighted objective.
    """
    if logits.shape[1] == 1:
        proba = expit(logits[:, 0])
        proba = np.column_stack([1 - proba, proba])
    else:
        proba = softmax(logits, axis=1)
    labels = np.arange(proba.shape[1])
    if scoring == "roc_auc" and len(np.unique(y)) == proba.shape[1]:
        if proba.shape[1] == 2:
            return roc_auc_score(y, logits[:, 0], sample_weight=sample_weight)
        return roc_auc_score(y, proba, sample_weight=sample_weight, multi_class="ovr", labels=labels)
    # ROC AUC is undefined while a class is absent from the validation rows.
    return -log_loss(y, proba, sample_weight=sample_weight, labels=labels)


class DeepFMClassifier(ClassifierMixin, BaseDeepFM):
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
        L2 penalty on the embedding and first-order tables (Adam's weight
        decay on every row at every step, so that rarely seen categories
        shrink towards zero).
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
    learning_rate_decay : float, default=0.1
        Multiplier of the learning rate after every epoch that does not
        improve the validation score by more than ``tol`` (the training loss
        without early stopping), as in the published DeepFM recipe on Frappe.
        1 keeps the rate constant.
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
    refit : bool, default=True
        With early stopping, once the held-out rows have chosen the number
        of epochs, train the network again from its first weights on all
        rows, held-out ones included, for that many epochs (the learning
        rate decayed after the same epochs) and keep it; the calibration
        stays the one fitted on the held-out rows. When early stopping
        kept at most 4 epochs, the two networks (both short runs from the
        same weights) are averaged: the kept weights are their mean; after
        a longer run, the refit's weights are averaged over its last half
        of epochs (at most 6). A mean's BatchNorm statistics are computed
        again. More rows to learn from for up to twice the fit time. ``n_iter_`` is then the kept network's
        epochs, ``loss_curve_`` and ``validation_scores_`` the first run's.
        A ``warm_start`` fit that continues a fitted model does not refit,
        and holds out rows that the refitted network has trained on: set
        ``refit=False`` to continue training with early stopping.
    scoring : {"loss", "roc_auc"}, default="loss"
        The validation score that early stopping follows and that chooses the
        kept epoch: "loss", minus the log-loss (calibrated probabilities);
        "roc_auc", the ROC AUC (one against the rest, macro-averaged, for
        more than two classes; minus the log-loss while a class is absent
        from the validation rows). The ROC AUC ignores calibration: on small
        tables it keeps epochs whose probabilities are over-confident.
    calibrate : bool, default=True
        With early stopping, after training, fit a scale and a shift of the
        logits to the validation rows by log-loss (Platt scaling; for more
        than two classes a temperature, which keeps each row's most probable
        class) and apply them to every prediction. The ranking of rows, and
        so the ROC AUC, does not change with two classes; the probabilities
        lose the over-confidence of a network fitted to its training rows.
        ``partial_fit`` changes the weights and drops the calibration.
    n_iter_no_change : int, default=2
        Epochs without an improvement of more than ``tol`` before stopping
        (with the default ``learning_rate_decay``, the rate is then 1 % of
        ``learning_rate_init``).
    tol : float, default=1e-4
        Minimum improvement of the validation score (or training loss).
    shuffle : bool, default=True
        Whether to shuffle the rows at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initial weights, the shuffling and
        dropout. With an int, fits on CPU are repeatable bit for bit for the
        same torch thread count (see the User Guide). torch's
        global random state is never used or changed.
    verbose : int, default=0
        0: silent; 1 or more: a progress bar per epoch and a summary line
        (loss, validation score, seconds).
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
    hash_buckets : int or None, default=None
        None learns each categorical field's vocabulary in ``fit`` (or the
        first ``partial_fit``). An int hashes each category (with a hash
        that is stable across processes) onto that many codes per field, so
        that categories first seen in later ``partial_fit`` calls get trained
        codes of their own (shared with the categories they collide with).
        Cannot be combined with ``min_frequency`` or ``max_categories``. See
        :class:`FieldEncoder`.
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
        Number of epochs the kept network trained: with ``refit``, the
        epoch that early stopping chose; without, the epochs run.
    loss_curve_ : list of float
        Mean training loss of each epoch (without the L2 penalty); with
        ``refit``, of the run that early stopping followed.
    validation_scores_ : list of float or None
        Validation score of each epoch with early stopping (``scoring``:
        minus the log-loss, or the ROC AUC). None without early stopping.
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
        **BaseDeepFM._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "scoring": [StrOptions({"loss", "roc_auc"})],
        "calibrate": ["boolean"],
    }

    def __init__(
        self,
        *,
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
        learning_rate_decay=0.1,
        max_iter=100,
        early_stopping="auto",
        validation_fraction=0.1,
        refit=True,
        scoring="loss",
        calibrate=True,
        n_iter_no_change=2,
        tol=1e-4,
        shuffle=True,
        random_state=None,
        warm_start=False,
        class_weight=None,
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
        self.scoring = scoring
        self.calibrate = calibrate
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.class_weight = class_weight
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
        the current weights with the fitted encoder and classes, holding out
        the validation rows of the first fit; changed network or encoder
        parameters raise. A failed call leaves an already fitted model as it was.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : array-like of shape (n_samples,)
            Class labels (any hashable: ints, strings, ...).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the loss (multiplied by the
            ``class_weight`` of its class); None for equal weights.

        Returns
        -------
        self : DeepFMClassifier
            The fitted classifier.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> clf.n_features_in_, clf.classes_.tolist()
        (2, ['click', 'skip'])
        """
        return self._fit_public(X, y, sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one pass over the rows of ``X``, continuing the current model.

        The first call (on an unfitted model) learns the encoding from its
        rows: with the default ``hash_buckets=None`` the vocabulary of every
        field is fixed by that first call, and categories first seen in later
        calls map to the reserved unknown code; set ``hash_buckets`` to learn
        them. Numeric fields keep the scaling of the first call. Later calls
        (also after ``fit``) continue the weights and Adam's moments; there is
        no early stopping. A failed call leaves the model as it was.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Raw categories; each column is a field.
        y : array-like of shape (n_samples,)
            Class labels, all in ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every class of the whole stream. Required on the first call,
            optional (and checked) on later ones.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the loss.

        Returns
        -------
        self : DeepFMClassifier
            The updated classifier.

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0)
        >>> for start in range(0, 100, 25):
        ...     chunk = slice(start, start + 25)
        ...     clf = clf.partial_fit(X.iloc[chunk], y[chunk], classes=["click", "skip"])
        >>> clf.n_iter_
        4
        """
        return self._partial_fit_public(X, y, sample_weight, classes=classes)

    def _prepare_targets(self, y, *, incremental, continuing, classes):
        if pd.isna(y).any() if y.dtype == object else (y.dtype.kind == "f" and np.isnan(y).any()):
            raise ValueError(
                "Input y contains missing values (NaN or None); DeepFMClassifier needs a class label "
                "for every row."
            )
        check_classification_targets(y)
        if continuing:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()!r} is not the same as the classes of the "
                    f"fitted model, {self.classes_.tolist()!r}."
                )
            classes = self.classes_
        elif incremental:
            if classes is None:
                raise ValueError("The 'classes' argument is required on the first call to partial_fit.")
            classes = np.unique(np.asarray(classes))
        else:
            classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"DeepFMClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes.tolist()[0]!r}."
            )
        unknown = np.setdiff1d(y, classes)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()!r} that are not in classes {classes.tolist()!r}."
            )
        return np.searchsorted(classes, y), classes

    def _n_outputs(self, classes):
        return 1 if len(classes) == 2 else len(classes)

    def _set_target_state(self, classes):
        self.classes_ = classes

    def _target_weights(self, y, targets, classes, incremental):
        if self.class_weight is None:
            return 1.0
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: one chunk does not show the "
                "class balance of the stream. Pass a dict instead, e.g. from "
                "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, y=y)."
            )
        if isinstance(self.class_weight, str):
            present = np.unique(targets)
            weights = np.ones(len(classes))
            weights[present] = compute_class_weight("balanced", classes=classes[present], y=y)
        else:
            given = np.asarray(list(self.class_weight.values()), dtype=np.float64)
            if not (np.all(np.isfinite(given)) and np.all(given >= 0)):
                raise ValueError(
                    "The 'class_weight' parameter of DeepFMClassifier must map classes to finite, "
                    f"non-negative weights. Got {self.class_weight!r} instead."
                )
            weights = compute_class_weight(self.class_weight, classes=classes, y=y)
        return weights[targets]

    def _initial_bias(self, targets, sample_weight, classes):
        # The log-odds of the (weighted) class frequencies: the network starts
        # at the base rate instead of 1/2, as gradient boosting does.
        # Divided by the largest weight first: sums of weights near 1e308 overflow.
        weights = sample_weight / np.max(sample_weight)
        frequencies = np.bincount(targets, weights=weights, minlength=len(classes))
        frequencies = np.clip(frequencies / frequencies.sum(), 1e-6, 1 - 1e-6)
        if len(classes) == 2:
            return np.log(frequencies[1:] / frequencies[0])
        log_frequencies = np.log(frequencies)
        return log_frequencies - log_frequencies.mean()

    def _calibrates(self):
        return self.calibrate

    def _stratify(self, targets, n_validation):
        counts = np.bincount(targets)
        counts = counts[counts > 0]
        return targets if counts.min() >= 2 and n_validation >= len(counts) else None

    def _validation_score(self, y, logits, sample_weight):
        return _validation_score(y, logits, sample_weight, self.scoring)

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

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> clf.decision_function(X.head(3)).shape
        (3,)
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

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X.head(3))
        >>> proba.shape, bool(abs(proba.sum(axis=1) - 1).max() < 1e-12)
        ((3, 2), True)
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

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> clf.predict_log_proba(X.head(3)).shape
        (3, 2)
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

        Examples
        --------
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> X = pd.DataFrame({"device": ["phone", "tablet"] * 50, "ad": ["shoes", "games"] * 50})
        >>> y = ["click", "skip"] * 50
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> clf.predict(pd.DataFrame({"device": ["tablet"], "ad": ["games"]}))
        array(['skip'], dtype='<U5')
        """
        logits = self._logits(X)
        if logits.shape[1] == 1:
            return self.classes_[(logits[:, 0] > 0).astype(np.intp)]
        return self.classes_[np.argmax(logits, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.poor_score = False
        return tags
