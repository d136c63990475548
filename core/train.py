"""The command line for training: `python -m core.train --data builtin:digits --epochs 20`.

It stays at `core/train.py` because `python -m core.train` is the command students and teachers
type (README, model cards, exported scripts, torchrun); the trainer and its argument parsing live
in `core.training.trainer` (`main`).
"""

from __future__ import annotations

import sys

from core.training.trainer import main

if __name__ == "__main__":
    sys.exit(main())
