"""``python -m skdeepfm``: the main job, or the ``train``, ``predict`` and ``export`` commands.

Without a command, generates the seed's ad-click scenario
(:func:`skdeepfm.datasets.make_ad_clicks`) in memory, or reads ``--data FILE``
(CSV or Parquet) with ``--target COLUMN``, holds out a test fraction, fits
DeepFMClassifier with a progress bar, and prints test ROC AUC and log-loss
beside a logistic regression on one-hot, multi-hot and scaled numeric
columns. The commands are documented in :mod:`skdeepfm._cli`.
"""

from __future__ import annotations

import sys

from ._cli import build_command_parser, build_parser, main

__all__ = ["build_command_parser", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
