"""The trial note optuna-dashboard shows at the top of a trial's page: the warm start at a
glance (one row per parameter) and, for a failed trial, why it failed."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import optuna

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs

_logger = logging.getLogger("optuna_ohgw")


def _num(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def warm_start_note(user_attrs: Mapping[str, Any]) -> str:
    """Markdown: the probe's status, the self-check's verdict on the trial that ran it, a
    ``parameter | raw | nudged | hypergradient | step`` table, and the failure reason
    (``ohgw.error``) when there is one."""
    lines = []
    status = user_attrs.get(attrs.STATUS)
    if status is not None:
        seconds = user_attrs.get(attrs.PROBE_SECONDS)
        took = f" (probe {_num(seconds)} s)" if seconds is not None else ""
        lines.append(f"**OHGW warm start:** {status}{took}")
    verdict = user_attrs.get(attrs.SELF_CHECK)
    if verdict is not None and not str(status or "").startswith("error: self-check"):
        lines.append(f"\n**Self-check (this process):** {verdict}")
    prefix = attrs.raw("")
    names = sorted(k[len(prefix) :] for k in user_attrs if k.startswith(prefix))
    if names:
        lines += [
            "",
            "| parameter | raw | nudged | hypergradient | step |",
            "|---|---|---|---|---|",
        ]
        for name in names:
            cells = [
                _num(user_attrs.get(key(name)))
                for key in (attrs.raw, attrs.nudged, attrs.grad, attrs.step)
            ]
            lines.append(f"| {name} | {' | '.join(cells)} |")
    error = user_attrs.get(attrs.ERROR)
    if error:
        lines += ["", f"**Failed:** `{error}`"]
    return "\n".join(lines)


def save_warm_start_note(trial: optuna.Trial) -> None:
    """Write :func:`warm_start_note` as the trial's optuna-dashboard note (never raises)."""
    try:
        from optuna_dashboard import save_note

        # Read the storage: the sampler writes its attrs there, past the Trial's own cache.
        user_attrs = trial.storage.get_trial_user_attrs(compat.trial_id(trial.study, trial))
        body = warm_start_note(user_attrs)
        if body:
            save_note(trial, body)
    except Exception as err:  # noqa: BLE001 - a note must never fail the trial
        _logger.warning(f"Trial {trial.number}: could not save the dashboard note ({err})")
