# ruff: noqa: D205, D400
"""
Ad clicks: DeepFM against a one-hot logistic regression
=======================================================

Will this user click this ad? :func:`~skdeepfm.datasets.make_ad_clicks`
generates impressions whose clicks depend on pairs of fields (age and gender
with the ad category, interests with the ad category, device with advertiser
and with the hour). A logistic regression on one-hot columns sees each
category alone; DeepFM learns the pairs.
"""

# %%
# The data: seven raw columns, no encoding by hand. ``interests`` holds lists
# (a multi-valued field) and ``hour`` floats (a numeric field).
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import make_ad_clicks
from skdeepfm.plot import plot_learning_curve

X, y = make_ad_clicks(n_samples=12_000, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
print(X.head())
print(f"click rate: {y.mean():.3f}")

# %%
# DeepFM with its default parameters. With more than 1,000 rows, 10 % of the
# training rows are held out and training stops when their log-loss stops
# improving (the learning rate drops tenfold after each epoch without a
# better one).
clf = DeepFMClassifier(random_state=0).fit(X_train, y_train)
proba = clf.predict_proba(X_test)[:, 1]
print(f"DeepFM: {clf.n_iter_} epochs, kept epoch's validation log-loss {-clf.best_validation_score_:.4f}")


# %%
# The baseline: one-hot columns for the categories, one column per interest,
# the hour in 3-hour bins, and a logistic regression.
def one_hot(frame):
    """One-hot columns of the ad-click fields, for a linear model."""
    columns = ["age", "gender", "ad_category", "advertiser_id", "device_type"]
    parts = [
        pd.get_dummies(frame[columns].astype(str)),
        frame["interests"].str.join("|").str.get_dummies().add_prefix("interest_"),
        pd.get_dummies((frame["hour"] // 3).astype(int).astype(str), prefix="hour"),
    ]
    return pd.concat(parts, axis=1)


train_columns = one_hot(X_train).columns
logistic = LogisticRegression(max_iter=2_000).fit(one_hot(X_train), y_train)
logistic_proba = logistic.predict_proba(one_hot(X_test).reindex(columns=train_columns, fill_value=0))[:, 1]

scores = pd.DataFrame(
    {
        "test ROC AUC": [roc_auc_score(y_test, p) for p in (logistic_proba, proba)],
        "test log-loss": [log_loss(y_test, p) for p in (logistic_proba, proba)],
    },
    index=["one-hot logistic regression", "DeepFMClassifier"],
)
print(scores.round(4))

# %%
# The learning curve: the training loss of each epoch (left axis) and the
# held-out score, minus the log-loss (right axis). The dotted line marks the epoch whose
# weights were kept.
ax = plot_learning_curve(clf)
ax.figure.tight_layout()
