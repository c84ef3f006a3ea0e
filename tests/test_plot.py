import builtins
import importlib
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skdeepfm import DeepFMClassifier

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")

from skdeepfm.plot import (  # noqa: E402
    FieldInteractionDisplay,
    TrainingCurveDisplay,
    plot_field_interactions,
    plot_learning_curve,
)

FIELDS = ["user", "ad", "device"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _data(n_samples):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({name: rng.choice([f"{name}{i}" for i in range(4)], n_samples) for name in FIELDS})
    y = (X["user"].str[-1].astype(int) % 2 == X["ad"].str[-1].astype(int) % 2).astype(int)
    return X, y


def _fit(n_samples, **params):
    X, y = _data(n_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = DeepFMClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0, **params)
        return clf.fit(X, y), X


@pytest.fixture(scope="module")
def with_validation():
    clf, X = _fit(1200)
    assert clf.validation_scores_ is not None
    return clf, X


@pytest.fixture(scope="module")
def without_validation():
    clf, X = _fit(200)
    assert clf.validation_scores_ is None
    return clf, X


def test_learning_curve_with_validation_scores(with_validation):
    clf, _ = with_validation
    ax = plot_learning_curve(clf)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "training loss"
    assert ax.get_title() == "DeepFMClassifier"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), clf.loss_curve_)
    twin = [other for other in ax.figure.axes if other is not ax]
    assert len(twin) == 1
    assert twin[0].get_ylabel() == "validation -log-loss"
    np.testing.assert_allclose(twin[0].lines[0].get_ydata(), clf.validation_scores_)


def test_learning_curve_without_validation_scores(without_validation):
    clf, _ = without_validation
    display = TrainingCurveDisplay.from_estimator(clf)
    assert display.score_ax_ is None
    assert display.score_line_ is None
    assert len(display.figure_.axes) == 1
    assert len(display.loss_line_.get_xdata()) == clf.n_iter_


def test_learning_curve_on_given_ax(with_validation):
    clf, _ = with_validation
    fig, (left, right) = plt.subplots(1, 2)
    display = TrainingCurveDisplay.from_estimator(clf, ax=right)
    assert display.ax_ is right
    assert display.figure_ is fig
    assert plot_learning_curve(clf, ax=left) is left
    assert left.get_legend() is not None


def test_field_interactions_heatmap(with_validation):
    clf, X = with_validation
    ax = plot_field_interactions(clf)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert [label.get_text() for label in ax.get_xticklabels()] == FIELDS
    assert [label.get_text() for label in ax.get_yticklabels()] == FIELDS
    assert "DeepFMClassifier" in ax.get_title()
    colorbars = [other for other in ax.figure.axes if other is not ax]
    assert len(colorbars) == 1
    assert colorbars[0].get_ylabel() == "mean |FM interaction|"
    np.testing.assert_allclose(ax.images[0].get_array(), clf.field_interactions().to_numpy())


def test_field_interactions_display_options(with_validation):
    clf, X = with_validation
    fig, ax = plt.subplots()
    display = FieldInteractionDisplay.from_estimator(
        clf, X.head(100), ax=ax, cmap="magma", include_values=False, colorbar=False
    )
    assert display.ax_ is ax
    assert display.figure_ is fig
    assert display.text_ is None
    assert display.colorbar_ is None
    assert display.im_.get_cmap().name == "magma"
    np.testing.assert_allclose(display.im_.get_array(), clf.field_interactions(X.head(100)).to_numpy())
    display.plot()
    assert display.ax_ is not ax
    assert display.text_.shape == (3, 3)


@pytest.mark.parametrize(
    "plot",
    [plot_learning_curve, plot_field_interactions, TrainingCurveDisplay.from_estimator],
)
def test_not_fitted(plot):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        plot(DeepFMClassifier())


def test_missing_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for name in [name for name in sys.modules if name.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    plot_module = importlib.reload(sys.modules["skdeepfm.plot"])  # importing it needs no matplotlib
    display = plot_module.TrainingCurveDisplay(loss_curve=[1.0, 0.5])
    with pytest.raises(ImportError, match=r'pip install "skdeepfm\[plot\]"'):
        display.plot()


def test_pipelines_and_searches_are_plotted_through_their_deepfm(with_validation):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    _, X = with_validation
    y = (X["user"].str[-1].astype(int) % 2 == X["ad"].str[-1].astype(int) % 2).astype(int)
    params = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    pipeline = make_pipeline(FunctionTransformer(lambda frame: frame[FIELDS[:2]]), DeepFMClassifier(**params))
    with pytest.raises(NotFittedError):
        plot_learning_curve(pipeline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(X, y)
        search = GridSearchCV(DeepFMClassifier(**params), {"embedding_dim": [4]}, cv=2).fit(X, y)
    # The Pipeline's first steps reach the network's fields: two of the three columns.
    ax = plot_field_interactions(pipeline, X)
    assert [label.get_text() for label in ax.get_xticklabels()] == FIELDS[:2]
    assert plot_learning_curve(pipeline).get_ylabel() == "training loss"
    assert plot_field_interactions(search).get_title() == "Field interactions of DeepFMClassifier"
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="needs a DeepFMClassifier or DeepFMRegressor.*LogisticRegression"):
        plot_learning_curve(LogisticRegression())


def test_heatmap_labels_fit_in_the_figure():
    names = ["a_rather_long_field_name", "advertiser_identifier", "device_type_of_the_user"]
    interactions = pd.DataFrame(np.eye(3), names, names)
    figure = FieldInteractionDisplay(interactions=interactions).plot().figure_
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    bounds = figure.bbox
    for label in [*figure.axes[0].get_xticklabels(), *figure.axes[0].get_yticklabels()]:
        box = label.get_window_extent(renderer)
        assert box.x0 >= bounds.x0 - 1
        assert box.y0 >= bounds.y0 - 1
