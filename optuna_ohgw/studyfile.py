"""Study files: one TOML file per named study, parsed into a validated :class:`StudyConfig`.

Every problem is reported as one :class:`StudyFileError` line that names the file, the key and
what to write instead; unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import inspect
import math
import pathlib
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)

from optuna_ohgw.schedulers._registry import SCHEDULER_SPECS, SchedulerSpec
from optuna_ohgw.steps import STEP_RULES

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
}
SCHEDULERS = tuple(SCHEDULER_SPECS)
PROMOTION_SCHEDULERS = tuple(name for name, spec in SCHEDULER_SPECS.items() if spec.promotion)
"""Schedulers that pause and resume trials (checkpoints, promotion loop) instead of pruning."""
TASK_NAMES = ("digits", "mnist1d", "cifar10", "fashion")
ROLES = ("lr", "weight_decay", "momentum", "label_smoothing", "augment")
"""The hyperparameters the tasks train with (SGD: the probe's ``beta1``/``beta2`` do not apply)."""
ROLE_DOMAINS: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, math.inf, False),
    "weight_decay": (0.0, math.inf, True),
    "momentum": (0.0, 1.0, True),
    "label_smoothing": (0.0, 1.0, True),
    "augment": (0.0, math.inf, True),
}
"""``role -> (low, high, low included)``: the values ``torch.optim.SGD`` (``lr > 0``,
``weight_decay >= 0``, ``momentum`` in [0, 1]), the cross-entropy's ``label_smoothing``
(in [0, 1]) and the augmentation (``augment`` pixels >= 0) accept; fixed values and the search
space's bounds must lie in them."""


def shipped_study_dir() -> pathlib.Path:
    """The study files shipped with optuna-ohgw (package data of ``optuna_ohgw_studies``)."""
    try:
        return pathlib.Path(str(importlib.resources.files("optuna_ohgw_studies")))
    except ModuleNotFoundError:  # a source checkout on sys.path that was never installed
        return pathlib.Path(__file__).resolve().parents[1] / "studies"


STUDY_DIRS = (pathlib.Path("studies"), shipped_study_dir())
"""Where a study is looked up by name: ``./studies``, then the shipped study files."""


class StudyFileError(ValueError):
    """A study file that cannot be used; the message says where and what to do."""


@dataclasses.dataclass(frozen=True)
class OHGWConfig:
    enabled: bool = True
    step: str = "normalized"
    base: str = "normalized"
    eta: float = 1e-3
    fraction: float = 0.05
    direction: str = "sign"
    k: int = 0
    n_pairs: int = 1
    n_steps: int = 1
    batch_size: int = 128
    reprobe: bool = False
    """Promotion schedulers: probe again from the checkpoint's weights at every resume and nudge
    the configuration before it trains on (see :mod:`optuna_ohgw.schedulers._reprobe`)."""
    self_check: bool = True
    """Compare the probe with real training once per worker process before the first nudge
    (``OHGWSampler(self_check=...)``)."""

    def step_options(self) -> dict[str, Any]:
        """Keyword options for :func:`optuna_ohgw.steps.make_step_rule`."""
        if self.step == "toward-middle":
            return {"fraction": self.fraction}
        wrappers = ("random-sign", "flipped", "line-search")
        rule = self.base if self.step in wrappers else self.step
        if rule == "raw":
            return {"eta": self.eta}
        if rule == "normalized":
            return {"fraction": self.fraction, "direction": self.direction}
        return {}


@dataclasses.dataclass(frozen=True)
class SchedulerConfig:
    name: str = "asha"
    min_resource: int = 1
    reduction_factor: int = 3
    advance: str = "epoch"
    """DyHPO only: one step is one ``epoch`` or one ``rung`` of the geometric ladder."""
    promotion: str = "floor"
    """Promotion ASHA and PASHA: ``floor`` (top ``floor(n/eta)``) or ``quantile``."""

    @property
    def spec(self) -> SchedulerSpec:
        """The scheduler's entry in :data:`~optuna_ohgw.schedulers._registry.SCHEDULER_SPECS`."""
        return SCHEDULER_SPECS[self.name]

    def options(self) -> dict[str, Any]:
        """The scheduler-specific settings its entry reads (e.g. DyHPO's ``advance``)."""
        return {key: getattr(self, key) for key in self.spec.options}


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    n_trials: int = 0
    total_epochs: int = 0
    wall_seconds: float = 0.0

    def is_unbounded(self) -> bool:
        return not (self.n_trials or self.total_epochs or self.wall_seconds)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Everything a named study needs; built by :func:`load_study_file`."""

    name: str
    task: str
    path: pathlib.Path
    recipe: str = ""
    """The training recipe (``recipe = "train.py"`` in the file, made absolute against the study
    file's folder; or ``package.module:NAME``); ``task`` is then empty."""
    direction: str = "maximize"
    metric: str = "val_accuracy"
    target: float | None = None
    seed: int = 0
    max_epochs: int = 9
    batch_size: int = 0
    sampler: str = "tpe"
    sampler_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    scheduler: SchedulerConfig = SchedulerConfig()
    ohgw: OHGWConfig = OHGWConfig()
    budget: BudgetConfig = BudgetConfig()
    space: Mapping[str, BaseDistribution] = dataclasses.field(default_factory=dict)
    fixed: Mapping[str, float] = dataclasses.field(default_factory=dict)
    artifacts: str = ""
    """Where paused trials keep checkpoints: a folder or ``s3://bucket/prefix`` ("": default)."""

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    @property
    def label(self) -> str:
        """What the study trains: the task's name, or the recipe's file name."""
        if not self.recipe:
            return self.task
        return pathlib.Path(self.recipe.partition(":")[0]).name + (
            f":{self.recipe.partition(':')[2]}" if ":" in self.recipe else ""
        )

    @property
    def study_name(self) -> str:
        """The name in the storage: ``-vanilla`` is appended when OHGW is off."""
        return self.name if self.ohgw.enabled else f"{self.name}-vanilla"


class _Table:
    """Reads typed keys from one TOML table and rejects the keys nobody asked for."""

    def __init__(self, data: Mapping[str, Any], where: str, path: pathlib.Path) -> None:
        if not isinstance(data, Mapping):
            raise StudyFileError(f"{path}: [{where}] must be a table, got {data!r}")
        self.data = dict(data)
        self.where = where
        self.path = path

    def error(self, key: str, problem: str) -> StudyFileError:
        loc = ".".join(part for part in (self.where, key) if part)
        return StudyFileError(f"{self.path}: {loc}: {problem}")

    def take(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.error(key, "is required")
            return default
        value = self.data.pop(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"expected {_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self.error(
                key, f"expected {_names(kinds)}, got {type(value).__name__} {value!r}"
            )
        return value

    def table(self, key: str) -> _Table:
        where = f"{self.where}.{key}" if self.where else key
        return _Table(self.data.pop(key, {}), where, self.path)

    def done(self) -> None:
        if self.data:
            keys = ", ".join(sorted(self.data))
            loc = f"[{self.where}]" if self.where else "the top level"
            raise StudyFileError(f"{self.path}: unknown key(s) {keys} in {loc}")


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _choice(table: _Table, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
    value = table.take(key, str, default)
    if value not in choices:
        raise table.error(key, f"unknown value {value!r}; choose from {', '.join(choices)}")
    return value


def _positive(table: _Table, key: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise table.error(key, f"must be {bound}, got {value}")


def _check_role(table: _Table, key: str, role: str, value: float) -> None:
    """``value`` of hyperparameter ``role`` within :data:`ROLE_DOMAINS`, or a one-line error."""
    low, high, closed = ROLE_DOMAINS[role]
    if not math.isfinite(value) or value > high or value < low or (value == low and not closed):
        bound = f"{'[' if closed else '('}{low:g}, {high:g}]".replace("inf]", "inf)")
        raise table.error(key, f"{role} must be in {bound}, got {value}")


def _range(spec: _Table, number: type) -> tuple[Any, Any, bool, Any]:
    """``low``, ``high``, ``log`` and ``step`` of one ``[space]`` entry, checked."""
    low = spec.take("low", number)
    high = spec.take("high", number)
    log = spec.take("log", bool, False)
    step = spec.take("step", number, None)
    spec.done()
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise spec.error("low", f"bounds make no sense: low={low} must be < high={high}")
    if log and low <= 0:
        raise spec.error("low", f"log-scaled bounds must be > 0, got low={low}")
    if step is not None and (log or step <= 0):
        raise spec.error("step", "step must be > 0 and cannot be combined with log = true")
    return low, high, log, step


def _space(table: _Table) -> dict[str, FloatDistribution]:
    space: dict[str, FloatDistribution] = {}
    for name in list(table.data):
        if name not in ROLES:
            raise table.error(name, f"unknown hyperparameter; choose from {', '.join(ROLES)}")
        spec = table.table(name)
        low, high, log, step = _range(spec, float)
        _check_role(spec, "low", name, low)
        _check_role(spec, "high", name, high)
        space[name] = FloatDistribution(low, high, log=log, step=step)
    if not space:
        raise table.error(
            "", "the search space is empty; add e.g. lr = {low=1e-3, high=1, log=true}"
        )
    return space


def _recipe_space(table: _Table) -> dict[str, BaseDistribution]:
    """A recipe's ``[space]``: the user's own names; floats (``low``, ``high``, ``log``,
    ``step``), ``type = "int"`` and ``choices = [...]``."""
    space: dict[str, BaseDistribution] = {}
    for name in list(table.data):
        spec = table.table(name)
        if "choices" in spec.data:
            choices = spec.take("choices", list)
            spec.done()
            if not choices or any(not isinstance(c, (bool, int, float, str)) for c in choices):
                raise spec.error("choices", "give a non-empty list of numbers or strings")
            space[name] = CategoricalDistribution(choices)
            continue
        kind = _choice(spec, "type", ("float", "int"), "float")
        low, high, log, step = _range(spec, int if kind == "int" else float)
        if kind == "int":
            space[name] = IntDistribution(low, high, log=log, step=step or 1)
        else:
            space[name] = FloatDistribution(low, high, log=log, step=step)
    if not space:
        raise table.error(
            "", "the search space is empty; add e.g. lr = {low=1e-4, high=1e-1, log=true}"
        )
    return space


def _scheduler_options(table: _Table, spec: SchedulerSpec) -> dict[str, str]:
    """The keys of ``spec.options`` (validated), and a clear line for another scheduler's key."""
    options = {
        key: _choice(table, key, choices, choices[0]) for key, choices in spec.options.items()
    }
    for key in list(table.data):
        owners = [s for s in SCHEDULER_SPECS.values() if key in s.options]
        if owners:
            labels = " / ".join(s.label for s in owners)
            names = " or ".join(f'"{s.name}"' for s in owners)
            raise table.error(key, f"is a {labels} setting; remove it or use name = {names}")
    return options


def find_study_file(name: str, dirs: Sequence[pathlib.Path]) -> pathlib.Path:
    """A study file by path, or by name (``NAME.toml``) in the first of ``dirs`` that has it."""
    path = pathlib.Path(name)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise StudyFileError(f"{path}: no such study file")
        return path
    for folder in dirs:
        candidate = folder / f"{name}.toml"
        if candidate.exists():
            return candidate
    known = sorted({p.stem for folder in dirs if folder.is_dir() for p in folder.glob("*.toml")})
    raise StudyFileError(
        f"unknown study {name!r}; known studies: {', '.join(known) or 'none'} "
        "(or pass a path to a .toml file)"
    )


def load_study_file(path: str | pathlib.Path) -> StudyConfig:
    """Parse and validate a study file."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise StudyFileError(f"{path}: no such study file") from None
    except tomllib.TOMLDecodeError as err:
        raise StudyFileError(f"{path}: not valid TOML ({err})") from None
    top = _Table(raw, "", path)
    name = top.take("name", str)
    recipe = top.take("recipe", str, "")
    if recipe and "task" in top.data:
        raise top.error("recipe", "give task or recipe, not both")
    task = "" if recipe else _choice(top, "task", TASK_NAMES)
    if recipe:
        from optuna_ohgw.recipes._loader import resolve_spec

        recipe = resolve_spec(recipe, path.parent)
    direction = _choice(top, "direction", ("maximize", "minimize"), "maximize")
    metric = top.take("metric", str, "val_accuracy")
    target = top.take("target", float, None)
    seed = top.take("seed", int, 0)
    max_epochs = top.take("max_epochs", int)
    batch_size = top.take("batch_size", int, 0)
    artifacts = top.take("artifacts", str, "")
    if max_epochs < 1:
        raise top.error("max_epochs", f"must be >= 1, got {max_epochs}")
    if batch_size < 0:
        raise top.error(
            "batch_size", f"must be >= 1 (or 0 for the task's default), got {batch_size}"
        )

    sampler_t = top.table("sampler")
    sampler = _choice(sampler_t, "name", tuple(SAMPLERS), "tpe")
    options = dict(sampler_t.data)
    sampler_t.data.clear()
    accepted = inspect.signature(SAMPLERS[sampler]).parameters
    for key in options:
        if key not in accepted or key in ("seed", "search_space"):
            raise sampler_t.error(key, f"not an option of {SAMPLERS[sampler].__name__}")

    sched_t = top.table("scheduler")
    sched_name = _choice(sched_t, "name", SCHEDULERS, "asha")
    scheduler = SchedulerConfig(
        name=sched_name,
        min_resource=sched_t.take("min_resource", int, 1),
        reduction_factor=sched_t.take("reduction_factor", int, 3),
        **_scheduler_options(sched_t, SCHEDULER_SPECS[sched_name]),
    )
    sched_t.done()
    if not 1 <= scheduler.min_resource <= max_epochs:
        raise sched_t.error("min_resource", f"must be in [1, max_epochs={max_epochs}]")
    if scheduler.reduction_factor < 2:
        raise sched_t.error("reduction_factor", "must be >= 2")

    ohgw_t = top.table("ohgw")
    ohgw = OHGWConfig(
        enabled=ohgw_t.take("enabled", bool, True),
        step=_choice(ohgw_t, "step", STEP_RULES, "normalized"),
        base=_choice(ohgw_t, "base", ("raw", "normalized"), "normalized"),
        eta=ohgw_t.take("eta", float, 1e-3),
        fraction=ohgw_t.take("fraction", float, 0.05),
        direction=_choice(ohgw_t, "direction", ("sign", "unit"), "sign"),
        k=ohgw_t.take("k", int, 0),
        n_pairs=ohgw_t.take("n_pairs", int, 1),
        n_steps=ohgw_t.take("n_steps", int, 1),
        batch_size=ohgw_t.take("batch_size", int, 128),
        reprobe=ohgw_t.take("reprobe", bool, False),
        self_check=ohgw_t.take("self_check", bool, True),
    )
    ohgw_t.done()
    _positive(ohgw_t, "eta", ohgw.eta)
    if not 0 < ohgw.fraction <= 1:
        raise ohgw_t.error("fraction", f"must be in (0, 1], got {ohgw.fraction}")
    for key in ("n_pairs", "n_steps", "batch_size"):
        if getattr(ohgw, key) < 1:
            raise ohgw_t.error(key, f"must be >= 1, got {getattr(ohgw, key)}")
    if ohgw.reprobe and scheduler.name not in PROMOTION_SCHEDULERS:
        raise ohgw_t.error(
            "reprobe", f"needs a promotion scheduler ({', '.join(PROMOTION_SCHEDULERS)})"
        )
    if ohgw.k < 0:
        raise ohgw_t.error("k", f"must be >= 1 (or 0 for automatic), got {ohgw.k}")

    budget_t = top.table("budget")
    budget = BudgetConfig(
        n_trials=budget_t.take("n_trials", int, 0),
        total_epochs=budget_t.take("total_epochs", int, 0),
        wall_seconds=budget_t.take("wall_seconds", float, 0.0),
    )
    budget_t.done()
    for key in ("n_trials", "total_epochs", "wall_seconds"):
        _positive(budget_t, key, getattr(budget, key), allow_zero=True)
    if budget.is_unbounded():
        raise budget_t.error(
            "n_trials", "set at least one of n_trials, total_epochs, wall_seconds"
        )

    space = _recipe_space(top.table("space")) if recipe else _space(top.table("space"))
    fixed_t = top.table("fixed")
    fixed: dict[str, float] = {}
    if recipe and fixed_t.data:
        raise fixed_t.error("", "a recipe sets its own constants; [fixed] is for built-in tasks")
    for role in list(fixed_t.data):
        if role not in ROLES:
            raise fixed_t.error(role, f"unknown hyperparameter; choose from {', '.join(ROLES)}")
        if role in space:
            raise fixed_t.error(role, "is both in [space] and [fixed]; keep one")
        fixed[role] = fixed_t.take(role, float)
        _check_role(fixed_t, role, role, fixed[role])
    if not recipe and "lr" not in space and "lr" not in fixed:
        raise top.error("space", "needs lr (in [space] or [fixed])")
    top.done()
    return StudyConfig(
        name=name,
        task=task,
        path=path,
        recipe=recipe,
        direction=direction,
        metric=metric,
        target=target,
        seed=seed,
        max_epochs=max_epochs,
        batch_size=batch_size,
        sampler=sampler,
        sampler_options=options,
        scheduler=scheduler,
        ohgw=ohgw,
        budget=budget,
        space=space,
        fixed=fixed,
        artifacts=artifacts,
    )


def apply_overrides(config: StudyConfig, overrides: Mapping[str, Any]) -> StudyConfig:
    """Command-line overrides: ``seed``, ``no_ohgw`` and ``budget`` (``{key: value}`` with the
    keys of the ``[budget]`` table). Values are validated like the file's own."""
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "seed":
            changes["seed"] = _override_number("--seed", value, int)
        elif key == "no_ohgw":
            if value:
                changes["ohgw"] = dataclasses.replace(config.ohgw, enabled=False)
        elif key == "budget":
            budget = dataclasses.asdict(config.budget)
            for name, amount in dict(value).items():
                if name not in budget:
                    raise StudyFileError(
                        f"--budget {name}: unknown budget; use n_trials, total_epochs or "
                        "wall_seconds"
                    )
                kind = float if name == "wall_seconds" else int
                amount = _override_number(f"--budget {name}", amount, kind)
                if not math.isfinite(amount) or amount < 0:
                    raise StudyFileError(f"--budget {name}: must be >= 0, got {amount}")
                budget[name] = amount
            changes["budget"] = BudgetConfig(**budget)
            if changes["budget"].is_unbounded():
                raise StudyFileError(
                    "--budget: set at least one of n_trials, total_epochs, wall_seconds"
                )
        else:
            raise StudyFileError(f"unknown override {key!r}")
    return config.replace(**changes)


def _override_number(where: str, value: Any, kind: type[int] | type[float]) -> Any:
    """``value`` (a number or the command line's string) as ``kind``, or a one-line error."""
    try:
        number = kind(value)
        if kind is int and isinstance(value, float) and number != value:
            raise ValueError  # int(2.5) would silently give 2
    except (TypeError, ValueError, OverflowError):
        name = "an integer" if kind is int else "a number"
        raise StudyFileError(f"{where}: expected {name}, got {value!r}") from None
    return number


def config_to_dict(config: StudyConfig) -> dict[str, Any]:
    """``config`` as plain JSON values; :func:`config_from_dict` gives it back, equal.

    Worker processes receive the resolved configuration this way, overrides applied."""
    data = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    data["path"] = str(config.path)
    data["sampler_options"] = dict(config.sampler_options)
    for key in ("scheduler", "ohgw", "budget"):
        data[key] = dataclasses.asdict(data[key])
    data["space"] = {n: distribution_to_json(d) for n, d in config.space.items()}
    data["fixed"] = dict(config.fixed)
    return data


def config_from_dict(data: Mapping[str, Any]) -> StudyConfig:
    """The inverse of :func:`config_to_dict`."""
    data = dict(data)
    data["path"] = pathlib.Path(data["path"])
    data["scheduler"] = SchedulerConfig(**data["scheduler"])
    data["ohgw"] = OHGWConfig(**data["ohgw"])
    data["budget"] = BudgetConfig(**data["budget"])
    space = {n: json_to_distribution(d) for n, d in data["space"].items()}
    data["space"] = space
    return StudyConfig(**data)
