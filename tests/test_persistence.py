import datetime as dt
import io
import json
import pickle
import warnings
import zipfile
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

import skdeepfm
from skdeepfm import DeepFMClassifier, FieldEncoder
from skdeepfm._persistence import DOCUMENT, FORMAT_VERSION, load, save

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # Columns that mix numbers and strings on purpose (saved and loaded as they are).
    pytest.mark.filterwarnings("ignore:Column .* holds numbers with fractions beside other values"),
]

SMALL = dict(
    embedding_dim=3, hidden_layer_sizes=(5,), max_iter=3, batch_size=16, random_state=0, device="cpu"
)
MIXED = [1, "1", b"1", True, None, ("a", 1), 2, "x", b"", False, ("b",), 2.5, ""]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny networks: several threads only add contention on a busy machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_table(n_samples=60, seed=0):
    """Categorical (with None), numeric (with NaN), multi-valued, integer and mixed-type fields."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(3, 1, n_samples)
    price[rng.random(n_samples) < 0.1] = np.nan
    tags = [list(rng.choice(["a", "b", "c", "d"], rng.integers(0, 3))) for _ in range(n_samples)]
    tags[3] = None
    return pd.DataFrame(
        {
            "city": rng.choice(np.array(["paris", "tokyo", "lima", "oslo", None], dtype=object), n_samples),
            "price": price,
            "tags": tags,
            "count": rng.integers(0, 6, n_samples),
            "mixed": [MIXED[i % len(MIXED)] for i in range(n_samples)],
        }
    )


def new_rows():
    """Rows with categories never seen in fit and missing values everywhere."""
    return pd.DataFrame(
        {
            "city": ["berlin", None, "paris"],
            "price": [np.nan, 1e6, 12.5],
            "tags": [["zzz"], [], None],
            "count": [99, 0, -1],
            "mixed": [("new",), None, b"1"],
        }
    )


MODELS = {
    "binary": (dict(), lambda X: np.where(X["count"] > 2, "yes", "no")),
    "multiclass": (dict(), lambda X: X["count"].to_numpy() % 3 * 10),
    "min_frequency": (dict(min_frequency=5), lambda X: np.where(X["count"] > 2, "yes", "no")),
    "max_categories_multiclass": (dict(max_categories=3), lambda X: X["count"].to_numpy() % 3),
}


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request):
    params, target = MODELS[request.param]
    X = make_table()
    clf = DeepFMClassifier(**SMALL, **params, multivalue_features=["tags"]).fit(X, target(X))
    return clf, X, target(X)


def round_trip(model, tmp_path, name="model.skdeepfm"):
    path = tmp_path / name
    save(model, path)
    return load(path)


def rewrite(path, change):
    """Rewrite the model document of a saved file with ``change(document)``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members[DOCUMENT])
    change(document)
    members[DOCUMENT] = json.dumps(document).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def assert_same(a, b, path="value"):
    """Equal values of exactly the same types, NaN equal to NaN."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                assert_same(x, y, f"{path}[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, torch.Tensor):
        assert (a.dtype, a.requires_grad) == (b.dtype, b.requires_grad), path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.random.RandomState):
        assert_same(a.get_state(legacy=False), b.get_state(legacy=False), path)
    elif isinstance(a, np.random.Generator):
        assert_same(a.bit_generator.state, b.bit_generator.state, path)
    elif isinstance(a, float | np.floating) and np.isnan(a):
        assert np.isnan(b), path
    elif isinstance(a, np.datetime64 | np.timedelta64) and np.isnat(a):
        assert np.isnat(b), path
        assert a.dtype == b.dtype, path
    elif isinstance(a, pd.Timestamp):
        assert (a, str(a.tz), a.unit) == (b, str(b.tz), b.unit), path
    elif a is pd.NA or a is pd.NaT:
        assert a is b, path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_predictions_are_bit_identical_after_loading(fitted, tmp_path):
    clf, X, _ = fitted
    loaded = round_trip(clf, tmp_path)
    assert type(loaded) is DeepFMClassifier
    for rows in (X, new_rows()):
        np.testing.assert_array_equal(loaded.predict_proba(rows), clf.predict_proba(rows))
        np.testing.assert_array_equal(loaded.decision_function(rows), clf.decision_function(rows))
        np.testing.assert_array_equal(loaded.predict(rows), clf.predict(rows))
    assert_same(loaded.classes_, clf.classes_)
    assert loaded.get_params() == clf.get_params()
    assert not loaded.network_.training
    assert loaded.network_.offsets.device.type == "cpu"


def test_fitted_attributes_are_restored_with_their_types(fitted, tmp_path):
    clf, _, _ = fitted
    loaded = round_trip(clf, tmp_path)
    for name in ("n_features_in_", "feature_names_in_", "n_iter_", "loss_curve_", "field_dims_", "classes_"):
        assert_same(getattr(loaded, name), getattr(clf, name), name)
    for name in ("categories_", "code_counts_", "field_kinds_", "numeric_center_", "numeric_scale_"):
        assert_same(getattr(loaded.encoder_, name), getattr(clf.encoder_, name), f"encoder_.{name}")
    assert_same(loaded._optimizer_state, clf._optimizer_state, "_optimizer_state")
    assert_same(loaded._random_state, clf._random_state, "_random_state")
    assert_same(loaded.network_.state_dict(), clf.network_.state_dict(), "network_")
    # Arrays shared by two attributes are still one array.
    assert loaded.field_dims_ is loaded.encoder_.field_dims_
    assert loaded.encoder_.categories_[0] is loaded.encoder_._fields[0].categories


def test_mixed_type_categories_keep_their_types(tmp_path):
    X = make_table()
    clf = DeepFMClassifier(**SMALL, multivalue_features=["tags"]).fit(X, X["count"] % 2)
    j = list(X.columns).index("mixed")
    categories = clf.encoder_.categories_[j]
    assert {type(c) for c in categories} >= {int, str, bytes, tuple, float}
    loaded = round_trip(clf, tmp_path)
    assert_same(loaded.encoder_.categories_[j], categories)
    X_new = pd.DataFrame({**{c: X[c][:4] for c in X.columns}, "mixed": [b"1", ("a", 1), 2.5, object()]})
    X_new = X_new[X.columns]
    np.testing.assert_array_equal(loaded.predict_proba(X_new), clf.predict_proba(X_new))


@pytest.mark.parametrize(
    "column",
    [
        [np.int64(3), np.str_("s"), np.float32(0.5), np.bytes_(b"b"), np.bool_(True), np.int8(-2)],
        [Decimal("1.10"), Decimal("NaN"), Fraction(1, 3), complex(1, 2), frozenset({"a", 1}), (1, (2, b"x"))],
        [
            pd.Timestamp("2024-07-01 12:30", tz="Europe/Paris"),
            pd.Timestamp("2024-01-01 00:00:00.000000001"),
            pd.Timedelta(1, unit="ns"),
            dt.datetime(2020, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")),
            dt.datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
            dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
            dt.date(1999, 12, 31),
            dt.time(23, 59, 1, 5),
            dt.timedelta(days=-1, microseconds=3),
        ],
        ["", "é", "日本", "\x00", "a" * 100, "\ud800x"],
        pd.date_range("2020-01-01", periods=6, freq="h"),
    ],
    ids=["numpy-scalars", "numbers-and-tuples", "dates", "strings", "datetime64"],
)
def test_an_encoder_with_unusual_categories_round_trips(column, tmp_path):
    X = pd.DataFrame({"x": pd.Series(list(column) * 2, dtype=object), "y": list(range(len(column))) * 2})
    if isinstance(column, pd.DatetimeIndex):
        X["x"] = list(column) * 2
        X["x"] = X["x"].astype("datetime64[ns]")
    encoder = FieldEncoder(multivalue_features=None).fit(X)
    loaded = round_trip(encoder, tmp_path)
    assert type(loaded) is FieldEncoder
    assert_same(loaded.categories_, encoder.categories_)
    np.testing.assert_array_equal(loaded.transform(X), encoder.transform(X))
    assert_same(
        loaded.inverse_transform(loaded.transform(X)), encoder.inverse_transform(encoder.transform(X))
    )


def test_a_hashing_encoder_and_an_output_config_round_trip(tmp_path):
    X = make_table()
    encoder = FieldEncoder(hash_buckets=32, multivalue_features=["tags"]).set_output(transform="default")
    encoder.fit(X)
    loaded = round_trip(encoder, tmp_path)
    assert_same(loaded.transform(new_rows()), encoder.transform(new_rows()))
    assert loaded.get_params() == encoder.get_params()
    assert loaded._sklearn_output_config == encoder._sklearn_output_config


def test_a_regressor_round_trips(tmp_path):
    regressor_class = getattr(skdeepfm, "DeepFMRegressor", None)
    if regressor_class is None:
        pytest.skip("this skdeepfm has no DeepFMRegressor")
    X = make_table()
    reg = regressor_class(**SMALL, multivalue_features=["tags"]).fit(X, X["count"] * 1.5)
    loaded = round_trip(reg, tmp_path)
    assert type(loaded) is regressor_class
    np.testing.assert_array_equal(loaded.predict(new_rows()), reg.predict(new_rows()))


def test_an_unfitted_estimator_saves_its_parameters(tmp_path):
    clf = DeepFMClassifier(hidden_layer_sizes=[7, 3], min_frequency=0.1, class_weight={0: 2.0, "b": 1})
    loaded = round_trip(clf, tmp_path)
    assert_same(loaded.get_params(), clf.get_params())
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    encoder = round_trip(FieldEncoder(numeric_features=["price"]), tmp_path)
    assert encoder.get_params() == FieldEncoder(numeric_features=["price"]).get_params()


def test_a_loaded_model_can_be_cloned_refitted_and_trained_on(fitted, tmp_path):
    clf, X, y = fitted
    loaded = round_trip(clf, tmp_path)
    assert clone(loaded).get_params() == clf.get_params()
    np.testing.assert_array_equal(
        clone(loaded).fit(X, y).predict_proba(X), clone(clf).fit(X, y).predict_proba(X)
    )
    # The optimizer's moments and the random state were saved: training
    # continues exactly as it would have without the round trip.
    original = pickle.loads(pickle.dumps(clf))
    original.partial_fit(X, y)
    loaded.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    assert loaded.loss_curve_ == original.loss_curve_


def test_files_and_file_objects_are_accepted(fitted, tmp_path):
    clf, X, _ = fitted
    save(clf, str(tmp_path / "as-string"))
    buffer = io.BytesIO()
    save(clf, buffer)
    buffer.seek(0)
    for source in (str(tmp_path / "as-string"), buffer):
        np.testing.assert_array_equal(load(source).predict_proba(X), clf.predict_proba(X))


def test_loading_never_unpickles(fitted, tmp_path, monkeypatch):
    clf, X, _ = fitted
    path = tmp_path / "model.skdeepfm"
    save(clf, path)

    def forbidden(*args, **kwargs):
        raise AssertionError("load used pickle")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    rng_state = torch.get_rng_state()
    loaded = load(path)
    assert torch.equal(torch.get_rng_state(), rng_state)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    with zipfile.ZipFile(path) as archive:
        arrays = [name for name in archive.namelist() if name != DOCUMENT]
        assert all(name.startswith("arrays/") and name.endswith(".npy") for name in arrays)
        for name in arrays:
            assert np.load(io.BytesIO(archive.read(name)), allow_pickle=False).dtype != object


def test_versions_are_recorded(fitted, tmp_path):
    clf, _, _ = fitted
    path = tmp_path / "model.skdeepfm"
    save(clf, path)
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read(DOCUMENT))
    assert document["format_version"] == FORMAT_VERSION
    assert document["class"] == "skdeepfm._classifier.DeepFMClassifier"
    versions = document["versions"]
    assert versions["skdeepfm"] == skdeepfm.__version__
    assert versions["torch"] == torch.__version__
    assert versions["scikit-learn"] == sklearn.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load(path)
    assert loaded._saved_with == versions
    # The versions describe the file loaded from; saving again records the running ones.
    save(loaded, path)
    with zipfile.ZipFile(path) as archive:
        assert "_saved_with" not in archive.read(DOCUMENT).decode()


def test_a_file_from_a_newer_skdeepfm_warns(fitted, tmp_path, monkeypatch):
    clf, X, _ = fitted
    path = tmp_path / "model.skdeepfm"
    with monkeypatch.context() as patch:
        patch.setattr(skdeepfm, "__version__", "99.1.0")
        save(clf, path)
    with pytest.warns(UserWarning, match=r"saved by skdeepfm 99\.1\.0, which is newer than the running"):
        loaded = load(path)
    assert loaded._saved_with["skdeepfm"] == "99.1.0"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_a_parameter_missing_from_the_file_takes_its_default(tmp_path):
    path = tmp_path / "model.skdeepfm"
    save(FieldEncoder(min_frequency=3), path)
    rewrite(path, lambda document: document["model"]["params"].pop("hash_buckets"))
    encoder = load(path)
    assert encoder.hash_buckets is None
    assert encoder.min_frequency == 3


def test_a_model_saved_before_fm_scale_keeps_the_plain_fm_term(tmp_path):
    # Files and pickles written before the fm_scale and cuda_graphs
    # parameters existed hold models trained with the plain FM term (a
    # multiplier of 1, also the default now) and without graphs.
    X = make_table()
    y = np.where(X["count"] > 2, "yes", "no")
    clf = DeepFMClassifier(**SMALL).fit(X, y)
    path = tmp_path / "model.skdeepfm"
    save(clf, path)

    def as_before(document):
        document["model"]["params"].pop("fm_scale")
        document["model"]["params"].pop("cuda_graphs")
        document["model"]["params"].pop("dnn_gradient_scale")
        document["model"]["params"].pop("learning_rate_decay")
        document["model"]["params"].pop("scoring")
        document["model"]["params"].pop("calibrate")
        network = document["model"]["attributes"]["network_"]
        network["state"] = [item for item in network["state"] if not item[0].startswith("logit_")]
        config = document["model"]["attributes"]["network_"]["config"]
        config["items"] = [item for item in config["items"] if item[0] != "fm_scale"]

    rewrite(path, as_before)
    loaded = load(path)
    assert loaded.fm_scale == 1.0
    assert loaded.network_.fm_scale == 1.0
    assert loaded.cuda_graphs is True
    # A training setting only: later fits use today's default.
    assert loaded.dnn_gradient_scale == 0.01
    assert (loaded.learning_rate_decay, loaded.scoring, loaded.calibrate) == (0.1, "loss", True)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit(X, y)  # the architecture check sees the same scale

    state = clf.__getstate__()
    del state["fm_scale"], state["cuda_graphs"], state["dnn_gradient_scale"]
    del state["learning_rate_decay"], state["scoring"], state["calibrate"]
    del state["network_"].__dict__["fm_scale"]
    unpickled = DeepFMClassifier.__new__(DeepFMClassifier)
    unpickled.__setstate__(state)
    assert unpickled.fm_scale == 1.0
    assert unpickled.get_params()["cuda_graphs"] is True
    assert unpickled.dnn_gradient_scale == 0.01
    assert (unpickled.learning_rate_decay, unpickled.scoring) == (0.1, "loss")
    assert unpickled.network_.fm_scale == 1.0
    np.testing.assert_array_equal(unpickled.predict_proba(X), clf.predict_proba(X))


def _set(key, value):
    def change(document):
        document[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("format", "other"), 'does not have "format": "skdeepfm-model"'),
        (_set("format_version", FORMAT_VERSION + 1), "reads format version 1 at most; it was saved by"),
        (_set("format_version", "1"), "has format version '1'"),
        (
            lambda d: d["model"].update({"class": "sklearn.linear_model._logistic.LogisticRegression"}),
            "LogisticRegression', which is not a skdeepfm class",
        ),
        (lambda d: d["model"].update({"class": "os.system"}), "'os.system', which is not a skdeepfm class"),
        (
            lambda d: d["model"]["attributes"]["encoder_"].update({"class": "builtins.dict"}),
            r"model\.encoder_ is of class 'builtins.dict'",
        ),
        (lambda d: d["model"]["attributes"]["classes_"].update({"ref": "arrays/999.npy"}), "missing"),
        (lambda d: d["model"]["attributes"].update({"n_iter_": {"$": "pickle"}}), "unknown node type"),
        (lambda d: d["model"]["attributes"].update({"n_iter_": {"no": "type"}}), "not a valid node"),
        (lambda d: d["model"]["attributes"]["network_"].update({"state": []}), "state_dict"),
        (lambda d: d.update({"model": [1, 2]}), "its model is not an estimator"),
        (lambda d: d["model"]["attributes"].update({"__class__": 1}), "starts with '__'"),
    ],
    ids=[
        "format",
        "newer-format",
        "format-type",
        "foreign-class",
        "function",
        "nested-class",
        "missing-array",
        "unknown-node",
        "untyped-node",
        "network-state",
        "not-an-estimator",
        "dunder-attribute",
    ],
)
def test_a_foreign_or_edited_document_is_refused(fitted, tmp_path, change, message):
    clf, _, _ = fitted
    path = tmp_path / "model.skdeepfm"
    save(clf, path)
    rewrite(path, change)
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_files_that_are_not_models_are_refused(fitted, tmp_path):
    clf, _, _ = fitted
    text = tmp_path / "text.skdeepfm"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is not a skdeepfm model file: it is not a zip archive") as info:
        load(text)
    assert str(text) in str(info.value)

    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("data.txt", "x")
    with pytest.raises(ValueError, match="it has no 'model.json' member"):
        load(other)

    not_json = tmp_path / "not-json.skdeepfm"
    with zipfile.ZipFile(not_json, "w") as archive:
        archive.writestr(DOCUMENT, b"\x80 not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load(not_json)

    whole = tmp_path / "whole.skdeepfm"
    save(clf, whole)
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.skdeepfm"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.skdeepfm"):
        load(truncated)

    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.skdeepfm")


def test_a_pickled_array_member_is_refused(fitted, tmp_path):
    clf, _, _ = fitted
    path = tmp_path / "model.skdeepfm"
    save(clf, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members[DOCUMENT])
    ref = document["model"]["attributes"]["classes_"]["ref"]
    member = io.BytesIO()
    np.save(member, np.array([object()], dtype=object), allow_pickle=True)
    members[ref] = member.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="allow_pickle"):
        load(path)


class Opaque:
    """A category that the format cannot store (hashable, but not a known type)."""

    def __repr__(self):
        return "Opaque()"


def test_values_that_cannot_be_stored_raise_a_type_error_naming_them(tmp_path):
    X = pd.DataFrame({"ok": ["a", "b"], "odd": [Opaque(), "b"]})
    encoder = FieldEncoder().fit(X)
    path = tmp_path / "model.skdeepfm"
    with pytest.raises(
        TypeError, match=r"FieldEncoder\._fields\[1\]\.categories\[\d\] \(a category of column 'odd'\)"
    ):
        save(encoder, path)
    assert not path.exists()

    clf = DeepFMClassifier()
    clf.callback_ = lambda: None
    with pytest.raises(
        TypeError, match=r"Cannot save DeepFMClassifier\.callback_: a value of type builtins\.function"
    ):
        save(clf, path)
    clf.callback_ = {"model": LogisticRegression()}
    with pytest.raises(TypeError, match=r"DeepFMClassifier\.callback_\['model'\].*own estimators"):
        save(clf, path)
    clf.callback_ = [1]
    clf.callback_.append(clf.callback_)
    with pytest.raises(TypeError, match="reference cycle"):
        save(clf, path)
    with pytest.raises(TypeError, match="The 'model' argument of save must be a skdeepfm estimator"):
        save(LogisticRegression(), path)
    assert not path.exists()


def test_attributes_of_every_supported_type_round_trip(tmp_path):
    encoder = FieldEncoder()
    encoder.extra_ = {
        "tensors": [
            torch.arange(6, dtype=torch.bfloat16).reshape(2, 3),
            torch.tensor(3.5),
            torch.tensor([True, False]),
            torch.ones(2, dtype=torch.float16, requires_grad=True),
            torch.zeros(0, 4, dtype=torch.int64),
        ],
        "dtypes": (torch.float64, torch.device("cpu")),
        (1, "key"): {None: [np.inf, -np.inf, np.nan, -0.0, 1e308, 2**70]},
        b"bytes-key": b"\x00\xff",
        "randomness": [np.random.RandomState(3), np.random.default_rng(4)],
        "arrays": [np.arange(6).reshape(2, 3), np.array(["a", "bc"]), np.array([b"x"]), np.empty((0, 2))],
        "object_array": np.array([[1, "a"], [None, (2,)]], dtype=object),
        "sets": [{1, 2}, frozenset({"a"})],
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "missing": [pd.NA, pd.NaT, None, np.datetime64("NaT"), np.timedelta64(5, "ms")],
    }
    loaded = round_trip(encoder, tmp_path)
    assert_same(loaded.extra_, encoder.extra_)
    assert loaded.extra_["randomness"][0].randint(1000) == np.random.RandomState(3).randint(1000)


@pytest.mark.gpu
def test_a_model_trained_on_cuda_loads_on_the_cpu(tmp_path):
    X = make_table()
    y = np.where(X["count"] > 2, "yes", "no")
    gpu = DeepFMClassifier(**{**SMALL, "device": "cuda"}, multivalue_features=["tags"]).fit(X, y)
    loaded = round_trip(gpu, tmp_path)
    assert loaded.network_.offsets.device.type == "cpu"
    assert gpu.network_.offsets.device.type == "cuda"
    dense = loaded._optimizer_state["dense"]["state"]
    assert all(t.device.type == "cpu" for moments in dense.values() for t in moments.values())
    tables = loaded._optimizer_state["tables"]
    assert all(tables[name].device.type == "cpu" for name in ("exp_avg", "exp_avg_sq", "last_step"))
    # The same weights, computed on the CPU: as close as CPU and CUDA kernels get.
    np.testing.assert_allclose(loaded.predict_proba(X), gpu.predict_proba(X), atol=1e-5)
    cpu_copy = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_array_equal(loaded.predict_proba(X), cpu_copy.predict_proba(X))
    loaded.set_params(device="cpu").partial_fit(X, y)


def test_odd_strings_and_nested_cells_round_trip(tmp_path):
    strings = [b"x", "é", "", "日本", b"", "\x00", "\ud800", "😀", 10**30]
    nested = [[{"k": [1]}], [], None, [("t", b"b")], [[1, [2]]], [set()], [np.array([1, 2])], [{1: {2: 3}}]]
    n_samples = 24
    X = pd.DataFrame(
        {
            "s": [strings[i % len(strings)] for i in range(n_samples)],
            "n": [nested[i % len(nested)] for i in range(n_samples)],
            "d": [{"k": i % 3} for i in range(n_samples)],
        }
    )
    y = np.arange(n_samples) % 2
    clf = DeepFMClassifier(**SMALL).fit(X, y)
    loaded = round_trip(clf, tmp_path)
    assert_same(loaded.encoder_.categories_, clf.encoder_.categories_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
