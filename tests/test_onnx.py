import copy
import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from sklearn.exceptions import NotFittedError

import skdeepfm
from skdeepfm import DeepFMClassifier, DeepFMRegressor, onnx_inputs, to_onnx
from skdeepfm._fields import validate_fields
from skdeepfm._onnx_encoder import cached_field_inputs, encoder_graph
from skdeepfm._onnx_feed import _feed_columns
from skdeepfm._onnx_graph import GraphBuilder
from skdeepfm.datasets import make_ad_clicks

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = {"hidden_layer_sizes": (16, 8), "embedding_dim": 4, "max_iter": 3, "random_state": 0}
TOLERANCE = {"float32": 1e-5, "float64": 1e-9}


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run(estimator, X, dtype):
    return session(to_onnx(estimator, dtype=dtype)).run(None, onnx_inputs(estimator, X))


def assert_classifier_parity(clf, X, dtype):
    probabilities, label = run(clf, X, dtype)
    expected = clf.predict_proba(X)
    assert probabilities.dtype == np.dtype(dtype)
    assert probabilities.shape == expected.shape
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE[dtype])
    # Labels agree except where float32 rounding could break a tie.
    sure = np.sort(expected, axis=1)[:, -1] - np.sort(expected, axis=1)[:, -2] > 1e-4
    np.testing.assert_array_equal(label[sure], clf.predict(X)[sure])


def fuzz_training(n_samples=600, seed=0):
    """Every kind of field: unicode strings, ints, bools, float categories, category dtype, numbers, lists."""
    rng = np.random.default_rng(seed)
    cities = np.array(["Zürich", "東京", "naïve café", "🙂", "Oslo", "", "a b"], dtype=object)
    X = pd.DataFrame(
        {
            "city": rng.choice(cities, n_samples),
            "code": rng.zipf(1.6, n_samples) % 40,
            "flag": rng.random(n_samples) < 0.3,
            "price": rng.choice([0.5, 1.25, 3.0], n_samples),
            "level": pd.Categorical(rng.choice(["low", "mid", "high"], n_samples)),
            "size": rng.normal(100.0, 15.0, n_samples),
            "tags": [
                list(rng.choice(["ß", "x", "y", "zz", "東"], rng.integers(0, 4))) for _ in range(n_samples)
            ],
        }
    )
    X.loc[rng.random(n_samples) < 0.1, "city"] = None
    X.loc[rng.random(n_samples) < 0.1, "size"] = np.nan
    signal = (X["city"] == "Oslo").to_numpy() ^ (X["code"].to_numpy() % 2 == 0)
    return X, np.where(signal ^ (rng.random(n_samples) < 0.1), "yes", "no")


def fuzz_scoring(n_samples, seed=1):
    """Rows with unseen, missing, infrequent and oddly typed values, empty lists, extreme numbers."""
    rng = np.random.default_rng(seed)
    pick = rng.choice
    X = pd.DataFrame(
        {
            "city": pick(
                np.array(
                    ["Zürich", "東京", "Paris", "", None, 5, "🙂x", "\x00missing1", "\x00unseen"], object
                ),
                n_samples,
            ),
            "code": pick(np.array([1, 2, 3, 39, 1000, None, 2.0, 2.5, "1", -(2**63)], object), n_samples),
            "flag": pick(np.array([True, False, None, 1, 0.0, "True"], object), n_samples),
            "price": pick(np.array([0.5, 1.25, 3.0, 7.0, np.nan, 1, "0.5"], object), n_samples),
            "level": pick(np.array(["low", "mid", "top", None], object), n_samples),
            "size": pick(np.array([100.0, 1e9, -1e9, np.nan, 85.5, 0.0]), n_samples),
            "tags": [
                [str(v) for v in pick(["ß", "x", "new", "東", "", "zz"], rng.integers(0, 5))]
                if rng.random() > 0.1
                else None
                for _ in range(n_samples)
            ],
        }
    )
    return X


FUZZ_ENCODER = {"numeric_features": ["size"], "min_frequency": 5}


@pytest.fixture(scope="module")
def fuzz_classifier():
    X, y = fuzz_training()
    return DeepFMClassifier(**SMALL, **FUZZ_ENCODER).fit(X, y)


@pytest.fixture(scope="module")
def clicks_classifier():
    X, y = make_ad_clicks(2000, random_state=0)
    return DeepFMClassifier(**SMALL).fit(X, y), X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_clicks_parity(clicks_classifier, dtype):
    clf, X = clicks_classifier
    assert_classifier_parity(clf, X, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_samples", [1, 5000])
def test_fuzzed_rows_parity(fuzz_classifier, dtype, n_samples):
    assert fuzz_classifier.encoder_.n_infrequent_categories_[1] > 0  # "code" has infrequent codes
    assert_classifier_parity(fuzz_classifier, fuzz_scoring(n_samples), dtype)


def test_every_row_of_the_fuzz_one_at_a_time(fuzz_classifier):
    X = fuzz_scoring(40, seed=2)
    sess = session(to_onnx(fuzz_classifier, dtype="float64"))
    for i in range(len(X)):
        row = X.iloc[[i]]
        probabilities, _ = sess.run(None, onnx_inputs(fuzz_classifier, row))
        np.testing.assert_allclose(probabilities, fuzz_classifier.predict_proba(row), atol=1e-9, rtol=0)


def test_one_row_feed_equals_the_column_feed(fuzz_classifier):
    X = fuzz_scoring(60, seed=4)
    X["size"] = X["size"].astype(object)
    X.loc[X.index[0], "size"] = "85.5"  # a string number: the general path converts it
    assert_one_row_feeds_equal_column_feeds(fuzz_classifier, X)


def test_one_row_feed_of_typed_columns_equals_the_column_feed(fuzz_classifier):
    X = fuzz_scoring(30, seed=5)
    rng = np.random.default_rng(5)
    X["level"] = X["level"].astype("str")
    X["code"] = rng.choice(np.array([1, 2, 39, 1000, -(2**63)], dtype=np.int64), len(X))
    X["flag"] = rng.random(len(X)) < 0.5
    X["city"] = X["city"].astype("category")
    X["tags"] = pd.Series(X["tags"].tolist(), dtype=pd.ArrowDtype(pa.list_(pa.string())))
    assert_one_row_feeds_equal_column_feeds(fuzz_classifier, X)


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
def test_string_columns_feed_as_their_object_columns(fuzz_classifier, storage):
    # pandas string columns take a path that checks no cell's type: the same
    # feed as the object column of the same strings, and the same predictions.
    specs = {spec.name: spec for spec in cached_field_inputs(fuzz_classifier.encoder_)}
    X = fuzz_scoring(400, seed=6)
    rng = np.random.default_rng(6)
    for name in ("city", "level"):
        strings = ["Zürich", "東京", "Paris", "", None, "low", "top", "\x00unseen", specs[name].missing]
        X[name] = pd.Series(rng.choice(np.array(strings, dtype=object), len(X)), dtype=object)
    typed = X.assign(**{name: X[name].astype(pd.StringDtype(storage)) for name in ("city", "level")})
    assert isinstance(typed["city"].dtype, pd.StringDtype)
    expected, fed = onnx_inputs(fuzz_classifier, X), onnx_inputs(fuzz_classifier, typed)
    for name in ("city", "level"):
        assert fed[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(fed[name], expected[name], err_msg=name)
        assert specs[name].unseen in fed[name]
        assert specs[name].missing in fed[name]
    assert_classifier_parity(fuzz_classifier, typed, "float64")


def assert_one_row_feeds_equal_column_feeds(clf, X):
    specs = cached_field_inputs(clf.encoder_)
    for i in range(len(X)):
        row = X.iloc[[i]]
        fast = onnx_inputs(clf, row)
        general = _feed_columns(specs, validate_fields(clf, row, reset=False))
        assert fast.keys() == general.keys()
        for name in fast:
            assert fast[name].dtype == general[name].dtype, name
            np.testing.assert_array_equal(fast[name], general[name], err_msg=name)


def test_encoder_part_gives_the_encoders_codes_exactly(fuzz_classifier):
    encoder = fuzz_classifier.encoder_
    X = fuzz_scoring(300, seed=3)
    graph = GraphBuilder(np.float64)
    encoded = encoder_graph(graph, encoder)
    int64, double = onnx.TensorProto.INT64, onnx.TensorProto.DOUBLE
    graph.add_output(encoded.codes, "codes", int64, ["n", "f"])
    graph.add_output(encoded.numeric_codes, "numeric_codes", int64, ["n", "f"])
    graph.add_output(encoded.numeric_values, "numeric_values", double, ["n", "f"])
    ((bag_field, elements, _),) = encoded.bags
    graph.add_output(elements, "elements", int64, ["e"])
    codes, numeric_codes, numeric_values, element_codes = session(graph.model()).run(
        None, onnx_inputs(fuzz_classifier, X)
    )
    expected = encoder._encode_columns(validate_fields(encoder, X, reset=False))
    np.testing.assert_array_equal(codes, expected.codes[:, encoded.categorical])
    np.testing.assert_array_equal(numeric_codes, expected.codes[:, encoded.numeric])
    np.testing.assert_array_equal(numeric_values, expected.values[:, encoded.numeric])
    np.testing.assert_array_equal(element_codes, expected.bags[bag_field][0])
    # The unseen codes are the infrequent code where the field has one, unknown elsewhere.
    code_column = encoded.categorical.index(1)
    assert set(codes[X["code"].isin([1000, 2.5, "1"]).to_numpy(), code_column]) == {skdeepfm.INFREQUENT_INDEX}
    city_column = encoded.categorical.index(0)
    assert set(codes[X["city"].isin(["Paris", 5]).to_numpy(), city_column]) == {skdeepfm.UNKNOWN_INDEX}
    assert set(codes[X["city"].isna().to_numpy(), city_column]) == {skdeepfm.MISSING_INDEX}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multiclass_string_labels(dtype):
    X, _ = make_ad_clicks(900, random_state=1)
    y = np.array(["cheap", "mid", "premium"])[np.arange(900) % 3]
    y[X["device_type"].to_numpy() == "phone"] = "premium"
    clf = DeepFMClassifier(**SMALL).fit(X, y)
    assert_classifier_parity(clf, X.head(300), dtype)
    _, label = run(clf, X.head(5), dtype)
    metadata = {p.key: p.value for p in to_onnx(clf).metadata_props}
    assert json.loads(metadata["skdeepfm.classes"]) == ["cheap", "mid", "premium"]
    assert label.dtype == object
    assert set(label) <= {"cheap", "mid", "premium"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_regressor_predictions_include_the_target_scaling(dtype):
    X, _ = make_ad_clicks(900, random_state=2)
    y = 1000.0 + 50.0 * X["hour"].to_numpy() + 300.0 * (X["gender"] == "male").to_numpy()
    reg = DeepFMRegressor(**SMALL).fit(X, y)
    (predictions,) = run(reg, X, dtype)
    assert predictions.shape == (900,)
    tolerance = TOLERANCE[dtype] * reg.target_scale_
    np.testing.assert_allclose(predictions, reg.predict(X), rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    "params",
    [
        {"batch_norm": False},
        {"hidden_layer_sizes": ()},
        {"multivalue_pooling": "sum"},
        {"multivalue_pooling": "max"},
        {"fm_scale": 0.5, "batch_norm": True},
    ],
)
def test_architectures(params):
    X, y = make_ad_clicks(600, random_state=3)
    clf = DeepFMClassifier(**{**SMALL, **params}).fit(X, y)
    X_test = X.head(200).copy()
    X_test.loc[X_test.index[:50], "interests"] = pd.Series([[]] * 50, index=X_test.index[:50])
    for dtype in ("float32", "float64"):
        assert_classifier_parity(clf, X_test, dtype)


def test_a_model_fitted_on_an_array_names_its_inputs_x0_x1():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.choice(["a", "b", "c"], 200), rng.integers(0, 5, 200).astype(str)]).astype(
        object
    )
    clf = DeepFMClassifier(**SMALL).fit(X, np.where(X[:, 0] == "a", "yes", "no"))
    model = to_onnx(clf, dtype="float64")
    assert [i.name for i in model.graph.input] == ["x0", "x1"]
    X_test = np.array([["a", "9"], [None, "1"], ["c", None]], dtype=object)
    probabilities, _ = session(model).run(None, onnx_inputs(clf, X_test))
    np.testing.assert_allclose(probabilities, clf.predict_proba(X_test), atol=1e-9, rtol=0)


def test_network_logit_map_is_the_last_step(clicks_classifier):
    clf, X = clicks_classifier
    calibrated = copy.deepcopy(clf)
    network = calibrated.network_
    if hasattr(network, "logit_scale"):
        # The network maps its logits itself: predict_proba includes the map.
        network.logit_scale.fill_(0.5)
        network.logit_shift.fill_(-0.25)
        expected = calibrated.predict_proba(X.head(50))[:, 1]
    else:
        raw = clf.decision_function(X.head(50))
        network.register_buffer("logit_scale", torch.tensor([0.5]))
        network.register_buffer("logit_shift", torch.tensor([-0.25]))
        expected = 1 / (1 + np.exp(-(raw * 0.5 - 0.25)))
    model = to_onnx(calibrated, dtype="float64")
    assert any(tensor.name.startswith("logit_scale") for tensor in model.graph.initializer)
    probabilities, _ = session(model).run(None, onnx_inputs(calibrated, X.head(50)))
    np.testing.assert_allclose(probabilities[:, 1], expected, atol=1e-9, rtol=0)
    assert not np.allclose(expected, clf.predict_proba(X.head(50))[:, 1])


def test_metadata_names_fields_kinds_and_classes(fuzz_classifier, tmp_path):
    path = tmp_path / "model.onnx"
    model = to_onnx(fuzz_classifier, path)
    assert onnx.load(str(path)) == model
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["skdeepfm.estimator"] == "DeepFMClassifier"
    assert json.loads(meta["skdeepfm.classes"]) == ["no", "yes"]
    fields = {f["name"]: f for f in json.loads(meta["skdeepfm.fields"])}
    assert list(fields) == list(fuzz_classifier.feature_names_in_)
    assert {name: (f["kind"], f["type"]) for name, f in fields.items()} == {
        "city": ("categorical", "string"),
        "code": ("categorical", "int64"),
        "flag": ("categorical", "int64"),
        "price": ("categorical", "double"),
        "level": ("categorical", "string"),
        "size": ("numeric", "double"),
        "tags": ("multivalue", "string"),
    }
    # "" is a city: missing is another string there, "" elsewhere.
    assert fields["city"]["missing"] != ""
    assert fields["level"]["missing"] == ""
    assert fields["tags"]["lengths_input"] == "tags.lengths"
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert inputs["tags.lengths"] == onnx.TensorProto.INT64
    assert inputs["size"] == onnx.TensorProto.DOUBLE


def test_a_client_feed_built_by_hand(clicks_classifier):
    clf, X = clicks_classifier
    row = X.iloc[[0]]
    feed = {
        "age": np.array([row["age"].iloc[0]], dtype=object),
        "gender": np.array([""], dtype=object),  # missing
        "interests": np.array(list(row["interests"].iloc[0]), dtype=object),
        "interests.lengths": np.array([len(row["interests"].iloc[0])], dtype=np.int64),
        "ad_category": np.array([row["ad_category"].iloc[0]], dtype=object),
        "advertiser_id": np.array(["never seen"], dtype=object),
        "device_type": np.array([row["device_type"].iloc[0]], dtype=object),
        "hour": np.array([np.nan]),
    }
    probabilities, _ = session(to_onnx(clf, dtype="float64")).run(None, feed)
    expected_row = row.copy()
    expected_row[["gender", "hour"]] = None
    expected_row["advertiser_id"] = "never seen"
    np.testing.assert_allclose(probabilities, clf.predict_proba(expected_row), atol=1e-9, rtol=0)


def test_hashed_fields_are_refused_by_name():
    X, y = make_ad_clicks(300, random_state=0)
    clf = DeepFMClassifier(**SMALL, hash_buckets=100).fit(X, y)
    with pytest.raises(ValueError, match="Column 'age' is hashed.*hash_buckets=None"):
        to_onnx(clf)


def test_mixed_type_vocabularies_are_refused_by_name():
    X = pd.DataFrame({"a": ["x", "y"] * 30, "mixed": np.array(["x", 1, 2.5] * 20, dtype=object)})
    with pytest.warns(UserWarning, match="Column 'mixed' holds numbers with fractions"):
        clf = DeepFMClassifier(**SMALL).fit(X, [0, 1] * 30)
    with pytest.raises(
        ValueError, match=r"Column 'mixed' holds categories of the types \['float', 'int', 'str'\]"
    ):
        to_onnx(clf)


def test_bad_arguments():
    with pytest.raises(TypeError, match="takes a fitted DeepFMClassifier or DeepFMRegressor; got str"):
        to_onnx("model")
    with pytest.raises(NotFittedError):
        to_onnx(DeepFMClassifier())
    X, y = make_ad_clicks(200, random_state=0)
    clf = DeepFMClassifier(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="'dtype' parameter of to_onnx must be 'float32' or 'float64'"):
        to_onnx(clf, dtype="float16")
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        onnx_inputs(clf, X.iloc[:, :2])


def test_missing_onnx_names_the_extra(clicks_classifier, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'skdeepfm\[onnx\]'"):
        to_onnx(clicks_classifier[0])
