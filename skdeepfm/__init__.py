"""skdeepfm: DeepFM for scikit-learn, on tables of categorical columns."""

from ._classifier import DeepFMClassifier
from ._codes import INFREQUENT_INDEX, MISSING_INDEX, UNKNOWN_INDEX
from ._encoder import FieldEncoder
from ._network import DeepFMNetwork
from ._onnx import onnx_inputs, to_onnx
from ._persistence import load, save
from ._regressor import DeepFMRegressor

__version__ = "0.1.0"

__all__ = [
    "INFREQUENT_INDEX",
    "MISSING_INDEX",
    "UNKNOWN_INDEX",
    "DeepFMClassifier",
    "DeepFMNetwork",
    "DeepFMRegressor",
    "FieldEncoder",
    "__version__",
    "load",
    "onnx_inputs",
    "save",
    "to_onnx",
]
