"""What the look-ahead probe cannot follow, refused in one line before its first step.

The look-ahead runs the user's model through ``functional_call`` with its own weights, carries
only BatchNorm's running statistics between steps and differentiates twice. A model that breaks
one of those assumptions would get a hypergradient that is silently wrong, so the first probe
call checks the model once (on a copy, in train mode, with the first rows of the probe's first
training batch) and raises a ``ValueError`` naming the cause and the way out:

- ``weight_norm`` / ``spectral_norm`` (hook style or ``torch.nn.utils.parametrizations``):
  torch's second derivative through them is wrong (``gradgradcheck`` of ``torch._weight_norm``
  fails in float64 on CPU), and spectral norm's power iteration writes buffers in forward;
- a forward that writes module state other than a normalization layer's running statistics: a
  buffer or parameter updated in place or rebound, a plain tensor attribute (not a registered
  buffer) rebound or updated in place, an attribute assigned, a submodule replaced (the
  look-ahead drops or mis-differentiates it); what only the first forward writes (a cache such
  as a causal mask) is allowed, and so is an int counter the output does not depend on (the
  same forward from its next value gives the same loss);
- activation checkpointing (``torch.utils.checkpoint``, reentrant or not): its recomputation
  in backward uses the module's own weights, not the look-ahead's (found by the reentrant
  function's node in the loss graph, and by the gradient changing when the module's own weights
  move while the look-ahead's stay);
- a ``loss``-role hyperparameter that does not reach the training loss through autograd
  (``float()``, ``.item()``, ``.detach()``): its gradient would be exactly 0;
- a ``torch.compile``'d submodule. A compiled *top-level* model is not refused: the probe runs
  its ``_orig_mod`` (the same weights; compiled graphs have no double backward).

The verdict is cached per probe, so later calls cost a dictionary look-up.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

_RUNNING_STATS = frozenset({"running_mean", "running_var", "num_batches_tracked"})
_MODULE_SLOTS = frozenset({"_parameters", "_buffers", "_modules"})
_CHECK_ROWS = 8
"""Rows of the first training batch the check runs on (BatchNorm needs more than one)."""
_WAY_OUT = "or run the study without the warm start (probe=None)"

LossFn = Callable[[Callable[..., Any], Any, Mapping[str, torch.Tensor]], torch.Tensor]


class _Guard:
    """One probe's verdict: checked once, under a lock (probes run in several threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked = False
        self.refusal: str | None = None


_GUARDS: weakref.WeakKeyDictionary[object, _Guard] = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def admit(
    owner: object,
    model: nn.Module,
    batch: Any,
    loss_hypers: Mapping[str, torch.Tensor],
    loss_fn: LossFn | None,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> nn.Module:
    """The module the look-ahead should run (a compiled model's ``_orig_mod``), or a
    ``ValueError`` naming what the probe cannot follow. Checked once per ``owner`` (the probe).

    Args:
        owner: The probe; the verdict is cached on it.
        model: The model the probe built (a copy is checked, the model is not touched).
        batch: One training batch, already on the probe's device and in its dtype.
        loss_hypers: The ``loss``-role hyperparameters by name (0-d tensors).
        loss_fn: The probe's ``loss_fn(apply, batch, hypers)``, or ``None`` for cross entropy
            on ``(inputs, targets)``.
        dtype: The probe's precision (the copy is cast to it, as the look-ahead's weights are).
        device: The probe's device.
    """
    model = unwrap_compiled(model)
    with _GUARDS_LOCK:
        guard = _GUARDS.setdefault(owner, _Guard())
    with guard.lock:
        if not guard.checked:
            guard.refusal = refusal(model, batch, loss_hypers, loss_fn, dtype=dtype, device=device)
            guard.checked = True
    if guard.refusal is not None:
        raise ValueError(guard.refusal)
    return model


def unwrap_compiled(model: nn.Module) -> nn.Module:
    """``model._orig_mod`` for a ``torch.compile``'d module (``OptimizedModule``), else
    ``model``."""
    while _is_compiled(model):
        model = model.get_submodule("_orig_mod")
    return model


def refusal(
    model: nn.Module,
    batch: Any,
    loss_hypers: Mapping[str, torch.Tensor],
    loss_fn: LossFn | None,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> str | None:
    """The one-line reason the look-ahead cannot follow ``model``, or ``None``."""
    found = _parametrization_refusal(model)
    if found is not None:
        return found
    rows = _first_rows(batch, _CHECK_ROWS)
    cuda = [device] if device.type == "cuda" else []
    # Never consume the caller's (or the seeded probe's) random stream: dropout masks of the
    # look-ahead that follows must not depend on whether this was the first call.
    with torch.random.fork_rng(devices=cuda):
        for sample in (rows, batch) if rows is not None else (batch,):
            try:
                twin = copy.deepcopy(model).to(device=device, dtype=dtype).train()
            except Exception as err:  # noqa: BLE001 - reported as the refusal's cause
                return (
                    f"LookaheadProbe: cannot copy the model to check it ({type(err).__name__}: "
                    f"{err}); pass a factory seed -> nn.Module as the probe's model."
                )
            try:
                return _state_write_refusal(twin, sample, loss_hypers, loss_fn) or _graph_refusal(
                    twin, sample, loss_hypers, loss_fn
                )
            except Exception:
                if sample is batch:  # the user's own model or loss fails: the probe would too
                    raise
    return None


def _first_rows(batch: Any, n: int) -> Any | None:
    """``batch`` cut to its first ``n`` rows (the verdict does not depend on the batch size, the
    cost does), or ``None`` when its structure does not say what a row is: every tensor must
    share one leading size above ``n``, in tuples, lists and dicts of tensors and scalars."""
    sizes: set[int] = set()

    def scan(item: Any) -> bool:
        if isinstance(item, torch.Tensor):
            sizes.add(item.shape[0] if item.dim() else -1)
            return True
        if isinstance(item, Mapping):
            return all(scan(v) for v in item.values())
        if isinstance(item, list | tuple):
            return all(scan(v) for v in item)
        return item is None or isinstance(item, str | int | float | bool)

    def cut(item: Any) -> Any:
        if isinstance(item, torch.Tensor):
            return item[:n]
        if isinstance(item, Mapping):
            return type(item)({k: cut(v) for k, v in item.items()})  # type: ignore[call-arg]
        if isinstance(item, tuple) and hasattr(item, "_fields"):
            return type(item)(*(cut(v) for v in item))
        if isinstance(item, list | tuple):
            return type(item)(cut(v) for v in item)
        return item

    if not scan(batch) or len(sizes) != 1 or min(sizes) <= n:
        return None
    try:
        return cut(batch)
    except Exception:  # noqa: BLE001 - a container that cannot be rebuilt: check the whole batch
        return None


# ----- the checks ------------------------------------------------------------------------------


def _is_compiled(module: nn.Module) -> bool:
    return type(module).__name__ == "OptimizedModule" and isinstance(
        getattr(module, "_orig_mod", None), nn.Module
    )


def _label(name: str) -> str:
    return repr(name) if name else "the model"


def _parametrization_refusal(model: nn.Module) -> str | None:
    from torch.nn.utils import parametrizations, parametrize
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    new_style = {
        getattr(parametrizations, "_WeightNorm", None): "weight_norm",
        getattr(parametrizations, "_SpectralNorm", None): "spectral_norm",
    }
    for name, module in model.named_modules():
        if name and _is_compiled(module):
            return (
                f"LookaheadProbe: submodule {name!r} is torch.compile'd, and a compiled graph "
                "has no double backward; compile the whole model instead (the probe then runs "
                "its _orig_mod) or give the probe the uncompiled model."
            )
        kinds = [
            "weight_norm" if isinstance(hook, WeightNorm) else "spectral_norm"
            for hook in module._forward_pre_hooks.values()  # noqa: SLF001 - no public accessor
            if isinstance(hook, WeightNorm | SpectralNorm)
        ]
        if parametrize.is_parametrized(module):
            for plist in module.parametrizations.values():  # type: ignore[union-attr]
                kinds += [new_style[type(p)] for p in plist if type(p) in new_style]
        if kinds:
            return (
                f"LookaheadProbe: {_label(name)} uses {kinds[0]}, whose second derivative in "
                "torch is wrong (gradgradcheck of torch._weight_norm fails in float64) and "
                "whose spectral variant writes buffers in forward; give the probe the model "
                f"without it (torch.nn.utils.parametrize.remove_parametrizations), {_WAY_OUT}."
            )
    return None


def _train_loss(
    apply: Callable[..., Any],
    batch: Any,
    hypers: Mapping[str, torch.Tensor],
    loss_fn: LossFn | None,
) -> torch.Tensor:
    if loss_fn is not None:
        return loss_fn(apply, batch, hypers)
    return F.cross_entropy(apply(batch[0]), batch[1])


def _state_write_refusal(
    model: nn.Module,
    batch: Any,
    loss_hypers: Mapping[str, torch.Tensor],
    loss_fn: LossFn | None,
) -> str | None:
    """What a plain forward (the model called as the user's loop calls it) writes, after a
    first one: a cache filled once by the first forward (a causal mask, rotary tables) is not
    state the look-ahead has to carry."""
    _train_loss(model, batch, _leaves(loss_hypers), loss_fn)
    modules = dict(model.named_modules())
    before = {name: dict(vars(module)) for name, module in modules.items()}
    slots = {name: {s: dict(vars(m)[s]) for s in _MODULE_SLOTS} for name, m in modules.items()}
    values = {
        (name, key): tensor.detach().clone()
        for name, module in modules.items()
        for slot in ("_parameters", "_buffers")
        for key, tensor in vars(module)[slot].items()
        if tensor is not None
    }
    plain = {
        (name, key): [t.detach().clone() for t in found]
        for name, attrs in before.items()
        for key, value in attrs.items()
        if key not in _MODULE_SLOTS and (found := _plain_tensors(value)) is not None
    }
    cuda = list({p.device for p in model.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda):
        output = _train_loss(model, batch, _leaves(loss_hypers), loss_fn)
    counters: list[str] = []
    for name, module in modules.items():
        where = f"{name}." if name else ""
        norm = getattr(module, "track_running_stats", False)  # BatchNorm, InstanceNorm
        for slot, what in (("_buffers", "buffer"), ("_parameters", "parameter")):
            old, new = slots[name][slot], vars(module)[slot]
            for key in sorted(set(old) | set(new)):
                if old.get(key) is not new.get(key):
                    return _state_message(f"rebinds {what} '{where}{key}'")
                tensor = new[key]
                if tensor is None or (norm and key in _RUNNING_STATS):
                    continue
                if not torch.equal(values[name, key], tensor.detach()):
                    return _state_message(f"updates {what} '{where}{key}' in place")
        if slots[name]["_modules"] != vars(module)["_modules"]:
            return _state_message(f"replaces a submodule of {_label(name)}")
        old_attrs, new_attrs = before[name], vars(module)
        for key in sorted(set(old_attrs) | set(new_attrs)):
            if key in _MODULE_SLOTS:
                continue
            old, new = old_attrs.get(key, _ABSENT), new_attrs.get(key, _ABSENT)
            found = _plain_tensors(new)
            if (name, key) in plain or found is not None:
                was = plain.get((name, key))
                if old is not new or not _equal(was, found):
                    return _state_message(
                        f"updates tensor attribute '{where}{key}', which is not a registered "
                        "buffer (register_buffer), so it is not the look-ahead's to carry"
                    )
            elif old is not new and type(old) is type(new) and type(new) in (int, bool):
                counters.append(f"'{where}{key}'")  # a counter: refused below if it matters
            elif old is not new:
                return _state_message(f"assigns attribute '{where}{key}'")
    if counters:
        # The same forward again, from the counters' new values and the same random stream: a
        # counter the output does not depend on (a call count) is no state to carry.
        with torch.random.fork_rng(devices=cuda):
            again = _train_loss(model, batch, _leaves(loss_hypers), loss_fn)
        if not torch.equal(output.detach(), again.detach()):
            return _state_message(f"assigns attribute {counters[0]}, on which its output depends")
    return None


_ABSENT = object()


def _plain_tensors(value: Any) -> list[torch.Tensor] | None:
    """The tensors of a plain (unregistered) attribute: a tensor, or a list, tuple or dict
    holding one; ``None`` when it holds none."""
    if isinstance(value, torch.Tensor):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    if isinstance(value, list | tuple | dict):
        found = [v for v in items if isinstance(v, torch.Tensor)]
        return found or None
    return None


def _equal(old: list[torch.Tensor] | None, new: list[torch.Tensor] | None) -> bool:
    return (
        old is not None
        and new is not None
        and len(old) == len(new)
        and all(a.shape == b.shape and torch.equal(a, b.detach()) for a, b in zip(old, new))
    )


def _state_message(what: str) -> str:
    return (
        f"LookaheadProbe: the model's forward {what}; the look-ahead carries no module state "
        "between its steps but BatchNorm's running statistics, so its hypergradient would be "
        f"wrong. Keep that state out of forward() (update it in the training loop), {_WAY_OUT}."
    )


def _graph_refusal(
    model: nn.Module,
    batch: Any,
    loss_hypers: Mapping[str, torch.Tensor],
    loss_fn: LossFn | None,
) -> str | None:
    """One forward through ``functional_call`` as the look-ahead runs it, two backward passes:
    the second after the module's own weights moved (the look-ahead's stayed)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    weights = {n: p.detach().clone().requires_grad_(True) for n, p in named}
    state = {**{n: b.detach().clone() for n, b in model.named_buffers()}, **weights}
    hypers = _leaves(loss_hypers)

    def apply(*args: Any, **kwargs: Any) -> Any:
        return functional_call(model, state, args, kwargs)

    loss = _train_loss(apply, batch, hypers, loss_fn)
    if _has_reentrant_checkpoint(loss):
        return _checkpoint_message()
    names = list(hypers)
    if not loss.requires_grad:
        return _hyper_message(names) if names else None
    inputs = [*hypers.values(), *weights.values()]
    grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
    unreached = [n for n, g in zip(names, grads) if g is None]
    if unreached:
        return _hyper_message(unreached)
    if not weights:
        return None
    with torch.no_grad():
        for _, p in named:
            p.add_(0.5 * p.abs().mean() + 0.1)
    moved = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
    for g, m in zip(grads[len(names) :], moved):
        if (g is None) != (m is None):
            return _checkpoint_message()
        if g is not None and not torch.allclose(g, m, rtol=1e-4, atol=1e-6 * float(g.abs().max())):
            return _checkpoint_message()
    return None


def _leaves(hypers: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The loss hyperparameters as loss_fn receives them: 0-d tensors that require grad."""
    return {n: h.detach().clone().requires_grad_(True) for n, h in hypers.items()}


def _has_reentrant_checkpoint(loss: torch.Tensor) -> bool:
    seen: set[Any] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "CheckpointFunctionBackward":
            return True
        stack.extend(fn for fn, _ in node.next_functions)
    return False


def _checkpoint_message() -> str:
    return (
        "LookaheadProbe: the model recomputes activations in backward (activation "
        "checkpointing, torch.utils.checkpoint) with the module's own weights, not the "
        "look-ahead's, so its hypergradient would be wrong; give the probe the model without "
        f"checkpointing (the same weights, more memory), {_WAY_OUT}."
    )


def _hyper_message(names: list[str]) -> str:
    return (
        f"LookaheadProbe: loss hyperparameter(s) {names} do not reach the training loss "
        "through autograd (float(), .item() or .detach() on hypers[...] in loss_fn?), so their "
        "hypergradient would be exactly 0; use the 0-d tensor loss_fn receives in the loss "
        "directly."
    )
