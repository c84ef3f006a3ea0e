"""A FieldEncoder fitted from summaries of blocks of rows, without the rows in one place.

numpy and pandas only. Each block (the rows one process holds) is summarised
where it is: the kind of each field, and for each learned field its
distinct values and how often each occurs (the elements of a multi-valued
field, the values present of a numeric one). :func:`fit_from_summaries`
merges the blocks' summaries into the encoder that ``FieldEncoder.fit``
learns from all the rows: the same vocabularies, infrequent categories and
medians and quartiles; a numeric field's standard deviation (its scale
when the interquartile range is zero) may differ in the last bits, being
summed in another order. ``code_counts_`` is left to the caller: the sum
over the blocks of ``FieldEncoder._code_counts`` of their encoding.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._fields import (
    CATEGORICAL,
    MULTIVALUE,
    NUMERIC,
    _as_float,
    _check_finite,
    _factorize,
    _factorize_counts,
    column_name,
    flatten_cells,
    plain_values,
)
from ._kinds import field_kinds


def summarize_columns(encoder, columns):
    """The kinds and summaries of one block's validated ``columns`` for (unfitted) ``encoder``.

    Returns
    -------
    summary : dict
        ``kinds`` (one per field), ``fields`` (per field: ``(distinct values,
        counts)``, or None for a hashed field), ``n_samples`` and
        ``warnings`` (the ``(message, category)`` of the warnings that the
        kinds raised, for the process that fits to raise again).
    """
    names = getattr(encoder, "feature_names_in_", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kinds = field_kinds(columns, names, encoder.numeric_features, encoder.multivalue_features)
    fields = [
        None
        if kind != NUMERIC and encoder.hash_buckets is not None
        else _distinct_counts(kind, column, column_name(encoder, j))
        for j, (kind, column) in enumerate(zip(kinds, columns, strict=True))
    ]
    return {
        "kinds": kinds,
        "fields": fields,
        "n_samples": len(columns[0]),
        "warnings": [(str(w.message), w.category) for w in caught],
    }


def _distinct_counts(kind, column, name):
    raw = plain_values(column, keep_arrow_strings=kind == CATEGORICAL, keep_arrow_lists=kind == MULTIVALUE)
    if kind != MULTIVALUE:
        _check_finite(raw, name)
    if kind == NUMERIC:
        floats = _as_float(raw, name)
        return np.unique(floats[~np.isnan(floats)], return_counts=True)
    if kind == MULTIVALUE:
        raw, _ = flatten_cells(raw)
    _, uniques, counts = _factorize_counts(raw, sort=False)
    return np.asarray(uniques, dtype=object if uniques.dtype.kind == "O" else None), counts


def agreed_kinds(summaries):
    """The kinds the blocks agree on, or None when a field's kind differs between blocks."""
    kinds = summaries[0]["kinds"]
    return kinds if all(s["kinds"] == kinds for s in summaries) else None


def _joined(arrays):
    # Blocks may hold one field in different dtypes (ints here, objects there):
    # objects then, as pandas would concatenate the blocks' columns.
    if len({a.dtype for a in arrays}) > 1:
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays)


def fit_from_summaries(encoder, summaries):
    """Fit ``encoder`` (its ``n_features_in_`` set) from the blocks' ``summaries``, in block order.

    The blocks must agree on the kinds (:func:`agreed_kinds`).
    """
    kinds = summaries[0]["kinds"]
    n_samples = sum(s["n_samples"] for s in summaries)
    fields = encoder._new_fields(kinds)
    for j, (kind, field) in enumerate(zip(kinds, fields, strict=True)):
        parts = [s["fields"][j] for s in summaries]
        if parts[0] is None:  # hashed: nothing to learn
            continue
        values, counts = _joined([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if kind == NUMERIC:
            field.fit_present(np.repeat(values, counts))
            continue
        codes, uniques = _factorize(values, sort=True)
        counts = np.bincount(codes, weights=counts, minlength=len(uniques)).astype(np.int64)
        (field.elements if kind == MULTIVALUE else field).fit_counts(uniques, counts, n_samples)
    encoder._set_fields(fields, kinds)
    return encoder
