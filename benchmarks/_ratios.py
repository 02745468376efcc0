"""The result table both probe-cost benchmarks print: seconds, ratio to a plain step, target."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def print_header(config_width: int) -> None:
    config = f"{'config':<{config_width}}"
    header = f"{'model':<22}{config}{'seconds':>10}{'x step':>9}{'target':>9}  ok"
    print(header)
    print("-" * len(header))


def print_rows(
    model: str,
    rows: Sequence[tuple[str, float]],
    targets: Mapping[str, float],
    config_width: int,
) -> None:
    """One line per ``(config, seconds)``; the first row is the plain step every ratio uses."""
    base = rows[0][1]
    for config, seconds in rows:
        ratio = seconds / base
        target = targets.get(config)
        verdict = "" if target is None else ("yes" if ratio <= target else "NO")
        target_text = "" if target is None else f"{target:.1f}"
        print(
            f"{model:<22}{config:<{config_width}}{seconds:>10.4f}{ratio:>9.2f}{target_text:>9}  "
            f"{verdict}"
        )


def print_load() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} at end (2 cores here: above ~1, timings drift)")
