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

import base64
import dataclasses
import datetime as dt
import importlib
import inspect
import io
import json
import math
import os
import re
import sys
import tempfile
import warnings
import zipfile
import zlib
import zoneinfo
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import BaseEstimator

__all__ = ["load", "save"]

#: The name written in every model file.
FORMAT_NAME = "skdeepfm-model"
#: The version of the file layout and node types that this module writes.
FORMAT_VERSION = 1
#: The JSON document inside the archive.
DOCUMENT = "model.json"
#: Attributes never written: they describe the file a model was loaded from.
_NOT_SAVED = frozenset({"_saved_with"})

#: Modules whose classes a file may name. Optional ones may be absent.
_CLASS_MODULES = (
    "skdeepfm._fields",
    "skdeepfm._encoder",
    "skdeepfm._hashing",
    "skdeepfm._training",
    "skdeepfm._network",
    "skdeepfm._base",
    "skdeepfm._classifier",
    "skdeepfm._regressor",
)
_BIT_GENERATORS = {
    cls.__name__: cls
    for cls in (np.random.MT19937, np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64)
}
_SUPPORTED = (
    "the format stores None, bools, numbers, strings, bytes, dates, times, numpy arrays and scalars, "
    "tensors, lists, tuples, sets, dicts and skdeepfm's own objects"
)
#: numpy dtype kinds stored as ``.npy`` members: everything but objects and records.
_PLAIN_KINDS = frozenset("biufcmMSU")


def _allowed_classes():
    """The classes a file may name: every class defined in the modules above."""
    classes = {}
    for module_name in _CLASS_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module_name:
                classes[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return classes


def _class_key(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


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


def _param_names(cls):
    """Names of the constructor parameters of an estimator class."""
    signature = inspect.signature(cls.__init__)
    return [
        p.name
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


# -- writing ------------------------------------------------------------------


class _Writer:
    """Turns an object into JSON nodes; numeric arrays go to ``self.arrays``."""

    def __init__(self, allowed):
        self.allowed = allowed
        self.arrays = {}
        # id -> member name, so that an array shared by two attributes is
        # stored once and is one array again after loading.
        self._array_refs = {}
        self._keep_alive = []
        self._object_arrays = {}
        self._on_path = set()

    def array_ref(self, array):
        key = id(array)
        if key not in self._array_refs:
            name = f"arrays/{len(self._array_refs)}.npy"
            self._array_refs[key] = name
            self._keep_alive.append(array)
            self.arrays[name] = array
        return self._array_refs[key]

    def encode(self, value, path, column=None):
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return value if math.isfinite(value) else {"$": "float", "value": repr(value)}
        if isinstance(value, np.generic):
            return self._numpy_scalar(value, path, column)
        if kind in (list, tuple, set, frozenset, dict, OrderedDict) or isinstance(
            value, BaseEstimator | torch.nn.Module
        ):
            return self._container(value, path, column)
        if kind is bytes:
            return {"$": "bytes", "value": base64.b64encode(value).decode("ascii")}
        if kind is np.ndarray:
            return self._array(value, path, column)
        if isinstance(value, torch.Tensor):
            return self._tensor(value, path, column)
        if kind is complex:
            return {
                "$": "complex",
                "real": self.encode(value.real, path),
                "imag": self.encode(value.imag, path),
            }
        if kind is Decimal:
            return {"$": "decimal", "value": str(value)}
        if kind is Fraction:
            return {"$": "fraction", "value": str(value)}
        if value is pd.NA:
            return {"$": "NA"}
        if value is pd.NaT:
            return {"$": "NaT"}
        if kind is pd.Timestamp:
            return self._timestamp(value, path, column)
        if kind is pd.Timedelta:
            return {"$": "Timedelta", "value": value.isoformat(), "unit": value.unit}
        if kind is dt.datetime:
            return {
                "$": "datetime",
                "value": value.replace(tzinfo=None).isoformat(),
                "tz": self._timezone(value.tzinfo, path, column),
                "fold": value.fold,
            }
        if kind is dt.date:
            return {"$": "date", "value": value.isoformat()}
        if kind is dt.time and value.tzinfo is None:
            return {"$": "time", "value": value.isoformat(), "fold": value.fold}
        if kind is dt.timedelta:
            return {"$": "timedelta", "value": [value.days, value.seconds, value.microseconds]}
        if kind is np.random.RandomState:
            return {"$": "RandomState", "state": self.encode(value.get_state(legacy=False), path)}
        if kind is np.random.Generator:
            return {"$": "Generator", "state": self.encode(value.bit_generator.state, path)}
        if kind is torch.device:
            return {"$": "torch.device", "value": str(value)}
        if kind is torch.dtype:
            return {"$": "torch.dtype", "value": str(value).removeprefix("torch.")}
        if _class_key(kind) in self.allowed and self.allowed[_class_key(kind)] is kind:
            return self._container(value, path, column)
        raise self._unsupported(value, path, column)

    @staticmethod
    def _unsupported(value, path, column, why=_SUPPORTED):
        where = path if column is None else f"{path} (a category of column {column!r})"
        kind = type(value)
        return TypeError(
            f"Cannot save {where}: a value of type {kind.__module__}.{kind.__qualname__}; {why}."
        )

    def _container(self, value, path, column):
        # Containers and objects are walked recursively; a reference cycle
        # would never end, so it is an error.
        if id(value) in self._on_path:
            raise TypeError(f"Cannot save {path}: it refers back to itself (a reference cycle).")
        self._on_path.add(id(value))
        try:
            kind = type(value)
            if kind is list:
                return [self.encode(item, f"{path}[{i}]", column) for i, item in enumerate(value)]
            if kind in (tuple, set, frozenset):
                items = [self.encode(item, f"{path}[{i}]", column) for i, item in enumerate(value)]
                return {"$": kind.__name__, "items": items}
            if kind in (dict, OrderedDict):
                return {
                    "$": kind.__name__,
                    "items": [
                        [
                            self.encode(key, f"{path} key {key!r}", column),
                            self.encode(item, f"{path}[{key!r}]", column),
                        ]
                        for key, item in value.items()
                    ],
                }
            if isinstance(value, torch.nn.Module):
                return self._network(value, path)
            return self._object(value, path, column)
        finally:
            self._on_path.discard(id(value))

    def _numpy_scalar(self, value, path, column):
        if value.dtype.kind not in _PLAIN_KINDS:
            raise self._unsupported(value, path, column)
        return {
            "$": "numpy",
            "dtype": value.dtype.str,
            "bytes": base64.b64encode(value.tobytes()).decode("ascii"),
        }

    def _array(self, value, path, column):
        if value.dtype.kind in _PLAIN_KINDS:
            return {"$": "ndarray", "ref": self.array_ref(value)}
        if value.dtype != object:
            raise self._unsupported(
                value, path, column, f"numpy arrays of dtype {value.dtype} are not supported"
            )
        if id(value) in self._object_arrays:
            # A vocabulary held by both the encoder and its field: written once.
            return {"$": "object_array", "same_as": self._object_arrays[id(value)]}
        items = [self.encode(item, f"{path}[{i}]", column) for i, item in enumerate(value.ravel(order="C"))]
        self._object_arrays[id(value)] = number = len(self._object_arrays)
        self._keep_alive.append(value)
        return {"$": "object_array", "id": number, "shape": list(value.shape), "items": items}

    def _tensor(self, value, path, column=None):
        if value.layout != torch.strided or value.is_quantized:
            raise self._unsupported(value, path, column, "only dense tensors can be saved")
        tensor = value.detach().to("cpu")
        dtype = str(tensor.dtype).removeprefix("torch.")
        try:
            array = tensor.numpy()
        except TypeError:
            # No numpy dtype (bfloat16, ...): store the bits as integers of the same width.
            array = tensor.view(
                {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]
            ).numpy()
        node = {"$": "tensor", "dtype": dtype, "ref": self.array_ref(array)}
        if isinstance(value, torch.nn.Parameter):
            node["parameter"] = True
        if value.requires_grad:
            node["requires_grad"] = True
        return node

    def _timezone(self, tz, path, column):
        if tz is None:
            return None
        if tz is dt.timezone.utc:
            return {"zone": "UTC"}
        key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo, pytz
        if isinstance(key, str):
            return {"zone": key}
        if type(tz) is dt.timezone:
            offset = tz.utcoffset(None)
            node = {"offset": [offset.days, offset.seconds, offset.microseconds]}
            if tz.tzname(None) != dt.timezone(offset).tzname(None):
                node["name"] = tz.tzname(None)
            return node
        raise self._unsupported(tz, path, column, "time zones are stored by their IANA name or fixed offset")

    def _timestamp(self, value, path, column):
        utc = value if value.tzinfo is None else value.tz_convert("UTC").tz_localize(None)
        return {
            "$": "Timestamp",
            "value": utc.isoformat(),
            "unit": value.unit,
            "tz": self._timezone(value.tzinfo, path, column),
        }

    def _network(self, network, path):
        key = _class_key(type(network))
        if self.allowed.get(key) is not type(network) or not hasattr(network, "get_config"):
            raise self._unsupported(
                network, path, None, "the only torch module that can be saved is DeepFMNetwork"
            )
        return {
            "$": "network",
            "class": key,
            "config": self.encode(network.get_config(), f"{path}.get_config()"),
            "state": [
                [name, self._tensor(tensor, f"{path}.{name}")]
                for name, tensor in network.state_dict().items()
            ],
        }

    def _object(self, obj, path, column=None):
        kind = type(obj)
        key = _class_key(kind)
        if self.allowed.get(key) is not kind:
            why = "only skdeepfm's own estimators and classes can be saved"
            raise self._unsupported(obj, path, column, why)
        try:
            attributes = vars(obj)
        except TypeError as exc:
            raise self._unsupported(obj, path, column, "it has no __dict__") from exc
        # Lists with one entry per field (categories_, code_counts_, the
        # fields) name their column in errors.
        n_fields = attributes.get("n_features_in_")
        columns = None
        if isinstance(n_fields, int):
            names = attributes.get("feature_names_in_")
            columns = [str(names[j]) if names is not None else f"x{j}" for j in range(n_fields)]
        encoded = {}
        for name, value in attributes.items():
            if name in _NOT_SAVED:
                continue
            if columns is not None and type(value) is list and len(value) == len(columns):
                encoded[name] = [
                    self.encode(item, f"{path}.{name}[{j}]", columns[j]) for j, item in enumerate(value)
                ]
            else:
                encoded[name] = self.encode(value, f"{path}.{name}", column)
        if isinstance(obj, BaseEstimator):
            names = _param_names(kind)
            params = {name: encoded.pop(name) for name in names if name in encoded}
            return {"$": "estimator", "class": key, "params": params, "attributes": encoded}
        node_kind = "dataclass" if dataclasses.is_dataclass(obj) else "object"
        return {"$": node_kind, "class": key, "attributes": encoded}


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


# -- reading ------------------------------------------------------------------


class _CorruptFile(Exception):
    """A node that does not follow the format; turned into a ValueError naming the file."""


class _Reader:
    """Rebuilds objects from JSON nodes and the archive's ``.npy`` members."""

    def __init__(self, archive, allowed):
        self.archive = archive
        self.members = set(archive.namelist())
        self.allowed = allowed
        self._arrays = {}
        self._object_arrays = {}

    def array(self, ref):
        if not isinstance(ref, str) or ref not in self.members:
            raise _CorruptFile(f"the member {ref!r} that it refers to is missing")
        if ref not in self._arrays:
            with self.archive.open(ref) as member:
                array = np.load(io.BytesIO(member.read()), allow_pickle=False)
            if not isinstance(array, np.ndarray) or array.dtype.kind not in _PLAIN_KINDS:
                raise _CorruptFile(f"the member {ref!r} is not a numeric .npy array")
            # np.load of a buffer is read-only; estimators expect writable arrays.
            self._arrays[ref] = np.array(array)
        return self._arrays[ref]

    def cls(self, key, path):
        cls = self.allowed.get(key) if isinstance(key, str) else None
        if cls is None or not cls.__module__.startswith("skdeepfm."):
            raise _CorruptFile(
                f"{path} is of class {key!r}, which is not a skdeepfm class that can be loaded"
            )
        return cls

    def decode(self, node, path):
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [self.decode(item, f"{path}[{i}]") for i, item in enumerate(node)]
        if type(node) is not dict or not isinstance(node.get("$"), str):
            raise _CorruptFile(f"{path} is not a valid node")
        kind = node["$"]
        if kind in ("tuple", "set", "frozenset"):
            items = [
                self.decode(item, f"{path}[{i}]")
                for i, item in enumerate(self.field(node, "items", list, path))
            ]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
        if kind in ("dict", "OrderedDict"):
            pairs = self.field(node, "items", list, path)
            items = [
                (self.decode(key, f"{path} key"), self.decode(value, f"{path}[...]")) for key, value in pairs
            ]
            return dict(items) if kind == "dict" else OrderedDict(items)
        if kind == "float":
            value = self.field(node, "value", str, path)
            if value not in ("nan", "inf", "-inf"):
                raise _CorruptFile(f"{path} is not a valid float")
            return float(value)
        if kind == "bytes":
            return base64.b64decode(self.field(node, "value", str, path), validate=True)
        if kind == "numpy":
            dtype = np.dtype(self.field(node, "dtype", str, path))
            if dtype.kind not in _PLAIN_KINDS:
                raise _CorruptFile(f"{path} has an unsupported dtype")
            raw = base64.b64decode(self.field(node, "bytes", str, path), validate=True)
            return np.frombuffer(raw, dtype=dtype, count=1)[0]
        if kind == "ndarray":
            return self.array(node.get("ref"))
        if kind == "object_array":
            return self.object_array(node, path)
        if kind == "tensor":
            return self.tensor(node, path)
        if kind == "network":
            return self.network(node, path)
        if kind in ("estimator", "object", "dataclass"):
            return self.object(node, path)
        if kind == "complex":
            return complex(self.decode(node.get("real"), path), self.decode(node.get("imag"), path))
        if kind == "decimal":
            return Decimal(self.field(node, "value", str, path))
        if kind == "fraction":
            return Fraction(self.field(node, "value", str, path))
        if kind == "NA":
            return pd.NA
        if kind == "NaT":
            return pd.NaT
        if kind == "Timestamp":
            stamp = pd.Timestamp(self.field(node, "value", str, path)).as_unit(
                self.field(node, "unit", str, path)
            )
            tz = self.timezone(node.get("tz"), path)
            return stamp if tz is None else stamp.tz_localize("UTC").tz_convert(tz)
        if kind == "Timedelta":
            return pd.Timedelta(self.field(node, "value", str, path)).as_unit(
                self.field(node, "unit", str, path)
            )
        if kind == "datetime":
            value = dt.datetime.fromisoformat(self.field(node, "value", str, path))
            return value.replace(tzinfo=self.timezone(node.get("tz"), path), fold=node.get("fold", 0))
        if kind == "date":
            return dt.date.fromisoformat(self.field(node, "value", str, path))
        if kind == "time":
            return dt.time.fromisoformat(self.field(node, "value", str, path)).replace(
                fold=node.get("fold", 0)
            )
        if kind == "timedelta":
            days, seconds, microseconds = self.field(node, "value", list, path)
            return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        if kind == "RandomState":
            state = self.decode(node.get("state"), path)
            random_state = np.random.RandomState(self.bit_generator(state, path))
            random_state.set_state(state)
            return random_state
        if kind == "Generator":
            state = self.decode(node.get("state"), path)
            bit_generator = self.bit_generator(state, path)
            bit_generator.state = state
            return np.random.Generator(bit_generator)
        if kind == "torch.device":
            return torch.device(self.field(node, "value", str, path))
        if kind == "torch.dtype":
            return self.torch_dtype(node.get("value"), path)
        raise _CorruptFile(f"{path} has the unknown node type {kind!r}")

    @staticmethod
    def field(node, name, kind, path):
        value = node.get(name)
        if type(value) is not kind:
            raise _CorruptFile(f"{path} lacks a valid {name!r} entry")
        return value

    @staticmethod
    def torch_dtype(name, path):
        dtype = getattr(torch, name, None) if isinstance(name, str) else None
        if not isinstance(dtype, torch.dtype):
            raise _CorruptFile(f"{path} names the unknown torch dtype {name!r}")
        return dtype

    @staticmethod
    def bit_generator(state, path):
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise _CorruptFile(f"{path} names the unknown bit generator {name!r}")
        return _BIT_GENERATORS[name]()

    @staticmethod
    def timezone(node, path):
        if node is None:
            return None
        if isinstance(node, dict) and isinstance(node.get("zone"), str):
            # ZoneInfo accepts IANA keys only, never a path.
            return dt.timezone.utc if node["zone"] == "UTC" else zoneinfo.ZoneInfo(node["zone"])
        if isinstance(node, dict) and isinstance(node.get("offset"), list):
            days, seconds, microseconds = node["offset"]
            offset = dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
            name = node.get("name")
            return dt.timezone(offset) if name is None else dt.timezone(offset, name)
        raise _CorruptFile(f"{path} has an invalid time zone")

    def object_array(self, node, path):
        if "same_as" in node:
            number = node["same_as"]
            if type(number) is not int or number not in self._object_arrays:
                raise _CorruptFile(f"{path} refers to an array that comes later or not at all")
            return self._object_arrays[number]
        shape = tuple(self.field(node, "shape", list, path))
        items = self.field(node, "items", list, path)
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            out[i] = self.decode(item, f"{path}[{i}]")
        out = out.reshape(shape)
        self._object_arrays[self.field(node, "id", int, path)] = out
        return out

    def tensor(self, node, path):
        array = self.array(node.get("ref"))
        dtype = self.torch_dtype(node.get("dtype"), path)
        tensor = torch.from_numpy(array)
        if tensor.dtype != dtype:
            tensor = tensor.view(dtype)
        if node.get("parameter"):
            return torch.nn.Parameter(tensor, requires_grad=bool(node.get("requires_grad")))
        return tensor.requires_grad_(bool(node.get("requires_grad")))

    def network(self, node, path):
        cls = self.cls(node.get("class"), path)
        if not issubclass(cls, torch.nn.Module) or not hasattr(cls, "get_config"):
            raise _CorruptFile(f"{path} is of class {node.get('class')!r}, which is not a network")
        config = self.decode(node.get("config"), f"{path}.config")
        if type(config) is not dict or not all(isinstance(key, str) for key in config):
            raise _CorruptFile(f"{path} lacks a valid 'config' entry")
        if "generator" in inspect.signature(cls).parameters:
            # The initial weights are overwritten below: draw them from a
            # private generator, never from (and changing) torch's global one.
            config = {**config, "generator": torch.Generator().manual_seed(0)}
        network = cls(**config)
        state = {
            name: self.tensor(tensor, f"{path}.{name}")
            for name, tensor in self.field(node, "state", list, path)
        }
        # assign=True keeps the saved tensors (their dtype) rather than
        # copying them into the freshly built ones.
        network.load_state_dict(state, strict=True, assign=True)
        return network.eval()

    def object(self, node, path):
        cls = self.cls(node.get("class"), path)
        is_estimator = issubclass(cls, BaseEstimator)
        if (node["$"] == "estimator") != is_estimator or issubclass(cls, torch.nn.Module):
            raise _CorruptFile(f"{path} does not match its class {node.get('class')!r}")
        obj = cls.__new__(cls)
        attributes = {}
        if is_estimator:
            params = self.field(node, "params", dict, path)
            for name, value in params.items():
                attributes[name] = self.decode(value, f"{path}.{name}")
            # A parameter added after the file was written takes its default.
            names = _param_names(cls)
            for name, parameter in inspect.signature(cls.__init__).parameters.items():
                if name in names and name not in attributes:
                    if parameter.default is parameter.empty:
                        raise _CorruptFile(f"{path} lacks the parameter {name!r}")
                    attributes[name] = parameter.default
        for name, value in self.field(node, "attributes", dict, path).items():
            attributes[name] = self.decode(value, f"{path}.{name}")
        if any(name.startswith("__") for name in attributes):
            raise _CorruptFile(f"{path} has an attribute whose name starts with '__'")
        obj.__dict__.update(attributes)
        return obj


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
