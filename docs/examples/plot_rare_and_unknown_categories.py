# ruff: noqa: D205, D400
"""
Rare and unknown categories
===========================

Advertisers follow a long tail: a few are in most impressions, many are rare,
and new ones appear after training. Categories unseen in ``fit`` never raise:
they get a reserved code. ``min_frequency`` groups rare categories into one
trained "infrequent" code, which unseen categories then join.

This example compares the default encoding with ``min_frequency=30`` on test
impressions grouped by how often their advertiser was seen in training.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import make_ad_clicks

X_train, y_train = make_ad_clicks(n_samples=8_000, n_advertisers=400, random_state=0)
X_test, y_test = make_ad_clicks(n_samples=8_000, n_advertisers=400, random_state=1)

# Make one in twelve test advertisers brand new.
rng = np.random.default_rng(0)
new = rng.random(len(X_test)) < 1 / 12
X_test.loc[new, "advertiser_id"] = [f"adv_new_{i}" for i in range(new.sum())]

# %%
# How often each test row's advertiser was seen in training:
seen = X_train["advertiser_id"].value_counts()
counts = X_test["advertiser_id"].map(seen).fillna(0).to_numpy()
groups = pd.cut(counts, [-1, 0, 29, np.inf], labels=["unseen", "rare (1-29)", "frequent (30+)"])
print(pd.Series(groups).value_counts().sort_index())

# %%
# Two models that differ only in ``min_frequency``.
models = {
    "default": DeepFMClassifier(random_state=0),
    "min_frequency=30": DeepFMClassifier(min_frequency=30, random_state=0),
}
for name, model in models.items():
    model.fit(X_train, y_train)
    encoder = model.encoder_
    j = list(X_train.columns).index("advertiser_id")
    print(
        f"{name}: {encoder.field_dims_[j]} advertiser codes, "
        f"{encoder.n_infrequent_categories_[j]} advertisers grouped as infrequent"
    )

# %%
# ROC AUC per group of test rows. Unseen advertisers get the untrained
# unknown code in the default model and the trained infrequent code with
# ``min_frequency``. One fit per model on 8,000 rows: differences of a few
# hundredths between the models can come from the fit's randomness as much as
# from the encoding.
table = pd.DataFrame(
    {
        name: [
            roc_auc_score(y_test[groups == group], model.predict_proba(X_test[groups == group])[:, 1])
            for group in groups.categories
        ]
        for name, model in models.items()
    },
    index=groups.categories,
)
print(table.round(4))

ax = table.plot.bar(rot=0, figsize=(7, 4))
ax.set_ylabel("test ROC AUC")
ax.set_xlabel("advertiser seen in training")
ax.set_ylim(0.5, 1.0)
ax.set_title("Rare and unseen advertisers")
ax.legend(loc="upper left")
plt.tight_layout()

# %%
# Missing values and new elements of a multi-valued field are fine too:
row = X_test.head(1).assign(device_type=None, interests=[["knitting", "travel"]], hour=np.nan)
print(models["default"].predict_proba(row))
