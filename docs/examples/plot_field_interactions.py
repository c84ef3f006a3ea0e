# ruff: noqa: D205, D400
"""
Which pairs of fields does the FM term use?
===========================================

DeepFM's FM term adds ``fm_scale * <v_i, v_j>`` to the logit for every pair of
fields. :meth:`~skdeepfm.DeepFMClassifier.field_interactions` averages its
absolute value per pair, and :class:`~skdeepfm.plot.FieldInteractionDisplay`
(or :func:`~skdeepfm.plot.plot_field_interactions`) draws the result. In
:func:`~skdeepfm.datasets.make_ad_clicks`, clicks depend on the pairs listed
in ``INTERACTING_PAIRS``.
"""

# %%
import matplotlib.pyplot as plt

from skdeepfm import DeepFMClassifier
from skdeepfm.datasets import INTERACTING_PAIRS, make_ad_clicks
from skdeepfm.plot import FieldInteractionDisplay

print("pairs that drive clicks:", INTERACTING_PAIRS)
X, y = make_ad_clicks(n_samples=10_000, random_state=0)

# %%
# Three models: the default DeepFM, whose plain FM term (``fm_scale=1``) the
# DNN leaves mostly dormant because the embeddings start small and BatchNorm
# makes the DNN indifferent to their scale; the same with ``fm_scale=100``,
# which lets the FM part learn the pairs; and a model whose DNN is a single
# linear layer (``hidden_layer_sizes=()``), so that the FM term must carry
# every pairwise interaction. See the user guide's "Field interactions" page.
models = {
    "default (fm_scale=1)": DeepFMClassifier(random_state=0),
    "fm_scale=100": DeepFMClassifier(fm_scale=100.0, random_state=0),
    "hidden_layer_sizes=()": DeepFMClassifier(hidden_layer_sizes=(), random_state=0),
}
fig, axes = plt.subplots(1, 3, figsize=(19, 5.5))
for ax, (title, model) in zip(axes, models.items(), strict=True):
    # The dormant FM term's values (about 5e-4) are read from the colour bar.
    dormant = title.startswith("default")
    FieldInteractionDisplay.from_estimator(model.fit(X, y), X, ax=ax, include_values=not dormant)
    ax.set_title(title)
fig.tight_layout()

# %%
# The strongest pairs of each model, over the training rows. The
# ``fm_scale=100`` and FM-only models give structured values, though they rank
# the pairs differently; the default's values are a thousand times smaller and
# nearly flat. The values measure how much the FM term uses a pair, not how
# much the pair matters on its own: a field whose vectors are long (because it
# also carries a strong main effect, or many categories) scores high with every
# partner, so compare a pair with the other pairs of the same two fields.
for title, model in models.items():
    interactions = model.field_interactions(X)
    upper = interactions.where(lambda m: m.index.to_numpy()[:, None] < m.columns.to_numpy())
    print(title)
    print(upper.stack().sort_values(ascending=False).head(5).round(3), "\n")
