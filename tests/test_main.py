import pickle

import numpy as np
import pandas as pd
import pytest

from skdeepfm.__main__ import build_parser, main

# The main job runs a few epochs on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in build_parser()._option_string_actions:
        if option.startswith("--"):
            assert option in out


def test_main_job_on_generated_data(capsys):
    assert main(["--n-samples", "3000", "--max-iter", "3", "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "generated ad clicks (3000 rows" in out
    assert "DeepFMClassifier" in out
    assert "LogisticRegression (one-hot)" in out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_main_job_on_a_users_file_and_save(tmp_path, capsys, suffix):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.choice(list("xyz"), 400), "b": rng.integers(0, 4, 400)})
    frame["label"] = np.where((frame["a"] == "x") ^ (frame["b"] > 1), "yes", "no")
    path = tmp_path / f"table{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    model_path = tmp_path / "model.pkl"
    args = ["--data", str(path), "--target", "label", "--max-iter", "5", "--quiet", "--save", str(model_path)]
    assert main(args) == 0
    assert "Saved the fitted model" in capsys.readouterr().out
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    assert set(model.classes_) == {"no", "yes"}


def test_missing_target_and_unknown_column_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", "x.csv"])
    assert "--target is required with --data" in capsys.readouterr().err
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="--target 'nope' is not a column of t.csv"):
        main(["--data", str(path), "--target", "nope"])
