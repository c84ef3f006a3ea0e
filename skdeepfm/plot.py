"""Plots of fitted DeepFM estimators (needs matplotlib: ``pip install "skdeepfm[plot]"``).

Two displays in the style of scikit-learn's (``from_estimator`` to compute
and plot, ``plot`` to draw again, ``ax_`` and ``figure_`` to adjust the
result), each with a one-call function that returns the Axes:

- :class:`TrainingCurveDisplay` / :func:`plot_learning_curve`: the training
  loss and the validation score of each epoch;
- :class:`FieldInteractionDisplay` / :func:`plot_field_interactions`: a
  heatmap of the mean absolute FM interaction between each pair of fields.

This module is not imported by ``import skdeepfm``; matplotlib is imported
only when something is drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "FieldInteractionDisplay",
    "TrainingCurveDisplay",
    "plot_field_interactions",
    "plot_learning_curve",
]


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'skdeepfm.plot needs matplotlib. Install it with: pip install "skdeepfm[plot]" '
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _axes(ax):
    """``ax``, or the Axes of a new figure when None (laid out so that no label is clipped)."""
    if ax is None:
        _, ax = _pyplot().subplots(layout="constrained")
    else:
        _pyplot()
    return ax


def _deepfm_of(estimator, X=None):
    """(the DeepFM estimator inside ``estimator``, ``X`` as it reaches it).

    A fitted ``Pipeline`` gives its last step, ``X`` transformed by the steps
    before it; a fitted search (``GridSearchCV``, ...) its ``best_estimator_``.
    """
    while isinstance(estimator, Pipeline | BaseSearchCV):
        check_is_fitted(estimator)
        if isinstance(estimator, Pipeline):
            X = None if X is None else estimator[:-1].transform(X)
            estimator = estimator[-1]
        elif hasattr(estimator, "best_estimator_"):
            estimator = estimator.best_estimator_
        else:
            raise ValueError(
                f"{type(estimator).__name__} was fitted with refit=False and keeps no best estimator "
                "to plot; fit it with refit=True."
            )
    if not hasattr(estimator, "field_interactions"):
        raise TypeError(
            "skdeepfm.plot needs a DeepFMClassifier or DeepFMRegressor, or a Pipeline or search "
            f"(GridSearchCV, ...) that ends in one; got {type(estimator).__name__}."
        )
    return estimator, X


def _validation_score_name(estimator):
    """What ``validation_scores_`` measures, for an axis label."""
    if is_classifier(estimator):
        return (
            "validation ROC AUC"
            if getattr(estimator, "scoring", "loss") == "roc_auc"
            else "validation -log-loss"
        )
    if type(estimator).__name__ == "DeepFMRegressor":
        return "validation R²"
    return "validation score"


class TrainingCurveDisplay:
    """Training loss and validation score of each epoch of a fitted estimator.

    The loss is drawn on the left y axis; the validation score, when there is
    one, on a second y axis on the right, with a dotted vertical line at the
    best epoch (whose weights the estimator kept). Create it with
    :meth:`from_estimator`; the constructor only stores its arguments.

    Parameters
    ----------
    loss_curve : sequence of float
        Mean training loss of each epoch.
    validation_scores : sequence of float or None, default=None
        Validation score of each epoch; None when there was no validation
        set (``early_stopping=False``, or small data with ``"auto"``).
    score_name : str, default="validation score"
        Label of the validation score's axis.
    estimator_name : str or None, default=None
        Title of the plot; None for no title.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The Axes of the loss.
    score_ax_ : matplotlib.axes.Axes or None
        The twin Axes of the validation score; None without scores.
    figure_ : matplotlib.figure.Figure
        The figure holding the Axes.
    loss_line_ : matplotlib.lines.Line2D
        The loss curve.
    score_line_ : matplotlib.lines.Line2D or None
        The validation score curve; None without scores.

    See Also
    --------
    plot_learning_curve : Plot the curves of an estimator in one call.
    sklearn.model_selection.LearningCurveDisplay : Scores against training set
        size (not epochs).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skdeepfm.plot import TrainingCurveDisplay
    >>> display = TrainingCurveDisplay(loss_curve=[0.6, 0.4, 0.35], validation_scores=[0.7, 0.8, 0.79])
    >>> display = display.plot()
    >>> display.ax_.get_xlabel()
    'epoch'
    >>> display.score_ax_.get_ylabel()
    'validation score'
    """

    def __init__(
        self, *, loss_curve, validation_scores=None, score_name="validation score", estimator_name=None
    ):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.score_name = score_name
        self.estimator_name = estimator_name

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw the loss on; None creates a figure.

        Returns
        -------
        display : TrainingCurveDisplay
            This display, with ``ax_``, ``figure_`` and the lines set.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from skdeepfm.plot import TrainingCurveDisplay
        >>> display = TrainingCurveDisplay(loss_curve=[0.6, 0.4], validation_scores=None).plot()
        >>> display.ax_.get_ylabel()
        'training loss'
        """
        ax = _axes(ax)
        epochs = np.arange(1, len(self.loss_curve) + 1)
        (self.loss_line_,) = ax.plot(epochs, self.loss_curve, color="C0", marker=".", label="training loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss", color="C0")
        ax.tick_params(axis="y", labelcolor="C0")
        handles = [self.loss_line_]
        self.score_ax_ = self.score_line_ = None
        if self.validation_scores is not None and len(self.validation_scores):
            scores = np.asarray(self.validation_scores, dtype=float)
            score_ax = ax.twinx()
            (self.score_line_,) = score_ax.plot(
                np.arange(1, len(scores) + 1), scores, color="C1", marker=".", label=self.score_name
            )
            best = int(np.nanargmax(scores)) + 1
            score_ax.axvline(best, color="C1", linestyle=":", linewidth=1)
            score_ax.set_ylabel(self.score_name, color="C1")
            score_ax.tick_params(axis="y", labelcolor="C1")
            handles.append(self.score_line_)
            self.score_ax_ = score_ax
        ax.legend(handles=handles, loc="center right")
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        if self.estimator_name is not None:
            ax.set_title(self.estimator_name)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the training curves of a fitted estimator.

        Parameters
        ----------
        estimator : DeepFMClassifier, DeepFMRegressor, Pipeline or search
            A fitted estimator (``loss_curve_``, ``validation_scores_``), or a
            fitted ``Pipeline`` or search (``GridSearchCV``, ...) whose last
            step or best estimator is one.
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on; None creates a figure.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, drawn.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When ``estimator`` is not fitted.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> from skdeepfm.plot import TrainingCurveDisplay
        >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone", "tv"] * 25})
        >>> y = [1, 0, 1, 0] * 25
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, early_stopping=True,
        ...                        validation_fraction=0.2, random_state=0)
        >>> display = TrainingCurveDisplay.from_estimator(clf.fit(X, y))
        >>> display.score_ax_.get_ylabel()
        'validation -log-loss'
        """
        estimator, _ = _deepfm_of(estimator)
        check_is_fitted(estimator, "loss_curve_")
        display = cls(
            loss_curve=estimator.loss_curve_,
            validation_scores=getattr(estimator, "validation_scores_", None),
            score_name=_validation_score_name(estimator),
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax)


class FieldInteractionDisplay:
    """Heatmap of the mean absolute FM interaction between pairs of fields.

    Create it with :meth:`from_estimator`, which computes the interactions
    with the estimator's ``field_interactions``; the constructor only stores
    its arguments.

    Parameters
    ----------
    interactions : pandas.DataFrame of shape (n_fields, n_fields)
        The interactions, indexed by the field names on both axes.
    estimator_name : str or None, default=None
        Title of the plot; None for no title.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The Axes of the heatmap.
    figure_ : matplotlib.figure.Figure
        The figure holding the Axes.
    im_ : matplotlib.image.AxesImage
        The heatmap.
    colorbar_ : matplotlib.colorbar.Colorbar or None
        The colour scale; None when drawn without one.
    text_ : ndarray of matplotlib.text.Text of shape (n_fields, n_fields) or None
        The value written in each cell; None without values.

    See Also
    --------
    plot_field_interactions : Plot the interactions of an estimator in one call.
    DeepFMClassifier.field_interactions : The numbers behind the plot.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skdeepfm.plot import FieldInteractionDisplay
    >>> names = ["user", "ad", "hour"]
    >>> values = [[0, 0.3, 0.1], [0.3, 0, 0.2], [0.1, 0.2, 0]]
    >>> display = FieldInteractionDisplay(interactions=pd.DataFrame(values, names, names)).plot()
    >>> [label.get_text() for label in display.ax_.get_xticklabels()]
    ['user', 'ad', 'hour']
    """

    def __init__(self, *, interactions, estimator_name=None):
        self.interactions = interactions
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, cmap="viridis", include_values=True, values_format=".2g", colorbar=True):
        """Draw the heatmap.

        Parameters
        ----------
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on; None creates a figure.
        cmap : str or matplotlib.colors.Colormap, default="viridis"
            Colour map of the heatmap.
        include_values : bool, default=True
            Whether to write each value in its cell.
        values_format : str, default=".2g"
            Format specification of the written values.
        colorbar : bool, default=True
            Whether to add a colour scale.

        Returns
        -------
        display : FieldInteractionDisplay
            This display, with ``ax_``, ``figure_``, ``im_`` and
            ``colorbar_`` set.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import pandas as pd
        >>> from skdeepfm.plot import FieldInteractionDisplay
        >>> names = ["user", "ad"]
        >>> display = FieldInteractionDisplay(interactions=pd.DataFrame([[0, 0.3], [0.3, 0]], names, names))
        >>> len(display.plot(cmap="magma", include_values=False).ax_.texts)
        0
        """
        ax = _axes(ax)
        frame = pd.DataFrame(self.interactions)
        values = frame.to_numpy(dtype=float)
        names = [str(name) for name in frame.columns]
        self.im_ = ax.imshow(values, cmap=cmap, interpolation="nearest")
        n_fields = len(names)
        ax.set_xticks(np.arange(n_fields), labels=names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(np.arange(n_fields), labels=[str(name) for name in frame.index])
        ax.set_xlabel("field")
        ax.set_ylabel("field")
        self.text_ = None
        if include_values:
            cmap_ = self.im_.cmap
            high = np.nanmax(values) if values.size else 0.0
            self.text_ = np.empty(values.shape, dtype=object)
            for i in range(n_fields):
                for j in range(n_fields):
                    # Dark text on the bright end of the colour map, light elsewhere.
                    bright = high > 0 and values[i, j] > 0.5 * high
                    color = cmap_(0.0) if bright else cmap_(1.0)
                    self.text_[i, j] = ax.text(
                        j, i, format(values[i, j], values_format), ha="center", va="center", color=color
                    )
        self.colorbar_ = None
        if colorbar:
            self.colorbar_ = ax.figure.colorbar(self.im_, ax=ax)
            self.colorbar_.set_label("mean |FM interaction|")
        if self.estimator_name is not None:
            ax.set_title(f"Field interactions of {self.estimator_name}")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, X=None, *, ax=None, **plot_kwargs):
        """Compute and plot the field interactions of a fitted estimator.

        Parameters
        ----------
        estimator : DeepFMClassifier, DeepFMRegressor, Pipeline or search
            A fitted estimator, or a fitted ``Pipeline`` (``X`` goes through its
            first steps) or search (``GridSearchCV``, ...) whose last step or
            best estimator is one.
        X : {array-like, DataFrame} of shape (n_samples, n_features) or None, default=None
            Rows to average over; None averages over the training vocabulary
            (see ``DeepFMClassifier.field_interactions``).
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on; None creates a figure.
        **plot_kwargs
            Passed on to :meth:`plot` (``cmap``, ``include_values``,
            ``values_format``, ``colorbar``).

        Returns
        -------
        display : FieldInteractionDisplay
            The display, drawn.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When ``estimator`` is not fitted.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import pandas as pd
        >>> from skdeepfm import DeepFMClassifier
        >>> from skdeepfm.plot import FieldInteractionDisplay
        >>> X = pd.DataFrame({"user": ["a", "b", "a", "c"] * 25, "ad": ["x", "y", "y", "x"] * 25})
        >>> y = [1, 0, 0, 1] * 25
        >>> clf = DeepFMClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0).fit(X, y)
        >>> display = FieldInteractionDisplay.from_estimator(clf, X)
        >>> display.im_.get_array().shape
        (2, 2)
        """
        estimator, X = _deepfm_of(estimator, X)
        check_is_fitted(estimator, "network_")
        display = cls(interactions=estimator.field_interactions(X), estimator_name=type(estimator).__name__)
        return display.plot(ax=ax, **plot_kwargs)


def plot_learning_curve(estimator, ax=None):
    """Plot the training loss and validation score of each epoch.

    Parameters
    ----------
    estimator : DeepFMClassifier, DeepFMRegressor, Pipeline or search
        A fitted estimator, or a fitted ``Pipeline`` or search
        (``GridSearchCV``, ...) whose last step or best estimator is one.
    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw the loss on (the score goes on a twin y axis); None
        creates a figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes of the loss.

    See Also
    --------
    TrainingCurveDisplay : The display behind this function.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skdeepfm import DeepFMClassifier
    >>> from skdeepfm.plot import plot_learning_curve
    >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone", "tv"] * 25})
    >>> y = [1, 0, 1, 0] * 25
    >>> clf = DeepFMClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> plot_learning_curve(clf).get_ylabel()
    'training loss'
    """
    return TrainingCurveDisplay.from_estimator(estimator, ax=ax).ax_


def plot_field_interactions(estimator, X=None, ax=None):
    """Plot a heatmap of the mean absolute FM interaction between pairs of fields.

    Parameters
    ----------
    estimator : DeepFMClassifier, DeepFMRegressor, Pipeline or search
        A fitted estimator, or a fitted ``Pipeline`` or search
        (``GridSearchCV``, ...) whose last step or best estimator is one.
    X : {array-like, DataFrame} of shape (n_samples, n_features) or None, default=None
        Rows to average over; None averages over the training vocabulary.
    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw on; None creates a figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes of the heatmap.

    See Also
    --------
    FieldInteractionDisplay : The display behind this function.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skdeepfm import DeepFMClassifier
    >>> from skdeepfm.plot import plot_field_interactions
    >>> X = pd.DataFrame({"user": ["a", "b", "a", "c"] * 25, "ad": ["x", "y", "y", "x"] * 25})
    >>> y = [1, 0, 0, 1] * 25
    >>> clf = DeepFMClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> ax = plot_field_interactions(clf)
    >>> ax.get_title()
    'Field interactions of DeepFMClassifier'
    """
    return FieldInteractionDisplay.from_estimator(estimator, X, ax=ax).ax_
