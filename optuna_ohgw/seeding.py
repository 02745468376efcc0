"""Per-trial seeds derived from a study seed and a trial number.

The sampler seeds its probe with the same value that a task uses to initialise the trial's model
and shuffle its data, so the look-ahead starts from exactly the weights the trial trains, and any
worker process reproduces the same trial.
"""

from __future__ import annotations

import numpy as np


def trial_seed(seed: int, number: int, *extra: int) -> int:
    """A 32-bit seed for trial ``number`` of a study seeded with ``seed``."""
    return int(
        np.random.SeedSequence([int(seed), int(number), *map(int, extra)]).generate_state(1)[0]
    )
