"""The typed tree that a model file stores, and its writer and reader.

:class:`_Writer` turns a model into JSON nodes and numeric arrays;
:class:`_Reader` builds the model back from them, with an allowlist of
skdeepfm classes looked up by module and name: nothing in a file can make it
import a module, call a function it names or unpickle anything. The file
itself (a zip archive, versions, checks) is :mod:`skdeepfm._persistence`'s.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import importlib
import inspect
import io
import math
import zoneinfo
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

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
