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
# Three models: the default DeepFM; the same trained by plain backpropagation
# (``dnn_gradient_scale=1``), where the DNN's gradient, large because the
# embeddings start small and BatchNorm makes the DNN indifferent to their
# scale, shapes the embeddings alone and leaves the FM term near zero; and a
# model whose DNN is a single linear layer (``hidden_layer_sizes=()``), so that
# the FM term must carry every pairwise interaction. See the user guide's
# "Field interactions" page.
models = {
    "default": DeepFMClassifier(random_state=0),
    "dnn_gradient_scale=1": DeepFMClassifier(dnn_gradient_scale=1.0, random_state=0),
    "hidden_layer_sizes=()": DeepFMClassifier(hidden_layer_sizes=(), random_state=0),
}
fig, axes = plt.subplots(1, 3, figsize=(19, 5.5))
for ax, (title, model) in zip(axes, models.items(), strict=True):
    # The DeepFMs' small values (below 0.01) are read from the colour bar.
    small = not title.startswith("hidden")
    FieldInteractionDisplay.from_estimator(model.fit(X, y), X, ax=ax, include_values=not small)
    ax.set_title(title)
fig.tight_layout()

# %%
# The strongest pairs of each model, over the training rows. Here, with ten
# thousand rows and five planted pairs, the DNN still carries most pairs in
# both DeepFMs: the default's FM values are a few times those of plain
# backpropagation, which are nearly flat, but they stay small, and the pair
# they single out need not be a planted one. The FM-only model must carry the
# pairs and gives the largest, most structured values.
# The values measure how much the FM term uses a pair, not how much the pair
# matters on its own: a field whose vectors are long (because it
# also carries a strong main effect, or many categories) scores high with every
# partner, so compare a pair with the other pairs of the same two fields.
for title, model in models.items():
    interactions = model.field_interactions(X)
    upper = interactions.where(lambda m: m.index.to_numpy()[:, None] < m.columns.to_numpy())
    print(title)
    print(upper.stack().sort_values(ascending=False).head(5).round(3), "\n")
