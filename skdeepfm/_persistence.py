"""Saving and loading skdeepfm models without pickle.

A model file is a zip archive holding

- ``model.json``: the format name and version, the versions of skdeepfm,
  torch, scikit-learn, numpy, pandas and Python that wrote it, and the model
  as a tree of typed nodes (see :func:`save`);
- ``arrays/<n>.npy``: one member per numeric numpy array or torch tensor,
  read back with ``allow_pickle=False``.

Loading builds objects only from JSON values, numeric arrays and an
allowlist of skdeepfm classes looked up by module and name: nothing in a
file can make :func:`load` import a module, call a function it names or
unpickle anything.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import sys
import tempfile
import warnings
import zipfile
import zlib

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import BaseEstimator

from ._model_tree import _allowed_classes, _class_key, _CorruptFile, _Reader, _Writer

__all__ = ["load", "save"]

#: The name written in every model file.
FORMAT_NAME = "skdeepfm-model"
#: The version of the file layout and node types that this module writes.
FORMAT_VERSION = 1
#: The JSON document inside the archive.
DOCUMENT = "model.json"


def _running_version():
    return importlib.import_module("skdeepfm").__version__


def _library_versions():
    return {
        "skdeepfm": _running_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


def _release(version):
    """The numeric release of a version string, e.g. ``(0, 2)`` for "0.2.0rc1" (trailing zeros dropped)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(version))
    release = [int(part) for part in match.group(1).split(".")] if match else []
    while release and release[-1] == 0:
        release.pop()
    return tuple(release)


def save(model, path):
    """Save a skdeepfm estimator to a file that loads without pickle.

    The file is a zip archive: a JSON document (the format version, the
    versions of skdeepfm, torch, scikit-learn, numpy, pandas and Python, the
    estimator's class, parameters and fitted attributes) and one ``.npy``
    member per numeric array or tensor. :func:`load` reads it back without
    unpickling anything. The file is written only once the whole model has
    been encoded, so a model that cannot be saved leaves no file behind.

    Parameters
    ----------
    model : DeepFMClassifier, DeepFMRegressor or FieldEncoder
        A fitted or unfitted skdeepfm estimator. The network (trained on any
        device) and the optimizer state are stored as CPU tensors.
    path : str, os.PathLike or binary file object
        Where to write; an existing file is replaced. By convention the
        name ends in ``.skdeepfm``.

    Raises
    ------
    TypeError
        If ``model`` is not a skdeepfm estimator, or if it holds a value that
        the format cannot store (the message names the attribute, e.g.
        ``DeepFMClassifier.encoder_.categories_[0][3]``, and for a category
        its column). Categories can be ``str``, ``int``, ``float``,
        ``bool``, ``bytes``, ``None``, ``complex``, ``Decimal``,
        ``Fraction``, tuples and frozensets of these, numpy scalars,
        ``datetime``, ``date``, ``time``, ``timedelta`` and the pandas
        ``Timestamp``, ``Timedelta``, ``NaT`` and ``NA``.

    See Also
    --------
    load : Read a model saved by this function.

    Notes
    -----
    Each node of the JSON tree is a JSON value (``null``, a boolean, an
    integer, a finite float, a string, a list) or an object whose ``"$"``
    entry names its type: ``dict`` (a list of key/value pairs, so keys of
    any type), ``tuple``, ``set``, ``frozenset``, ``float`` (NaN and
    infinities), ``bytes`` (base64), ``numpy`` (a numpy scalar: dtype and
    base64 bytes), ``ndarray`` (the name of a ``.npy`` member),
    ``object_array`` (shape and the nodes of its items, or the number of
    an earlier one that is the same array), ``tensor``,
    ``network`` (``DeepFMNetwork.get_config()`` and the state dict's
    tensors), ``estimator`` (class, parameters, other attributes),
    ``object`` / ``dataclass`` (class and attributes), ``RandomState``,
    ``Generator`` and the date and time types above. ``model.json``
    records the versions under ``"versions"``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from skdeepfm import DeepFMClassifier
    >>> from skdeepfm._persistence import load, save
    >>> X = pd.DataFrame({"device": ["phone", "tablet", "phone", "tv"] * 5})
    >>> y = ["click", "skip", "click", "skip"] * 5
    >>> clf = DeepFMClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.skdeepfm")
    ...     save(clf, path)
    ...     loaded = load(path)
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    allowed = _allowed_classes()
    kind = type(model)
    if not isinstance(model, BaseEstimator) or allowed.get(_class_key(kind)) is not kind:
        raise TypeError(
            "The 'model' argument of save must be a skdeepfm estimator (DeepFMClassifier, "
            f"DeepFMRegressor or FieldEncoder); got an instance of {kind.__module__}.{kind.__qualname__}."
        )
    writer = _Writer(allowed)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _library_versions(),
        "class": _class_key(kind),
        "model": writer.encode(model, kind.__name__),
    }
    text = json.dumps(document, allow_nan=False, indent=1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(DOCUMENT, text.encode("utf-8"))
        for name, array in writer.arrays.items():
            member = io.BytesIO()
            np.save(member, array, allow_pickle=False)
            archive.writestr(name, member.getvalue())
    if hasattr(path, "write"):
        path.write(buffer.getvalue())
        return
    path = os.fspath(path)
    # Write beside the target, then rename: a failure never leaves half a file.
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".skdeepfm-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _open_archive(path):
    name = repr(os.fspath(path)) if not hasattr(path, "read") else repr(path)
    try:
        archive = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{name} is not a skdeepfm model file: it is not a zip archive.") from exc
    return archive, name


def load(path):
    """Load a model saved by :func:`save`, without unpickling anything.

    Only JSON values, numeric ``.npy`` arrays (read with
    ``allow_pickle=False``) and skdeepfm's own classes are built: a file
    naming any other class is refused. Predictions of the loaded model are
    bit for bit those of the saved one.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        A file written by :func:`save`.

    Returns
    -------
    model : DeepFMClassifier, DeepFMRegressor or FieldEncoder
        The estimator, fitted if it was saved fitted. Its network is on the
        CPU, in eval mode; its ``device`` parameter is the saved one (set
        it with ``set_params(device="cpu")`` to train on without a GPU).
        Its ``_saved_with`` attribute holds the versions recorded in the
        file, a dict with the keys "skdeepfm", "torch", "scikit-learn",
        "numpy", "pandas" and "python"; it is not saved again.

    Raises
    ------
    ValueError
        If the file is not a zip archive, lacks the model document or one of
        its arrays, was written in an unknown format version, names a class
        that is not skdeepfm's, or is otherwise corrupted. The message names
        the file.

    Warns
    -----
    UserWarning
        If the file was saved by a newer skdeepfm than the running one.

    See Also
    --------
    save : Write a model.

    Notes
    -----
    Constructor parameters that did not exist in the skdeepfm that wrote
    the file take their default values.

    Examples
    --------
    >>> import io
    >>> from skdeepfm import FieldEncoder
    >>> from skdeepfm._persistence import load, save
    >>> buffer = io.BytesIO()
    >>> save(FieldEncoder(min_frequency=2).fit([["a"], ["b"], ["a"]]), buffer)
    >>> encoder = load(io.BytesIO(buffer.getvalue()))
    >>> encoder.categories_[0].tolist()
    ['a']
    >>> sorted(encoder._saved_with)
    ['numpy', 'pandas', 'python', 'scikit-learn', 'skdeepfm', 'torch']
    """
    archive, name = _open_archive(path)
    with archive:
        try:
            document = _read_document(archive, name)
            versions = document.get("versions")
            versions = dict(versions) if isinstance(versions, dict) else {}
            _check_versions(document, versions, name)
            model = _Reader(archive, _allowed_classes()).decode(document.get("model"), "model")
            if not isinstance(model, BaseEstimator):
                raise _CorruptFile("its model is not an estimator")
        except _CorruptFile as exc:
            raise ValueError(f"{name} is not a valid skdeepfm model file: {exc}.") from exc
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ValueError(
                f"{name} is not a valid skdeepfm model file: the archive is damaged ({exc})."
            ) from exc
        except (KeyError, TypeError, IndexError, AttributeError, RuntimeError, OverflowError) as exc:
            raise ValueError(
                f"{name} is not a valid skdeepfm model file: {type(exc).__name__}: {exc}"
            ) from exc
        except ValueError as exc:
            if isinstance(exc, _FileError):
                raise
            raise ValueError(f"{name} is not a valid skdeepfm model file: {exc}") from exc
    model._saved_with = versions
    return model


class _FileError(ValueError):
    """An error about the file as a whole, raised as it is."""


def _read_document(archive, name):
    if DOCUMENT not in archive.namelist():
        raise _FileError(f"{name} is not a skdeepfm model file: it has no {DOCUMENT!r} member.")
    try:
        document = json.loads(archive.read(DOCUMENT).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _FileError(f"{name} is not a skdeepfm model file: {DOCUMENT!r} is not valid JSON.") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise _FileError(
            f'{name} is not a skdeepfm model file: its {DOCUMENT!r} does not have "format": "{FORMAT_NAME}".'
        )
    return document


def _check_versions(document, versions, name):
    """Refuse unknown format versions; warn about files from a newer skdeepfm."""
    saved, running = versions.get("skdeepfm"), _running_version()
    format_version = document.get("format_version")
    if type(format_version) is not int or not 1 <= format_version <= FORMAT_VERSION:
        newer = type(format_version) is int and format_version > FORMAT_VERSION
        raise _FileError(
            f"{name} has format version {format_version!r}, but skdeepfm {running} reads format "
            f"version {FORMAT_VERSION} at most"
            + (f"; it was saved by skdeepfm {saved}: upgrade skdeepfm to load it." if newer else ".")
        )
    if saved is not None and _release(saved) > _release(running):
        warnings.warn(
            f"{name} was saved by skdeepfm {saved}, which is newer than the running skdeepfm "
            f"{running}; loading may fail or the model may predict differently. Upgrade "
            f"skdeepfm to {saved} or later.",
            UserWarning,
            stacklevel=3,
        )
