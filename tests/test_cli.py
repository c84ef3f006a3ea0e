import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import skdeepfm
from skdeepfm._cli import main

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = ["--param", "max_iter=2", "--param", "hidden_layer_sizes=[8]", "--param", "random_state=0", "--quiet"]


def make_table(n_samples=300, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n_samples) + 1000,
            "device": rng.choice(["phone", "tablet", "desktop"], n_samples),
            # Digits beside letters: a chunk of only digits must still be read as text.
            "zip": rng.choice(["007", "12", "A1", "0042"], n_samples),
            "hour": rng.uniform(0, 24, n_samples).round(2),
        }
    )
    frame["clicked"] = np.where((frame["device"] == "phone") ^ (frame["zip"] == "007"), "yes", "no")
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "train.csv"
    make_table().to_csv(data, index=False)
    model = folder / "model.skdeepfm"
    args = ["train", "--data", str(data), "--target", "clicked", "--model", str(model), *FAST]
    assert main([*args, "--param", "early_stopping=False"]) == 0
    return folder, data, model


def one_line_error(capsys, args, *fragments):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in captured.err
    return captured.err


def test_train_saves_a_loadable_model(trained):
    _, _, model_path = trained
    model = skdeepfm.load(model_path)
    assert isinstance(model, skdeepfm.DeepFMClassifier)
    assert list(model.feature_names_in_) == ["id", "device", "zip", "hour"]
    assert model.get_params()["hidden_layer_sizes"] == [8]
    assert model.early_stopping is False


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_scores_every_row_in_chunks_and_keeps_columns(trained, suffix):
    folder, _, model_path = trained
    table = make_table(53, seed=1).drop(columns="clicked")
    data = folder / f"score{suffix}"
    out = folder / f"scores{suffix}"
    table.to_csv(data, index=False) if suffix == ".csv" else table.to_parquet(data)
    args = ["predict", "--model", str(model_path), "--data", str(data), "--out", str(out), "--quiet"]
    assert main([*args, "--keep", "id", "--chunk-size", "2"]) == 0
    scores = pd.read_csv(out, dtype={"label": str}) if suffix == ".csv" else pd.read_parquet(out)
    assert list(scores.columns) == ["id", "proba_no", "proba_yes", "label"]
    model = skdeepfm.load(model_path)
    np.testing.assert_array_equal(scores["id"], table["id"])
    expected = model.predict_proba(table[list(model.feature_names_in_)])
    np.testing.assert_allclose(scores[["proba_no", "proba_yes"]].to_numpy(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(scores["label"], model.predict(table[list(model.feature_names_in_)]))


def test_regression_train_and_predict(tmp_path):
    table = make_table(200)
    table["spend"] = 10.0 * (table["device"] == "phone") + table["hour"]
    data = tmp_path / "train.parquet"
    table.drop(columns="clicked").to_parquet(data)
    model_path = tmp_path / "reg.skdeepfm"
    args = ["train", "--data", str(data), "--target", "spend", "--model", str(model_path), "--regression"]
    assert main([*args, *FAST]) == 0
    out = tmp_path / "out.csv"
    args = ["predict", "--model", str(model_path), "--data", str(data), "--out", str(out), "--quiet"]
    assert main(args) == 0
    model = skdeepfm.load(model_path)
    assert isinstance(model, skdeepfm.DeepFMRegressor)
    np.testing.assert_allclose(
        pd.read_csv(out)["prediction"], model.predict(table[list(model.feature_names_in_)])
    )


def test_export_writes_an_onnx_model_that_scores_like_the_model(trained):
    ort = pytest.importorskip("onnxruntime")
    folder, data, model_path = trained
    out = folder / "model.onnx"
    assert main(["export", "--model", str(model_path), "--out", str(out), "--dtype", "float64"]) == 0
    model = skdeepfm.load(model_path)
    X = pd.read_csv(data, dtype={"zip": str}).drop(columns="clicked")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probabilities, _ = session.run(None, skdeepfm.onnx_inputs(model, X))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-9, rtol=0)


def test_train_bad_input_is_one_line(trained, tmp_path, capsys):
    _, data, _ = trained
    model = str(tmp_path / "m.skdeepfm")
    train = ["train", "--model", model]
    one_line_error(
        capsys, [*train, "--data", str(tmp_path / "none.csv"), "--target", "y"], "none.csv': no such file"
    )
    one_line_error(
        capsys, [*train, "--data", str(data), "--target", "nope"], "--target 'nope' is not a column"
    )
    single = tmp_path / "single.csv"
    make_table(20).assign(clicked="yes").to_csv(single, index=False)
    one_line_error(capsys, [*train, "--data", str(single), "--target", "clicked"], "has one class ('yes')")
    good = [*train, "--data", str(data), "--target", "clicked"]
    one_line_error(capsys, [*good, "--param", "max_epochs=3"], "--param 'max_epochs' is not a parameter")
    one_line_error(capsys, [*good, "--param", "max_iter"], "--param 'max_iter' must be NAME=VALUE")
    one_line_error(capsys, [*good, "--param", "max_iter=0"], "'max_iter' parameter of DeepFMClassifier")
    sheet = tmp_path / "t.xlsx"
    sheet.write_text("x")
    one_line_error(capsys, [*train, "--data", str(sheet), "--target", "y"], "must be a .csv or .parquet file")
    one_line_error(capsys, ["train", "--data", str(data), "--target", "clicked"], "--model")
    assert not (tmp_path / "m.skdeepfm").exists()


def test_predict_and_export_bad_input_is_one_line(trained, tmp_path, capsys):
    folder, data, model = trained
    out = str(tmp_path / "out.csv")
    predict = ["predict", "--data", str(data), "--out", out]
    one_line_error(capsys, [*predict, "--model", str(tmp_path / "no.skdeepfm")], "no.skdeepfm': no such file")
    not_ours = tmp_path / "notes.txt"
    not_ours.write_text("hello")
    one_line_error(capsys, [*predict, "--model", str(not_ours)], "notes.txt' is not a skdeepfm model file")
    partial = tmp_path / "partial.csv"
    make_table(10).drop(columns=["zip"]).to_csv(partial, index=False)
    args = ["predict", "--model", str(model), "--data", str(partial), "--out", out]
    one_line_error(capsys, args, "partial.csv has no column 'zip', which the model was trained on")
    one_line_error(
        capsys, [*predict, "--model", str(model), "--keep", "user"], "--keep 'user' is not a column"
    )
    args = ["predict", "--model", str(model), "--data", str(tmp_path / "gone.parquet"), "--out", out]
    one_line_error(capsys, args, "gone.parquet': no such file")
    one_line_error(capsys, [*predict, "--model", str(model), "--chunk-size", "0"], "--chunk-size")
    one_line_error(
        capsys, ["export", "--model", str(not_ours), "--out", str(tmp_path / "m.onnx")], "not a skdeepfm"
    )


def test_export_refusal_names_the_field(trained, tmp_path, capsys):
    pytest.importorskip("onnx")
    _, data, _ = trained
    hashed = tmp_path / "hashed.skdeepfm"
    args = [
        "train",
        "--data",
        str(data),
        "--target",
        "clicked",
        "--model",
        str(hashed),
        "--param",
        "hash_buckets=50",
    ]
    assert main([*args, *FAST]) == 0
    capsys.readouterr()
    one_line_error(
        capsys, ["export", "--model", str(hashed), "--out", str(tmp_path / "h.onnx")], "Column 'id' is hashed"
    )


def test_the_process_exits_with_status_2_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skdeepfm",
            "predict",
            "--model",
            str(tmp_path / "x"),
            "--data",
            "d.csv",
            "--out",
            "o.csv",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"skdeepfm predict: error: --model {str(tmp_path / 'x')!r}: no such file"
    ]
