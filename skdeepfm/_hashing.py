"""Hashed fields: codes from a stable hash of each value, with nothing to learn.

numpy, pandas and hashlib only: this module never imports torch. With
``FieldEncoder(hash_buckets=B)``, the code of a value in a categorical or
multi-valued field is ``N_RESERVED + stable_hash(value) % B``, so that a
value first seen after ``fit`` (in a later chunk of a stream) gets a code of
its own, whose vector can be trained.

The hash is BLAKE2b (8-byte digest, read little-endian) of a canonical,
type-tagged byte string of the value (:func:`canonical_bytes`), never
Python's ``hash``, which is salted per process: codes are the same in every
process, Python version and platform. Two values share their bytes exactly
when the learned vocabulary would hold them as one category, that is when
Python holds them equal: ``1``, ``1.0``, ``np.int8(1)`` and ``True`` are one
value; ``"1"``, ``b"1"`` and ``1`` are three.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from hashlib import blake2b
from numbers import Complex, Integral, Real

import numpy as np
import pandas as pd

from ._codes import MISSING_INDEX, N_RESERVED
from ._fields import CATEGORICAL, MultiValueField, _hashable


def check_hash_parameters(owner, hash_buckets, min_frequency, max_categories):
    """Reject ``hash_buckets`` together with ``min_frequency`` or ``max_categories``.

    A hashed field keeps every value, each on one of its ``hash_buckets``
    codes: there is no vocabulary to set rare categories aside from.
    ``owner`` is the class name that the message names.
    """
    if hash_buckets is not None and (min_frequency is not None or max_categories is not None):
        raise ValueError(
            f"The 'hash_buckets' parameter of {owner} cannot be combined with 'min_frequency' or "
            "'max_categories': a hashed field keeps every value, on one of its hash_buckets codes. "
            f"Got hash_buckets={hash_buckets!r}, min_frequency={min_frequency!r} and "
            f"max_categories={max_categories!r} instead."
        )


def _number_bytes(value):
    """Bytes of a real number by its exact value: equal numbers, equal bytes."""
    if isinstance(value, float | np.floating):
        value = float(value)
        if value.is_integer():
            return b"i%d" % int(value)
        if not math.isfinite(value):
            return b"f" + repr(value).encode()
        numerator, denominator = value.as_integer_ratio()
        return b"q%d/%d" % (numerator, denominator)
    try:
        exact = Fraction(value)
    except (TypeError, ValueError, OverflowError):  # infinite or NaN Decimal, other reals
        return _number_bytes(float(value))
    if exact.denominator == 1:
        return b"i%d" % exact.numerator
    return b"q%d/%d" % (exact.numerator, exact.denominator)


def _framed(parts):
    return b"".join(b"%d:" % len(part) + part for part in parts)


def canonical_bytes(value):
    """The byte string that :func:`stable_hash` hashes, tagged by kind of value.

    - ``str`` (and ``np.str_``): ``s`` and its UTF-8 bytes;
    - ``bytes`` (and ``np.bytes_``): ``b`` and the bytes themselves;
    - numbers (``bool``, ``int``, ``float``, NumPy scalars, ``Decimal``,
      ``Fraction``, ``complex`` with no imaginary part): by their exact
      value, so that ``True``, ``1``, ``1.0`` and ``np.float32(1)`` share
      ``i1``, as they share a category in the learned vocabulary;
    - tuples and frozensets: from the bytes of their elements;
    - datetimes and timedeltas (``datetime``, ``pd.Timestamp``,
      ``np.datetime64``, ...): ISO 8601 text, in UTC when tz-aware;
    - anything else: its type's full name and its ``repr``.

    Parameters
    ----------
    value : object
        A category: one cell of a categorical field or one element of a
        multi-valued one.

    Returns
    -------
    key : bytes
        Equal for values that Python holds equal (within the kinds above).

    Examples
    --------
    >>> from skdeepfm._hashing import canonical_bytes
    >>> canonical_bytes("1"), canonical_bytes(b"1"), canonical_bytes(1.0), canonical_bytes(True)
    (b's1', b'b1', b'i1', b'i1')
    """
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, datetime | np.datetime64):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            return b"MZ" + stamp.tz_convert("UTC").isoformat().encode()
        return b"M" + stamp.isoformat().encode()
    # Before the numbers: np.timedelta64 is registered as an Integral.
    if isinstance(value, timedelta | np.timedelta64):
        return b"m" + pd.Timedelta(value).isoformat().encode()
    if isinstance(value, Integral | np.bool_):
        return b"i%d" % int(value)
    if isinstance(value, Real | Decimal):  # Decimal is not registered as a Real
        return _number_bytes(value)
    if isinstance(value, Complex):
        number = complex(value)
        if number.imag == 0:
            return _number_bytes(number.real)
        return b"c" + _framed([_number_bytes(number.real), _number_bytes(number.imag)])
    if isinstance(value, tuple):
        return b"t" + _framed(map(canonical_bytes, value))
    if isinstance(value, frozenset):
        return b"F" + _framed(sorted(map(canonical_bytes, value)))
    if value is None:
        return b"n"
    kind = type(value)
    return b"o" + f"{kind.__module__}.{kind.__qualname__}:{value!r}".encode("utf-8", "surrogatepass")


def _hash_keys(keys):
    """64-bit BLAKE2b of each byte string, as a uint64 array."""
    digests = b"".join([blake2b(key, digest_size=8).digest() for key in keys])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def stable_hash(value):
    """64-bit hash of a category, the same in every process and on every platform.

    Parameters
    ----------
    value : object
        A category; see :func:`canonical_bytes` for the values that share a
        hash.

    Returns
    -------
    hash : int
        In ``[0, 2**64)``.

    Examples
    --------
    >>> from skdeepfm._hashing import stable_hash
    >>> stable_hash("red") == stable_hash(np.str_("red"))
    True
    >>> stable_hash(1) == stable_hash(1.0) != stable_hash("1")
    True
    """
    return int(_hash_keys([canonical_bytes(value)])[0])


def _python_values(uniques):
    """The uniques of a column as Python objects; datetimes as Timestamps, not integers."""
    if uniques.dtype.kind in "mM":
        return list(pd.Series(uniques))
    return uniques.tolist()


def hash_codes(values, hash_buckets):
    """Code of each value: ``N_RESERVED + stable_hash(value) % hash_buckets``.

    Each distinct value is hashed once: the column is factorized first.
    Missing values (None, NaN, ``pd.NA``, ``NaT``) get :data:`MISSING_INDEX`;
    unhashable cells (a dict, a list in a categorical field) are keyed by
    their ``repr``, as in the learned vocabulary.

    Parameters
    ----------
    values : ndarray of shape (n_values,)
        The cells of a column, or the elements of a multi-valued one.
    hash_buckets : int
        Number of codes that values share.

    Returns
    -------
    codes : ndarray of shape (n_values,), int64
        In ``[N_RESERVED, N_RESERVED + hash_buckets)``, or MISSING_INDEX.

    Examples
    --------
    >>> from skdeepfm._hashing import hash_codes
    >>> codes = hash_codes(np.array(["red", None, "red"], dtype=object), 16)
    >>> bool(codes[0] == codes[2] >= 3), int(codes[1])
    (True, 1)
    """
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:
        keyed = np.fromiter(map(_hashable, values), dtype=object, count=len(values))
        codes, uniques = pd.factorize(keyed, use_na_sentinel=True)
    hashes = _hash_keys([canonical_bytes(v) for v in _python_values(np.asarray(uniques))])
    unique_codes = (hashes % np.uint64(hash_buckets)).astype(np.int64) + N_RESERVED
    if not len(unique_codes):
        return np.full(len(codes), MISSING_INDEX, dtype=np.int64)
    return np.where(codes < 0, MISSING_INDEX, unique_codes[np.maximum(codes, 0)])


class HashedField:
    """A categorical field coded by :func:`hash_codes`: nothing to learn, nothing to invert."""

    kind = CATEGORICAL
    categories = None
    n_infrequent = 0

    def __init__(self, hash_buckets):
        self.hash_buckets = hash_buckets

    @property
    def dim(self):
        """Number of codes, reserved ones included."""
        return N_RESERVED + self.hash_buckets

    def fit_encode(self, values, n_samples):
        """Codes of ``values``: the same as :meth:`encode`, as nothing is learned."""
        return self.encode(values)

    def encode(self, values):
        """Codes of ``values``; a value unseen in ``fit`` gets its own hashed code."""
        return hash_codes(values, self.hash_buckets)

    def decode(self, codes):
        """Hashing is one-way: always raises."""
        raise ValueError("Hashed codes cannot be decoded: hashing is one-way.")


class HashedMultiValueField(MultiValueField):
    """A multi-valued field whose elements are coded by :func:`hash_codes`."""

    def __init__(self, hash_buckets):
        self.elements = HashedField(hash_buckets)
