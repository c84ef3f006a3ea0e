import re

import numpy as np
import pandas as pd
import pytest

import skdeepfm
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
    assert re.search(r"DeepFMClassifier (ran \d+ epochs|chose \d+ epochs of \d+ by early stopping)", out)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_main_job_on_a_users_file_and_save(tmp_path, capsys, suffix):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.choice(list("xyz"), 400), "b": rng.integers(0, 4, 400)})
    frame["label"] = np.where((frame["a"] == "x") ^ (frame["b"] > 1), "yes", "no")
    path = tmp_path / f"table{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    model_path = tmp_path / "model.skdeepfm"
    args = ["--data", str(path), "--target", "label", "--max-iter", "5", "--quiet", "--save", str(model_path)]
    assert main(args) == 0
    assert "Saved the fitted model" in capsys.readouterr().out
    model = skdeepfm.load(model_path)
    assert set(model.classes_) == {"no", "yes"}


def test_missing_target_and_unknown_column_are_one_line_errors(tmp_path, capsys):
    assert main(["--data", "x.csv"]) == 2
    assert capsys.readouterr().err == "skdeepfm: error: --target is required with --data\n"
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(path, index=False)
    assert main(["--data", str(path), "--target", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skdeepfm: error: --target 'nope' is not a column of t.csv")
    assert err.count("\n") == 1
    assert main(["--data", str(tmp_path / "absent.csv"), "--target", "a"]) == 2
    assert "absent.csv': no such file" in capsys.readouterr().err
