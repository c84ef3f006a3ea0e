"""Warnings that point at the user's line, not at skdeepfm's internals (no dependencies)."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
#: scikit-learn's wrapper of every fit (``_fit_context``) lives there.
_SKLEARN_BASE = os.path.join("sklearn", "base.py")


def _internal(filename):
    filename = os.path.abspath(filename)
    return filename.startswith(_PACKAGE + os.sep) or filename.endswith(_SKLEARN_BASE)


def warn(message, category):
    """``warnings.warn`` with the stack level of the first caller outside skdeepfm.

    Frames of skdeepfm and of scikit-learn's fit wrapper are skipped, so that
    the warning names the line that called ``fit`` (or the scikit-learn tool
    that did, such as ``cross_validate``).
    """
    # stacklevel 1 is this function; 2 its caller, the frame below.
    level, frame = 2, sys._getframe(1)
    while frame is not None and _internal(frame.f_code.co_filename):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
