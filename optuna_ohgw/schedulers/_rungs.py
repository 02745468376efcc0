"""Rung ladders: where successive-halving schedulers look at (or pause) a trial."""

from __future__ import annotations


def _check(min_resource: int, reduction_factor: int, max_resource: int) -> None:
    if min_resource < 1 or reduction_factor < 2 or max_resource < min_resource:
        raise ValueError(
            "need 1 <= min_resource <= max_resource and reduction_factor >= 2, got "
            f"min_resource={min_resource}, reduction_factor={reduction_factor}, "
            f"max_resource={max_resource}."
        )


def rung_levels(min_resource: int, reduction_factor: int, max_resource: int) -> list[int]:
    """Return ``r_min * eta**k`` for ``k = 0, 1, ...`` up to the largest one ``<= max_resource``.

    Integer arithmetic, so levels are exact (syne-tune rounds a float power).
    """
    _check(min_resource, reduction_factor, max_resource)
    levels = []
    r = min_resource
    while r <= max_resource:
        levels.append(r)
        r *= reduction_factor
    return levels


def rung_epochs(min_resource: int, reduction_factor: int, max_resource: int) -> list[int]:
    """The rung levels strictly below ``max_resource``, then ``max_resource`` itself."""
    levels = rung_levels(min_resource, reduction_factor, max_resource)
    return [*(r for r in levels if r < max_resource), max_resource]
