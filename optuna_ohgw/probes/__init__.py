"""Hypergradient probes: the protocol and its implementations (imported on first use)."""

from typing import TYPE_CHECKING

from optuna_ohgw._lazy import lazy_exports

_EXPORTS = {
    "ROLES": "._roles",
    "BaseProbe": "._base",
    "ProbeCheck": "._base",
    "ProbeResult": "._base",
    "FunctionProbe": "._function",
    "LookaheadProbe": "._lookahead",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_ohgw.probes._base import BaseProbe, ProbeCheck, ProbeResult
    from optuna_ohgw.probes._function import FunctionProbe
    from optuna_ohgw.probes._lookahead import LookaheadProbe
    from optuna_ohgw.probes._roles import ROLES

__all__ = ["ROLES", "BaseProbe", "FunctionProbe", "LookaheadProbe", "ProbeCheck", "ProbeResult"]
