"""Which ``torch.optim`` classes the look-ahead unrolls, and how their arguments map to roles."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import torch

from optuna_ohgw.probes._unrolled_adam import UnrolledAdam, UnrolledAdamW
from optuna_ohgw.probes._unrolled_base import _BaseUnrolledOptimizer
from optuna_ohgw.probes._unrolled_sgd import UnrolledSGD

UNROLLED: dict[type[torch.optim.Optimizer], type[_BaseUnrolledOptimizer]] = {
    torch.optim.SGD: UnrolledSGD,
    torch.optim.Adam: UnrolledAdam,
    torch.optim.AdamW: UnrolledAdamW,
}
"""The optimizers the probe differentiates exactly (the classes themselves, not subclasses,
whose ``step`` may differ)."""

SUPPORTED = ", ".join(f"torch.optim.{cls.__name__}" for cls in UNROLLED)


@dataclasses.dataclass(frozen=True)
class ResolvedOptimizer:
    """An optimizer class resolved to its unrolled rule.

    Attributes:
        rule: The update rule.
        values: Role values given in the constructor's keyword arguments or torch's defaults
            (``lr`` only when given).
        options: The rule's non-role options, torch's defaults overridden by the user's.
    """

    rule: type[_BaseUnrolledOptimizer]
    values: Mapping[str, float]
    options: Mapping[str, Any]


def resolve_optimizer(
    optimizer: type[torch.optim.Optimizer], kwargs: Mapping[str, Any]
) -> ResolvedOptimizer:
    """Map ``optimizer(params, **kwargs)`` to the rule that unrolls it; ``ValueError`` if none."""
    rule = UNROLLED.get(optimizer)  # type: ignore[arg-type]
    if rule is None:
        name = getattr(optimizer, "__qualname__", repr(optimizer))
        raise ValueError(
            f"LookaheadProbe cannot unroll optimizer {name}; it supports {SUPPORTED} "
            "(pass the class itself, e.g. optimizer=torch.optim.AdamW)."
        )
    signature = inspect.signature(optimizer)
    defaults = {
        n: p.default
        for n, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    accepted = {"lr", "weight_decay", *rule.options, *rule.ignored}
    accepted |= {"momentum"} if "momentum" in rule.roles else {"betas"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(
            f"optimizer_kwargs {unknown} are not understood for {optimizer.__name__}; the probe "
            f"unrolls {sorted(accepted - set(rule.ignored))} exactly."
        )
    merged = {**defaults, **kwargs}
    values: dict[str, float] = {"weight_decay": float(merged["weight_decay"])}
    if "lr" in kwargs:
        values["lr"] = float(kwargs["lr"])
    if "momentum" in rule.roles:
        values["momentum"] = float(merged["momentum"])
    else:
        beta1, beta2 = merged["betas"]
        values["beta1"], values["beta2"] = float(beta1), float(beta2)
    options = {name: merged.get(name, default) for name, default in rule.options.items()}
    if optimizer is torch.optim.Adam and options["decoupled_weight_decay"]:
        rule = UnrolledAdamW
        options.pop("decoupled_weight_decay")
    rule.check_options(options)
    return ResolvedOptimizer(rule=rule, values=values, options=options)


def group_rule(
    optimizer: torch.optim.Optimizer, group: Mapping[str, Any]
) -> tuple[type[_BaseUnrolledOptimizer], dict[str, Any]]:
    """The rule and options that unroll one parameter group of a built optimizer; ``ValueError``
    for an optimizer the probe does not unroll."""
    cls = type(optimizer)
    rule = UNROLLED.get(cls)
    if rule is None:
        raise ValueError(
            f"make_optimizer built a {cls.__module__}.{cls.__qualname__}; LookaheadProbe unrolls "
            f"{SUPPORTED} exactly (torch's own classes, not subclasses): build one of those."
        )
    if cls is not torch.optim.SGD:
        rule = UnrolledAdamW if group.get("decoupled_weight_decay") else UnrolledAdam
    options = {name: group.get(name, default) for name, default in rule.options.items()}
    rule.check_options(options)
    return rule, options


def group_values(rule: type[_BaseUnrolledOptimizer], group: Mapping[str, Any]) -> dict[str, float]:
    """A group's role values as floats (``betas`` split into ``beta1`` and ``beta2``)."""
    values = {"lr": float(group["lr"]), "weight_decay": float(group["weight_decay"])}
    if "momentum" in rule.roles:
        values["momentum"] = float(group["momentum"])
    else:
        values["beta1"], values["beta2"] = (float(b) for b in group["betas"])
    return values
