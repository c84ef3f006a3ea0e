"""Generated data sets in the scenario DeepFM was built for: ad clicks."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

AGES = ["18-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59", "60-64", "65+"]
GENDERS = ["female", "male"]
INTERESTS = ["cooking", "fashion", "gaming", "music", "outdoors", "sports", "tech", "travel"]
AD_CATEGORIES = ["fashion", "food", "games", "sports", "travel"]
DEVICES = ["desktop", "phone", "tablet"]

#: The interests that make an ad category clearly more attractive.
MATCHING_INTERESTS = {
    "fashion": {"fashion"},
    "food": {"cooking"},
    "games": {"gaming", "tech"},
    "sports": {"sports", "outdoors"},
    "travel": {"travel", "outdoors"},
}

#: The pairs of fields whose interaction drives clicks in ``make_ad_clicks``.
INTERACTING_PAIRS = [
    ("age", "ad_category"),
    ("gender", "ad_category"),
    ("interests", "ad_category"),
    ("device_type", "advertiser_id"),
    ("hour", "device_type"),
]

_MODEL_SEED = 2017


def make_ad_clicks(n_samples=10_000, *, n_advertisers=100, interaction_strength=1.0, random_state=None):
    """Generate ad impressions and whether each was clicked.

    The fields are those of the DeepFM seed scenario:

    - user: ``age`` bucket (10 categories), ``gender`` (2), ``interests``
      (a list of 0 to 4 of 8 topics, a multi-valued field);
    - ad: ``ad_category`` (5) and ``advertiser_id`` (``n_advertisers``,
      drawn from a Zipf-like long tail, so that many advertisers are rare);
    - context: ``device_type`` (3) and ``hour`` of the day (a float in
      [0, 24), a numeric field).

    Clicks follow a hidden logistic model, the same for every call
    (``random_state`` seeds the impressions and the clicks drawn from it): a
    base rate of about 15 %, a main effect per category, a daily cycle in
    ``hour``, and pairwise interactions for the pairs in
    ``INTERACTING_PAIRS``, scaled by ``interaction_strength``:

    - age, gender and interests with ad category, and device with
      advertiser: dot products of 4-dimensional latent vectors (a
      factorization machine; a user's interests are averaged), plus a bonus
      when an interest matches the ad category (``MATCHING_INTERESTS``);
    - hour with device: phones are used late in the evening, desktops in
      office hours.

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
        Seeds the impressions and the clicks.

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, 7)
        Columns ``age``, ``gender``, ``interests`` (lists of str),
        ``ad_category``, ``advertiser_id``, ``device_type`` (str) and
        ``hour`` (float).
    y : ndarray of shape (n_samples,)
        1 for a click, 0 otherwise.

    Examples
    --------
    >>> from skdeepfm.datasets import make_ad_clicks
    >>> X, y = make_ad_clicks(n_samples=5, random_state=0)
    >>> X.shape, y.shape
    ((5, 7), (5,))
    >>> list(X.columns)
    ['age', 'gender', 'interests', 'ad_category', 'advertiser_id', 'device_type', 'hour']
    """
    if not (isinstance(n_samples, Integral) and n_samples >= 1):
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if not (isinstance(n_advertisers, Integral) and n_advertisers >= 1):
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
    interest_latent = model_rng.normal(0.0, 1.0, (len(INTERESTS), 4))
    interest_popularity = model_rng.dirichlet(np.full(len(INTERESTS), 3.0))

    codes = {
        name: rng.choice(len(values), size=n_samples, p=frequencies[name]) for name, values in fields.items()
    }
    hour = np.round(rng.uniform(0.0, 24.0, n_samples), 2)
    n_interests = rng.binomial(4, 0.45, n_samples)
    interest_codes = [
        rng.choice(len(INTERESTS), size=k, replace=False, p=interest_popularity) for k in n_interests
    ]

    logit = np.full(n_samples, -2.0)
    for name in fields:
        logit += main_effects[name][codes[name]]
    logit += 0.3 * np.sin(2 * np.pi * (hour - 14.0) / 24.0)
    for left, right in [("age", "ad_category"), ("gender", "ad_category"), ("device_type", "advertiser_id")]:
        pair = np.einsum("nk,nk->n", latent[left][codes[left]], latent[right][codes[right]])
        logit += interaction_strength * 0.5 * pair
    ad_latent = latent["ad_category"][codes["ad_category"]]
    ad_names = fields["ad_category"][codes["ad_category"]]
    for i, chosen in enumerate(interest_codes):
        if len(chosen):
            affinity = interest_latent[chosen].mean(0) @ ad_latent[i]
            matches = MATCHING_INTERESTS[ad_names[i]] & {INTERESTS[c] for c in chosen}
            logit[i] += interaction_strength * (0.5 * affinity + 1.0 * bool(matches))
    evening = np.exp(-0.5 * ((hour - 21.5) / 2.0) ** 2)
    office = np.exp(-0.5 * ((hour - 11.0) / 3.0) ** 2)
    device = fields["device_type"][codes["device_type"]]
    logit += interaction_strength * (
        1.2 * evening * (device == "phone") + 0.8 * office * (device == "desktop")
    )

    y = (rng.random_sample(n_samples) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    X = pd.DataFrame(
        {
            "age": fields["age"][codes["age"]],
            "gender": fields["gender"][codes["gender"]],
            "interests": pd.Series(
                [[INTERESTS[c] for c in chosen] for chosen in interest_codes], dtype=object
            ),
            "ad_category": ad_names,
            "advertiser_id": fields["advertiser_id"][codes["advertiser_id"]],
            "device_type": device,
            "hour": hour,
        }
    )
    return X, y
