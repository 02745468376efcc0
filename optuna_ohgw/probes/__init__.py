"""Hypergradient probes: the protocol and its implementations."""

from optuna_ohgw.probes._base import BaseProbe, ProbeResult
from optuna_ohgw.probes._function import FunctionProbe
from optuna_ohgw.probes._lookahead import ROLES, LookaheadProbe

__all__ = ["ROLES", "BaseProbe", "FunctionProbe", "LookaheadProbe", "ProbeResult"]
