import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from skdeepfm import FieldEncoder
from skdeepfm._fields import MISSING_INDEX, N_RESERVED
from skdeepfm.datasets import make_ad_clicks

CATEGORICAL_COLUMNS = ["age", "gender", "ad_category", "advertiser_id", "device_type"]


@pytest.fixture(scope="module")
def clicks():
    X, _ = make_ad_clicks(n_samples=400, random_state=0)
    return X.drop(columns="interests")


def kinds(X, **params):
    return FieldEncoder(**params).fit(X).field_kinds_.tolist()


# --- numbers that arrive without a float dtype -------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        "to_numpy",
        "column_transformer",
        "simple_imputer_numpy",
        "simple_imputer_pandas",
    ],
)
def test_float_cells_of_object_columns_are_numeric(clicks, route):
    # Every route below hands the encoder an object column of Python floats for "hour".
    if route == "to_numpy":
        X = clicks.to_numpy()
    elif route == "column_transformer":
        X = ColumnTransformer(
            [("num", StandardScaler(), ["hour"]), ("cat", "passthrough", CATEGORICAL_COLUMNS)]
        ).fit_transform(clicks)
        X = np.roll(X, -1, axis=1)  # hour back to the last column
    else:
        imputer = SimpleImputer(strategy="most_frequent")
        if route == "simple_imputer_pandas":
            imputer.set_output(transform="pandas")
        X = imputer.fit_transform(clicks)
    assert kinds(X) == kinds(clicks) == ["categorical"] * 5 + ["numeric"]


def test_object_floats_encode_as_the_float_column_does(clicks):
    from_pandas = FieldEncoder().fit(clicks)
    from_numpy = FieldEncoder().fit(clicks.to_numpy())
    np.testing.assert_allclose(from_numpy.numeric_center_[-1], from_pandas.numeric_center_[-1])
    np.testing.assert_allclose(
        from_numpy.transform(clicks.to_numpy())[:, -1].astype(float), from_pandas.transform(clicks)[:, -1]
    )


def test_object_ints_and_decimals():
    from decimal import Decimal

    X = pd.DataFrame(
        {
            "ids": pd.Series([1, 2, 3, None] * 5, dtype=object),
            "price": pd.Series([Decimal("1.25"), Decimal("2.5"), None, Decimal("3")] * 5, dtype=object),
        }
    )
    # Integers stay categorical, as in an int column; decimals are numbers.
    assert kinds(X) == ["categorical", "numeric"]


@pytest.mark.parametrize(
    ("cells", "what"),
    [
        (["1.5", "2.25", "3.0", None], "numbers written as strings"),
        ([1.5, "missing", 2.25, "n/a"], "numbers with fractions beside other values"),
    ],
)
def test_numeric_looking_columns_learned_as_categories_are_warned_about(cells, what):
    X = pd.DataFrame({"price": pd.Series(cells * 5, dtype=object)})
    with pytest.warns(UserWarning, match=f"Column 'price' holds {what}.*numeric_features") as record:
        assert FieldEncoder().fit(X).field_kinds_.tolist() == ["categorical"]
    assert record[0].filename == __file__
    # Naming the kinds explicitly answers the question: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kinds(X, numeric_features=None) == ["categorical"]
        if what == "numbers written as strings":
            assert kinds(X, numeric_features=["price"]) == ["numeric"]


@pytest.mark.parametrize("cells", [["a", "b", None], ["1", "2", "10"], [1, "a", 2]])
def test_ordinary_categorical_columns_are_not_warned_about(cells):
    X = pd.DataFrame({"c": pd.Series(cells * 5, dtype=object)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kinds(X) == ["categorical"]


# --- datetime-like columns -----------------------------------------------------------

HOURS = pd.date_range("2024-01-01", periods=1000, freq="h")


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(HOURS),
        pd.Series(HOURS.tz_localize("Europe/Paris")),
        pd.Series(HOURS - HOURS[0]),
        pd.Series(list(HOURS.date), dtype=object),
        pd.Series(HOURS.to_period("D")),
        pd.Series(list(HOURS), dtype=object),
        pd.Series(HOURS.time, dtype=object),
    ],
    ids=["datetime64", "tz-aware", "timedelta", "date", "period", "object-timestamps", "time"],
)
def test_datetime_like_columns_are_numeric_never_one_code_per_timestamp(column):
    column = column.copy()
    column[3] = None
    X = pd.DataFrame({"when": column, "ad": ["a", "b"] * 500})
    encoder = FieldEncoder().fit(X)
    assert encoder.field_kinds_.tolist() == ["numeric", "categorical"]
    assert encoder.field_dims_[0] == N_RESERVED + 1
    encoded = encoder.transform(X)[:, 0]
    assert np.isnan(encoded[3])
    assert np.isfinite(np.delete(encoded, 3)).all()
    assert len(np.unique(encoded[~np.isnan(encoded)])) > 1


def test_next_years_timestamps_are_not_unknown():
    X = pd.DataFrame({"when": HOURS})
    encoder = FieldEncoder().fit(X)
    later = encoder.transform(pd.DataFrame({"when": HOURS + pd.Timedelta(days=365)}))[:, 0]
    now = encoder.transform(X)[:, 0]
    # Later instants are later numbers (clipped like any outlier), never the unknown code.
    assert np.isfinite(later).all()
    assert (later >= now).all()
    assert later.min() > now.min()
    # The centre is the median of the training instants, in seconds since the epoch.
    assert encoder.numeric_center_[0] == pytest.approx(
        np.mean([(t - pd.Timestamp(0)).total_seconds() for t in HOURS[499:501]])
    )


def test_tz_aware_instants_equal_their_utc_instants():
    utc = FieldEncoder().fit(pd.DataFrame({"when": HOURS.tz_localize("UTC")}))
    paris = HOURS.tz_localize("UTC").tz_convert("Europe/Paris")
    np.testing.assert_allclose(
        utc.transform(pd.DataFrame({"when": paris})), utc.transform(pd.DataFrame({"when": HOURS}))
    )


@pytest.mark.parametrize("numeric_features", [None, ["ad"]])
def test_datetime_columns_kept_out_of_numeric_features_raise_saying_what_to_do(numeric_features):
    X = pd.DataFrame({"when": HOURS[:10], "ad": [1.0, 2.0] * 5})
    with pytest.raises(ValueError, match=r"Column 'when' holds datetimes.*numeric_features.*dt\.hour"):
        FieldEncoder(numeric_features=numeric_features).fit(X)


def test_datetimes_as_strings_stay_categories_on_request():
    X = pd.DataFrame({"day": HOURS[:48].strftime("%Y-%m-%d")})
    encoder = FieldEncoder().fit(X)
    assert encoder.field_kinds_.tolist() == ["categorical"]
    assert encoder.field_dims_[0] == N_RESERVED + 2
    assert encoder.transform(pd.DataFrame({"day": [None]}))[0, 0] == MISSING_INDEX


def test_numeric_error_does_not_blame_a_parameter_the_user_never_set():
    encoder = FieldEncoder().fit(pd.DataFrame({"price": [1.5, 2.5]}))
    with pytest.raises(ValueError, match="Column 'price' is numeric \\(learned as numbers in fit\\)") as info:
        encoder.transform(pd.DataFrame({"price": ["cheap", "dear"]}))
    assert "(numeric_features)" not in str(info.value)


def test_times_of_day_are_seconds_since_midnight():
    encoder = FieldEncoder().fit(pd.DataFrame({"t": [datetime.time(0, 0), datetime.time(12, 0)] * 3}))
    assert encoder.numeric_center_[0] == pytest.approx(6 * 3600)
