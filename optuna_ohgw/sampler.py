"""OHGWSampler: wrap any Optuna sampler and warm-start each new trial by one hypergradient step."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.samplers import (
    BaseSampler,
    BruteForceSampler,
    GridSampler,
    PartialFixedSampler,
    TPESampler,
)
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import BaseTrial, FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs, seeding
from optuna_ohgw._coords import to_external as _to_external
from optuna_ohgw._coords import to_internal as _to_internal
from optuna_ohgw._forwarding import ForwardingSampler
from optuna_ohgw.probes import BaseProbe, ProbeCheck
from optuna_ohgw.steps import BaseStepRule, StepContext, make_step_rule

_logger = logging.getLogger("optuna_ohgw")


@dataclasses.dataclass
class _WarmStart:
    """Per-trial cache: the distributions probed and the values to serve for them."""

    done: bool = False
    dists: dict[str, FloatDistribution] = dataclasses.field(default_factory=dict)
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    deferred: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The base sampler's relative values, kept until the probe's context names are known."""


_StateKey = tuple[int, int, int]
"""(storage object, study id, trial id): trial ids repeat across in-memory storages."""


def _chain(sampler: BaseSampler) -> list[BaseSampler]:
    """``sampler`` and every sampler it wraps, outermost first."""
    chain = [sampler]
    while (inner := compat.wrapped_sampler(chain[-1])) is not None and inner not in chain:
        chain.append(inner)
    return chain


def _key(study: Study, trial: FrozenTrial) -> _StateKey:
    return (id(compat.storage_of(study)), compat.study_id(study), compat.trial_id(study, trial))


def trial_seed(trial: BaseTrial) -> int:
    """The seed the OHGW probe built the trial's model with.

    Build the trial's model from it (``model = make_model(ohgw.trial_seed(trial))``, the factory
    given to :class:`~optuna_ohgw.probes.LookaheadProbe`) and the trial trains exactly the weights
    the look-ahead started from. It is derived from ``OHGWSampler(seed=...)`` and the trial
    number, so every process with the same sampler seed gives trial N the same value; the sampler
    also records it as the user attr ``ohgw.seed``, which a :class:`~optuna.trial.FrozenTrial`
    is read from.

    Args:
        trial: A running trial of a study sampled by an :class:`OHGWSampler`, or a finished one
            that carries ``ohgw.seed``.
    """
    if isinstance(trial, FrozenTrial):
        if attrs.SEED not in trial.user_attrs:
            raise ValueError(
                f"Trial {trial.number} has no {attrs.SEED!r} user attr: it was not sampled by "
                "an OHGWSampler with a probe. Pass the running optuna.Trial instead."
            )
        return int(trial.user_attrs[attrs.SEED])
    sampler = getattr(getattr(trial, "study", None), "sampler", None)
    if not isinstance(sampler, OHGWSampler):
        raise ValueError(
            "trial_seed(trial) needs a trial of a study whose sampler is an OHGWSampler; got "
            f"{type(sampler).__name__}."
        )
    return sampler.trial_seed(trial.number)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy % 2**31)


def _move(value: float, delta: float, dist: FloatDistribution) -> float:
    """``value`` moved by ``delta`` internal units; a zero move returns ``value`` bit for bit
    (exp(log(x)) and re-snapping an on-grid value can change the last bit, so the 'none'
    control and zero gradients would otherwise not reproduce the base sampler exactly)."""
    if delta == 0.0:
        return value
    return _to_external(_to_internal(value, dist) + delta, dist)


def _mismatch(check: ProbeCheck) -> str:
    """A failed self-check in one line, with both numbers of each comparison."""
    return (
        f"{check.message or 'the probe disagrees with real training'} (held-out loss: probe "
        f"{check.probe_loss:.6g}, real {check.real_loss:.6g}; derivative along the checked "
        f"direction: probe {check.directional:.6g}, finite difference "
        f"{check.finite_difference:.6g})"
    )


def _verdict_line(check: ProbeCheck) -> str:
    """``ohgw.self_check`` of a check that let the warm start go on."""
    return check.verdict if not check.message else f"{check.verdict}: {check.message}"


def _unmoved(raw: Mapping[str, float], status: str) -> dict[str, Any]:
    """The record of a trial that keeps the base sampler's values."""
    record: dict[str, Any] = {attrs.STATUS: status}
    for name, value in raw.items():
        record[attrs.raw(name)] = value
        record[attrs.nudged(name)] = value
        record[attrs.step(name)] = 0.0
    return record


class OHGWSampler(ForwardingSampler):
    """One-Shot Hyper-Gradient Warm-Start around any Optuna sampler.

    At the first suggest of a float the probe knows (through the relative or the independent
    path), the sampler draws the base sampler's values for the whole probed float space, runs the
    probe once, applies the step rule in each distribution's internal coordinates (log space for
    log-scaled floats), clips to the bounds, snaps to the ``step`` grid, and serves the nudged
    values for the rest of the trial. Integers, categoricals, enqueued/fixed and retried
    parameters are never changed; they are passed to the probe as constants where it needs them.
    Every other hook is forwarded, so with ``probe=None`` the base sampler behaves exactly as it
    would unwrapped.

    Samplers whose values must not move are respected, with one warning at construction: a
    :class:`~optuna.samplers.GridSampler` or :class:`~optuna.samplers.BruteForceSampler`
    enumerates points, so its values are served untouched and the probe is not run (as with
    ``probe=None``); a :class:`~optuna.samplers.PartialFixedSampler`'s fixed parameters are
    served untouched and passed to the probe as constants, its other floats are warm-started.
    Both hold however the samplers are nested (a grid inside a ``PartialFixedSampler`` or a
    ``ProposalSampler`` is still a grid).

    The probe builds the trial's model from :func:`trial_seed` of the trial (recorded as the
    user attr ``ohgw.seed``): build the trial's model from the same seed.

    In parallel processes, give every process the same ``seed`` (the same trial then gets the
    same probe batches and seed in any process) but a differently seeded base sampler (for
    example ``TPESampler(seed=seed + worker_index)``): identically seeded base samplers propose
    the same configurations.

    Args:
        base_sampler: The sampler to wrap; ``TPESampler(seed=seed)`` by default.
        probe: The hypergradient probe; ``None`` turns the warm start off.
        step: A :class:`~optuna_ohgw.steps.BaseStepRule` or a rule name for
            :func:`~optuna_ohgw.steps.make_step_rule`.
        n_steps: Probe-and-step this many times (re-probing after each step); 1 is the method.
        search_space: The float distributions of the probed parameters. Without it the space is
            inferred from earlier trials, so the very first trial is not warm-started.
        seed: Seeds the probe's batches and the random-sign control per trial number, so reruns
            and parallel workers give the same warm start for the same trial.
        max_consecutive_failures: Raise ``RuntimeError`` (failing the trial and, unless caught,
            stopping ``study.optimize``) when the probe fails this many times in a row in this
            process: an exception or a non-finite loss or gradient. ``None`` (default) never
            raises: each failure is recorded as ``ohgw.status`` (``error: ...`` or
            ``nonfinite: ...``), logged, and the trial runs with the base sampler's values.
        self_check: Once per process, on the first trial that would be warm-started and before
            any nudge, compare the probe with the real training it stands for
            (:meth:`~optuna_ohgw.probes.BaseProbe.check`; a probe that returns ``None`` has
            nothing to compare). Its verdict is recorded on that trial as
            ``ohgw.self_check`` (``ok``, ``inconclusive: ...`` or ``mismatch: ...``). On a
            mismatch that trial's ``ohgw.status`` is ``error: self-check: ...``, one warning
            gives both numbers, and the warm start is off for the rest of this process (later
            trials: ``off: ...``, the base sampler's values); with
            ``max_consecutive_failures=1`` it raises instead. An inconclusive check (the real
            loop's finite differences do not converge, as where a ReLU network's look-ahead
            loss jumps) keeps the warm start on, with one warning that says why. The check's
            seconds are recorded as ``ohgw.self_check_seconds`` (and counted in
            ``probe_seconds``).
    """

    def __init__(
        self,
        base_sampler: BaseSampler | None = None,
        probe: BaseProbe | None = None,
        *,
        step: BaseStepRule | str = "normalized",
        n_steps: int = 1,
        search_space: Mapping[str, BaseDistribution] | None = None,
        seed: int | None = None,
        max_consecutive_failures: int | None = None,
        self_check: bool = True,
    ) -> None:
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {n_steps}.")
        if max_consecutive_failures is not None and max_consecutive_failures < 1:
            raise ValueError(
                f"max_consecutive_failures must be at least 1 or None, got "
                f"{max_consecutive_failures}."
            )
        declared: dict[str, FloatDistribution] = {}
        for name, dist in (search_space or {}).items():
            if not isinstance(dist, FloatDistribution):
                raise ValueError(
                    f"search_space[{name!r}] is {type(dist).__name__}; OHGW only nudges "
                    "FloatDistribution parameters, leave the others out."
                )
            declared[name] = dist
        super().__init__(base_sampler if base_sampler is not None else TPESampler(seed=seed))
        self._given_probe = probe
        self._probe = probe
        self._fixed_by_base: dict[str, Any] = {}
        chain = _chain(self._base)
        enumerating = [s for s in chain if isinstance(s, (GridSampler, BruteForceSampler))]
        if probe is not None and enumerating:
            self._probe = None
            inside = "" if enumerating[0] is self._base else f" (in {type(self._base).__name__})"
            warnings.warn(
                f"OHGWSampler: {type(enumerating[0]).__name__}{inside} enumerates its points; "
                "they are served untouched and the probe is not run.",
                stacklevel=2,
            )
        elif probe is not None:
            for fixing in reversed(chain):  # an outer PartialFixedSampler's value wins
                if isinstance(fixing, PartialFixedSampler):
                    self._fixed_by_base.update(compat.partial_fixed_params(fixing))
            if set(self._fixed_by_base) & set(probe.param_names):
                warnings.warn(
                    "OHGWSampler: PartialFixedSampler's fixed parameters "
                    f"{sorted(set(self._fixed_by_base) & set(probe.param_names))} are served "
                    "untouched (the probe sees them as constants).",
                    stacklevel=2,
                )
        self._max_failures = max_consecutive_failures
        self._failures = 0
        self._rule = make_step_rule(step) if isinstance(step, str) else step
        self._n_steps = n_steps
        self._declared = declared
        self._seed = int(seed) if seed is not None else _fresh_seed()
        self._inferred: dict[tuple[int, int], IntersectionSearchSpace] = {}
        self._states: dict[_StateKey, _WarmStart] = {}
        self._lock = threading.Lock()
        self._space_lock = threading.Lock()
        self._self_check = bool(self_check)
        self._check_lock = threading.Lock()
        self._check_done = False
        self._check_failure: str | None = None

    @property
    def probe(self) -> BaseProbe | None:
        return self._given_probe

    @property
    def self_check(self) -> bool:
        """Whether the probe is compared with real training before the first nudge."""
        return self._self_check

    @property
    def seed(self) -> int:
        """The seed every per-trial seed derives from."""
        return self._seed

    def trial_seed(self, number: int) -> int:
        """The seed the probe builds trial ``number``'s model with (see :func:`trial_seed`)."""
        return seeding.trial_seed(self._seed, number)

    @property
    def step_rule(self) -> BaseStepRule:
        return self._rule

    # ----- forwarded hooks ------------------------------------------------------------------

    def reseed_rng(self) -> None:
        # Optuna calls this in every worker thread when n_jobs != 1. Only the base sampler is
        # reseeded: the warm start's randomness is already derived per trial number from
        # ``self._seed``, so keeping it gives trial N the same probe seed and random signs
        # however many threads run (and the same seed the task derives for its model).
        super().reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        super().before_trial(study, trial)
        if self._probe is None:
            return
        fixed = trial.system_attrs.get("fixed_params") or {}
        if fixed and all(name in fixed for name in self._probe.param_names):
            # An enqueued or retried trial never reaches the sampler for these: say so.
            state = self._state(study, trial)
            state.done = True
            status = "skipped: every probed parameter is fixed (enqueued, retried or resumed)"
            self._record(study, trial, {attrs.STATUS: status})

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._states.pop(_key(study, trial), None)
        super().after_trial(study, trial, state, values)

    def sample_relative(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        relative = super().sample_relative(study, trial, search_space)
        if self._probe is None:
            return relative
        wanted = set(self._probe.param_names)
        probed = {
            name: dist
            for name, dist in search_space.items()
            if name in relative and name in wanted and isinstance(dist, FloatDistribution)
        }
        state = self._state(study, trial)
        context = self._probe.context_names
        if (
            probed
            and not state.done
            and any(n not in trial.params and n not in relative for n in context)
        ):
            # The probe needs values (a width) the trial has not suggested yet: warm-start at
            # the first probed float's suggest instead, from these relative values.
            state.deferred = dict(relative)
            return {n: v for n, v in relative.items() if n not in probed}
        if probed and not state.done:
            self._warm_start(study, trial, state, probed, relative)
        relative = dict(relative)
        for name in probed:
            if name in state.values and state.dists.get(name) == probed[name]:
                relative[name] = state.values[name]
        return relative

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if (
            self._probe is not None
            and isinstance(param_distribution, FloatDistribution)
            and param_name in self._probe.param_names
        ):
            state = self._state(study, trial)
            if not state.done:
                current = {param_name: param_distribution}
                self._warm_start(study, trial, state, current, state.deferred)
            if param_name in state.values:
                if state.dists[param_name] == param_distribution:
                    return state.values[param_name]
                _logger.warning(
                    f"Trial {trial.number}: suggest_float({param_name!r}) uses "
                    f"{param_distribution} but OHGW probed {state.dists[param_name]}; the "
                    "sampler's own value is used. Keep the distribution fixed (or update "
                    "search_space=) to warm-start it."
                )
        return super().sample_independent(study, trial, param_name, param_distribution)

    # ----- the warm start -------------------------------------------------------------------

    def _state(self, study: Study, trial: FrozenTrial) -> _WarmStart:
        with self._lock:
            return self._states.setdefault(_key(study, trial), _WarmStart())

    def _inferred_space(self, study: Study) -> dict[str, BaseDistribution]:
        """The intersection of this study's earlier trials (one cache per study: a sampler
        shared by several studies must not mix their spaces)."""
        key = (id(compat.storage_of(study)), compat.study_id(study))
        with self._space_lock:
            space = self._inferred.setdefault(key, IntersectionSearchSpace(include_pruned=True))
            return dict(space.calculate(study))

    def _float_space(
        self, study: Study, current: Mapping[str, FloatDistribution]
    ) -> dict[str, FloatDistribution]:
        assert self._probe is not None
        known: dict[str, BaseDistribution] = dict(self._declared)
        if not known:
            known = self._inferred_space(study)
        known.update(current)
        return {
            name: known[name]  # type: ignore[misc]
            for name in self._probe.param_names
            if isinstance(known.get(name), FloatDistribution)
        }

    def _warm_start(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _WarmStart,
        current: Mapping[str, FloatDistribution],
        relative: Mapping[str, Any],
    ) -> None:
        assert self._probe is not None
        state.done = True
        names = list(self._probe.param_names)
        space = self._float_space(study, current)
        fixed_params = trial.system_attrs.get("fixed_params", {}) or {}
        pinned = {n: float(trial.params[n]) for n in names if n in trial.params}
        pinned.update({n: float(fixed_params[n]) for n in names if n in fixed_params})
        pinned.update({n: float(v) for n, v in self._fixed_by_base.items() if n in names})
        context = self._probe.context_names
        held = {n: trial.params[n] if n in trial.params else relative.get(n) for n in context}
        unknown = [n for n, v in held.items() if v is None]
        if unknown:
            self._record(
                study,
                trial,
                {
                    attrs.STATUS: f"skipped: the probe needs {unknown} before the probed floats; "
                    "suggest them first"
                },
            )
            return
        pinned = {**held, **pinned}  # constants for the probe, never nudged
        missing = [n for n in names if n not in space and n not in pinned]
        if missing:
            self._record(
                study,
                trial,
                {
                    attrs.STATUS: f"skipped: no float distribution known yet for {missing}; "
                    "pass search_space= to OHGWSampler to warm-start from the first trial"
                },
            )
            return
        raw: dict[str, float] = {}
        for name, dist in space.items():
            if name in pinned:
                continue
            if name in relative:
                raw[name] = float(relative[name])
            else:
                raw[name] = float(self._base.sample_independent(study, trial, name, dist))
        state.dists = {name: space[name] for name in raw}
        state.values = dict(raw)
        if not raw:
            self._record(study, trial, {attrs.STATUS: "skipped: every probed parameter is fixed"})
            return
        check_seconds = None
        if self._rule.needs_probe and self._self_check:
            go_on, check_seconds = self._self_checked(study, trial, raw, pinned)
            if not go_on:
                return
        self._run_probe(study, trial, state, raw, pinned, check_seconds)

    def _self_checked(
        self,
        study: Study,
        trial: FrozenTrial,
        raw: Mapping[str, float],
        pinned: Mapping[str, float],
    ) -> tuple[bool, float | None]:
        """Whether the warm start may go on, running the probe's self-check first if no trial
        in this process has (other threads wait for its verdict), and the seconds of the check
        this trial ran (``None`` if none). A trial that may not go on keeps the base sampler's
        values; its status is recorded here."""
        assert self._probe is not None
        with self._check_lock:
            if self._check_done:
                if self._check_failure is None:
                    return True, None
                self._record(study, trial, _unmoved(raw, f"off: {self._check_failure}"))
                return False, None
            self._check_done = True
            start = time.perf_counter()
            try:
                check = self._probe.check({**pinned, **raw}, seed=self.trial_seed(trial.number))
                mismatch = check is not None and check.verdict == "mismatch"
                failure = _mismatch(check) if mismatch else None  # type: ignore[arg-type]
            except Exception as err:  # noqa: BLE001 - a failed check, never a crashed study
                check, failure = None, f"the check raised {type(err).__name__}: {err}"
            seconds = time.perf_counter() - start
            if failure is None:
                if check is None:
                    return True, None
                self._record(study, trial, {attrs.SELF_CHECK: _verdict_line(check)})
                if check.verdict == "inconclusive":
                    warnings.warn(
                        f"OHGWSampler: the probe's self-check was inconclusive (trial "
                        f"{trial.number}); the warm start stays on: {check.message}",
                        stacklevel=2,
                    )
                return True, seconds
            self._check_failure = (
                f"the probe's self-check failed in this process (trial {trial.number}); the "
                "base sampler's values are served"
            )
            record = _unmoved(raw, f"error: self-check: {failure}")
            record[attrs.SELF_CHECK] = f"mismatch: {failure}"
            record.update({attrs.PROBE_SECONDS: seconds, attrs.SELF_CHECK_SECONDS: seconds})
            self._record(study, trial, record)
        failures = self._count_failure(True)
        if self._max_failures is not None and failures >= self._max_failures:
            raise RuntimeError(
                f"OHGWSampler: the probe's self-check failed (trial {trial.number}): {failure}. "
                "Make the probe match the trial's training code, or pass "
                "max_consecutive_failures=None to go on with the base sampler's values."
            )
        warnings.warn(
            f"OHGWSampler: the probe's self-check failed on trial {trial.number}: {failure}. "
            "The warm start is off in this process; trials go on with the base sampler's "
            "values. Make the probe's optimizer, scheduler, clipping, loss and model match the "
            "trial's training code (or pass self_check=False to skip the check).",
            stacklevel=2,
        )
        return False, seconds

    def _run_probe(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _WarmStart,
        raw: Mapping[str, float],
        pinned: Mapping[str, float],
        check_seconds: float | None = None,
    ) -> None:
        assert self._probe is not None
        dists = state.dists
        # The task seeds the trial's model with the same value: the look-ahead starts from the
        # weights the trial will train.
        probe_seed = self.trial_seed(trial.number)
        rng = np.random.default_rng(np.random.SeedSequence([self._seed, trial.number]))
        spans = {n: _to_internal(d.high, d) - _to_internal(d.low, d) for n, d in dists.items()}
        values = dict(raw)
        seconds = check_seconds or 0.0
        lookaheads = 0
        first: tuple[float, dict[str, float]] | None = None
        status = "ok"
        lows = {n: _to_internal(d.low, d) for n, d in dists.items()}
        highs = {n: _to_internal(d.high, d) for n, d in dists.items()}

        def lookahead(delta: Mapping[str, float]) -> float:
            # The look-ahead loss at the values the step would give (clipped and snapped).
            nonlocal seconds, lookaheads
            moved = {n: _move(v, float(delta[n]), dists[n]) for n, v in values.items()}
            result = self._probe.loss({**pinned, **moved}, seed=probe_seed)  # type: ignore[union-attr]
            seconds += result.seconds
            lookaheads += 1
            return float(result.value)

        for _ in range(self._n_steps):
            try:
                if self._rule.needs_probe:
                    result = self._probe({**pinned, **values}, seed=probe_seed)
                    seconds += result.seconds
                    grads = {
                        n: float(result.grads[n]) * (values[n] if dists[n].log else 1.0)
                        for n in values
                    }
                    bad = [n for n, g in grads.items() if not math.isfinite(g)]
                    if bad or not math.isfinite(result.value):
                        status = (
                            f"nonfinite: probe loss {result.value}, gradient of {bad or 'none'}"
                        )
                        break
                    if first is None:
                        first = (float(result.value), grads)
                else:
                    grads = {n: 0.0 for n in values}
                coords = {n: _to_internal(v, dists[n]) for n, v in values.items()}
                context = StepContext(coords, lows, highs, lookahead)
                delta = self._rule(grads, spans, rng, context)
            except Exception as err:  # noqa: BLE001 - a probe must never crash the study
                status = f"error: {type(err).__name__}: {err}"
                break
            values = {n: _move(v, float(delta[n]), dists[n]) for n, v in values.items()}
        record: dict[str, Any] = {
            attrs.STATUS: status,
            attrs.PROBE_SECONDS: seconds,
            attrs.STEP_RULE: self._rule.name,
            attrs.N_PROBES: self._n_steps if self._rule.needs_probe else 0,
        }
        if lookaheads:
            record[attrs.LOOKAHEADS] = lookaheads
        if check_seconds is not None:
            record[attrs.SELF_CHECK_SECONDS] = check_seconds
        failures = self._count_failure(status != "ok")
        if status != "ok":
            values = dict(raw)
            if self._max_failures is None or failures < self._max_failures:
                _logger.warning(
                    f"Trial {trial.number}: the OHGW probe failed ({status}); the trial goes on "
                    "with the sampler's raw values. Check the probe's model and data, or narrow "
                    "the search space."
                )
        if first is not None:
            record[attrs.PROBE_LOSS] = first[0]
        for name, value in raw.items():
            record[attrs.raw(name)] = value
            record[attrs.nudged(name)] = values[name]
            record[attrs.step(name)] = _to_internal(values[name], dists[name]) - _to_internal(
                value, dists[name]
            )
            if first is not None:
                record[attrs.grad(name)] = first[1][name]
        state.values = values
        self._record(study, trial, record)
        if self._max_failures is not None and failures >= self._max_failures:
            raise RuntimeError(
                f"OHGWSampler: the probe failed {failures} times in a row (trial "
                f"{trial.number}: {status}). Fix the probe's model, data or loss, or pass "
                "max_consecutive_failures=None to go on with the base sampler's values."
            )

    def _count_failure(self, failed: bool) -> int:
        """Consecutive failures so far in this process, this one included."""
        with self._lock:
            self._failures = self._failures + 1 if failed else 0
            return self._failures

    def _record(self, study: Study, trial: FrozenTrial, record: Mapping[str, Any]) -> None:
        record = {attrs.SEED: self.trial_seed(trial.number), **record}
        compat.set_user_attrs(compat.storage_of(study), compat.trial_id(study, trial), record)
