# ruff: noqa: D205, D400
"""
Which pairs of fields does the FM term use?
===========================================

DeepFM's FM term adds a dot product ``<v_i, v_j>`` for every pair of fields.
:meth:`~skdeepfm.DeepFMClassifier.field_interactions` averages its absolute
value per pair, and :func:`~skdeepfm.plot.plot_field_interactions` draws the
result. In :func:`~skdeepfm.datasets.make_ad_clicks`, clicks depend on the
pairs listed in ``INTERACTING_PAIRS``.
"""

# %%
import matplotlib.pyplot as plt

from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import INTERACTING_PAIRS, make_ad_clicks
from skdeepfm.plot import plot_field_interactions

print("pairs that drive clicks:", INTERACTING_PAIRS)
X, y = make_ad_clicks(n_samples=10_000, random_state=0)

# %%
# Two models: the default DeepFM, and one whose DNN is a single linear layer
# (``hidden_layer_sizes=()``), so that the FM term must carry every pairwise
# interaction. With the default DNN, the DNN learns much of the pairwise
# structure itself, and the FM values stay small; see the user guide's
# "Field interactions" page.
default = DeepFMClassifier(random_state=0).fit(X, y)
fm_only = DeepFMClassifier(hidden_layer_sizes=(), random_state=0).fit(X, y)

fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
plot_field_interactions(default, X, ax=axes[0])
axes[0].set_title("default DNN (400, 400, 400)")
plot_field_interactions(fm_only, X, ax=axes[1])
axes[1].set_title("hidden_layer_sizes=()")
fig.tight_layout()

# %%
# The strongest pairs of the FM-only model, over the training rows. The values
# measure how much the FM term uses a pair, not how much the pair matters on
# its own: a field whose vectors are long (because it also carries a strong
# main effect, or many categories) scores high with every partner. Here the
# planted pairs of ``ad_category`` with ``interests``, ``gender`` and ``age``
# and of ``device_type`` with ``advertiser_id`` rank high, beside pairs that
# merely share a long-vector field.
pairs = fm_only.field_interactions(X).where(lambda m: m.index.to_numpy()[:, None] < m.columns.to_numpy())
print(pairs.stack().sort_values(ascending=False).head(6).round(3))
