"""skdeepfm: DeepFM for scikit-learn, on tables of categorical columns."""

from ._classifier import DeepFMClassifier
from ._encoder import MISSING_INDEX, UNKNOWN_INDEX, FieldEncoder
from ._network import DeepFMNetwork

__version__ = "0.1.0"

__all__ = [
    "MISSING_INDEX",
    "UNKNOWN_INDEX",
    "DeepFMClassifier",
    "DeepFMNetwork",
    "FieldEncoder",
    "__version__",
]
