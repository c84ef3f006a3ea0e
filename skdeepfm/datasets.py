"""Generated data sets in the scenario DeepFM was built for: ad clicks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

AGES = ["18-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59", "60-64", "65+"]
GENDERS = ["female", "male"]
AD_CATEGORIES = ["fashion", "food", "games", "sports", "travel"]
DEVICES = ["desktop", "phone", "tablet"]

_MODEL_SEED = 2017

#: The pairs of fields whose interaction drives clicks in ``make_ad_clicks``.
INTERACTING_PAIRS = [("age", "ad_category"), ("gender", "ad_category"), ("device_type", "advertiser_id")]


def make_ad_clicks(n_samples=10_000, *, n_advertisers=100, interaction_strength=1.0, random_state=None):
    """Generate ad impressions and whether each was clicked.

    The fields are those of the DeepFM seed scenario: the user's ``age``
    bucket (10 categories) and ``gender`` (2), the ad's ``ad_category`` (5)
    and ``advertiser_id`` (``n_advertisers``, drawn from a Zipf-like long
    tail, so that many advertisers are rare), and the context's
    ``device_type`` (3).

    Clicks follow a hidden logistic model, the same for every call
    (``random_state`` seeds the impressions and the clicks drawn from it): a base rate of about 15 %, a main
    effect per category, and pairwise interactions for the pairs in
    ``INTERACTING_PAIRS`` -- age with ad category, gender with ad category,
    device with advertiser -- each the dot product of two 4-dimensional latent
    vectors (a factorization machine), scaled by ``interaction_strength``.
    A linear model on one-hot columns cannot represent the interactions;
    DeepFM can.

    Parameters
    ----------
    n_samples : int, default=10_000
        Number of impressions.
    n_advertisers : int, default=100
        Number of distinct advertisers.
    interaction_strength : float, default=1.0
        Scale of the pairwise interactions; 0 leaves main effects only.
    random_state : int, RandomState instance or None, default=None
        Seeds both the hidden model and the impressions.

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, 5)
        Columns ``age``, ``gender``, ``ad_category``, ``advertiser_id``,
        ``device_type``, all strings.
    y : ndarray of shape (n_samples,)
        1 for a click, 0 otherwise.

    Examples
    --------
    >>> from skdeepfm.datasets import make_ad_clicks
    >>> X, y = make_ad_clicks(n_samples=5, random_state=0)
    >>> X.shape, y.shape
    ((5, 5), (5,))
    >>> list(X.columns)
    ['age', 'gender', 'ad_category', 'advertiser_id', 'device_type']
    """
    if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if not (isinstance(n_advertisers, (int, np.integer)) and n_advertisers >= 1):
        raise ValueError(f"n_advertisers must be a positive int; got {n_advertisers!r}.")
    rng = check_random_state(random_state)
    # The hidden model is the same for every call, so that data generated
    # with different random states (a training and a test set) share it.
    model_rng = np.random.RandomState(_MODEL_SEED)
    advertisers = np.array([f"adv_{i:04d}" for i in range(n_advertisers)], dtype=object)
    fields = {
        "age": np.array(AGES, dtype=object),
        "gender": np.array(GENDERS, dtype=object),
        "ad_category": np.array(AD_CATEGORIES, dtype=object),
        "advertiser_id": advertisers,
        "device_type": np.array(DEVICES, dtype=object),
    }
    zipf = 1.0 / np.arange(1, n_advertisers + 1) ** 1.1
    frequencies = {
        "age": model_rng.dirichlet(np.full(len(AGES), 5.0)),
        "gender": np.array([0.5, 0.5]),
        "ad_category": model_rng.dirichlet(np.full(len(AD_CATEGORIES), 5.0)),
        "advertiser_id": zipf / zipf.sum(),
        "device_type": np.array([0.3, 0.55, 0.15]),
    }
    main_effects = {name: model_rng.normal(0.0, 0.4, len(values)) for name, values in fields.items()}
    latent = {name: model_rng.normal(0.0, 1.0, (len(values), 4)) for name, values in fields.items()}

    codes = {
        name: rng.choice(len(values), size=n_samples, p=frequencies[name]) for name, values in fields.items()
    }
    logit = np.full(n_samples, -1.9)
    for name in fields:
        logit += main_effects[name][codes[name]]
    for left, right in INTERACTING_PAIRS:
        pair = np.einsum("nk,nk->n", latent[left][codes[left]], latent[right][codes[right]])
        logit += interaction_strength * 0.5 * pair
    y = (rng.random_sample(n_samples) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    X = pd.DataFrame({name: values[codes[name]] for name, values in fields.items()})
    return X, y
