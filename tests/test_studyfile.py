"""Study files: the shipped ones load, values round-trip, and every bad input is one clear line."""

from __future__ import annotations

import dataclasses
import math
import pathlib
import warnings

import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_ohgw.studyfile import (
    SAMPLERS,
    BudgetConfig,
    OHGWConfig,
    SchedulerConfig,
    StudyConfig,
    StudyFileError,
    apply_overrides,
    find_study_file,
    load_study_file,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
SHIPPED = sorted(STUDIES.glob("*.toml"))

MINIMAL = """\
name = "tiny"
task = "digits"
max_epochs = 3

[budget]
n_trials = 4

[space]
lr = { low = 1e-3, high = 1.0, log = true }
"""

FULL = """\
name = "full"
task = "mnist1d"
direction = "minimize"
metric = "val_loss"
target = 0.25
seed = 7
max_epochs = 9
batch_size = 32

[sampler]
name = "tpe"
n_startup_trials = 5
multivariate = true

[scheduler]
name = "hyperband"
min_resource = 2
reduction_factor = 4

[ohgw]
enabled = false
step = "random-sign"
base = "raw"
eta = 0.01
fraction = 0.2
direction = "unit"
k = 3
n_pairs = 2
n_steps = 4
batch_size = 64
self_check = false

[budget]
n_trials = 10
total_epochs = 100
wall_seconds = 3600

[space]
lr = { low = 1e-4, high = 0.5, log = true }
momentum = { low = 0.0, high = 0.9, step = 0.1 }
augment = { low = 0, high = 4 }

[fixed]
weight_decay = 5e-4
label_smoothing = 0
"""


def write(tmp_path: pathlib.Path, text: str, name: str = "study.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def expect_error(path: pathlib.Path, *needles: str) -> str:
    """Load ``path``, expect a StudyFileError and check its message is one line naming it all."""
    with pytest.raises(StudyFileError) as info:
        load_study_file(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


# ----- the shipped study files ----------------------------------------------------------------


def test_studies_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    for task in ("digits", "mnist1d", "cifar10"):
        for scheduler in ("asha", "hyperband"):
            assert f"{task}-{scheduler}" in names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_study_loads(path: pathlib.Path) -> None:
    config = load_study_file(path)
    assert isinstance(config, StudyConfig)
    assert config.name == path.stem  # the file name is the study's name
    if config.recipe:  # a built-in recipe's study: NAME-SCHEDULER
        assert not config.task and path.stem.endswith(f"-{config.scheduler.name}")
    else:
        assert config.task == path.stem.split("-")[0]
        assert config.scheduler.name == path.stem.split("-", 1)[1]
    assert config.path == path
    assert config.ohgw.enabled
    assert config.study_name == config.name
    assert "lr" in config.space and config.space["lr"].log
    assert not config.budget.is_unbounded()
    assert 1 <= config.scheduler.min_resource <= config.max_epochs
    for dist in config.space.values():
        assert isinstance(dist, FloatDistribution)
    # The configured sampler accepts the study's options.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        SAMPLERS[config.sampler](seed=config.seed, **dict(config.sampler_options))


# ----- values round-trip ----------------------------------------------------------------------


def test_minimal_file_gets_the_defaults(tmp_path: pathlib.Path) -> None:
    config = load_study_file(write(tmp_path, MINIMAL))
    assert config.name == "tiny"
    assert config.task == "digits"
    assert config.direction == "maximize"
    assert config.metric == "val_accuracy"
    assert config.target is None
    assert config.seed == 0
    assert config.max_epochs == 3
    assert config.batch_size == 0
    assert config.sampler == "tpe"
    assert dict(config.sampler_options) == {}
    assert config.scheduler == SchedulerConfig()
    assert config.ohgw == OHGWConfig()
    assert config.budget == BudgetConfig(n_trials=4)
    assert dict(config.space) == {"lr": FloatDistribution(1e-3, 1.0, log=True)}
    assert dict(config.fixed) == {}


def test_full_file_round_trips(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, FULL)
    config = load_study_file(path)
    assert config.path == path
    assert (config.name, config.task) == ("full", "mnist1d")
    assert (config.direction, config.metric, config.target) == ("minimize", "val_loss", 0.25)
    assert (config.seed, config.max_epochs, config.batch_size) == (7, 9, 32)
    assert config.sampler == "tpe"
    assert dict(config.sampler_options) == {"n_startup_trials": 5, "multivariate": True}
    assert config.scheduler == SchedulerConfig("hyperband", min_resource=2, reduction_factor=4)
    assert config.ohgw == OHGWConfig(
        enabled=False,
        step="random-sign",
        base="raw",
        eta=0.01,
        fraction=0.2,
        direction="unit",
        k=3,
        n_pairs=2,
        n_steps=4,
        batch_size=64,
        self_check=False,
    )
    assert config.ohgw.step_options() == {"eta": 0.01}  # random-sign scales its base rule
    assert config.budget == BudgetConfig(n_trials=10, total_epochs=100, wall_seconds=3600.0)
    assert isinstance(config.budget.wall_seconds, float)
    assert dict(config.space) == {
        "lr": FloatDistribution(1e-4, 0.5, log=True),
        "momentum": FloatDistribution(0.0, 0.9, step=0.1),
        "augment": FloatDistribution(0.0, 4.0),
    }
    assert config.space["lr"].log and not config.space["momentum"].log
    assert config.space["momentum"].step == pytest.approx(0.1)
    assert config.space["augment"].step is None
    assert dict(config.fixed) == {"weight_decay": 5e-4, "label_smoothing": 0.0}
    assert all(isinstance(v, float) for v in config.fixed.values())
    assert config.study_name == "full-vanilla"


@pytest.mark.parametrize(
    ("sampler", "options"),
    [
        ("tpe", {"n_startup_trials": 3, "multivariate": True, "constant_liar": True}),
        ("random", {}),
        ("cmaes", {"n_startup_trials": 2, "restart_strategy": None}),
        ("qmc", {"qmc_type": "halton", "scramble": True}),
        ("gp", {"n_startup_trials": 4}),
    ],
)
def test_sampler_options_are_passed_through(
    tmp_path: pathlib.Path, sampler: str, options: dict[str, object]
) -> None:
    lines = [f'name = "{sampler}"']
    for key, value in options.items():
        if value is None:
            continue  # TOML has no null
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value}")
    options = {k: v for k, v in options.items() if v is not None}
    path = write(tmp_path, MINIMAL + "\n[sampler]\n" + "\n".join(lines) + "\n")
    config = load_study_file(path)
    assert config.sampler == sampler
    assert dict(config.sampler_options) == options
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        built = SAMPLERS[sampler](seed=0, **dict(config.sampler_options))
    assert isinstance(built, SAMPLERS[sampler])


@pytest.mark.parametrize(
    ("rule", "options"),
    [
        ("normalized", {"fraction": 0.05, "direction": "sign"}),
        ("raw", {"eta": 1e-3}),
        ("none", {}),
        ("flipped", {"fraction": 0.05, "direction": "sign"}),
    ],
)
def test_step_options_follow_the_rule(
    tmp_path: pathlib.Path, rule: str, options: dict[str, object]
) -> None:
    config = load_study_file(write(tmp_path, MINIMAL + f'\n[ohgw]\nstep = "{rule}"\n'))
    assert config.ohgw.step == rule
    assert config.ohgw.step_options() == options


def test_fixed_lr_can_replace_a_tuned_one(tmp_path: pathlib.Path) -> None:
    text = MINIMAL.replace(
        "lr = { low = 1e-3, high = 1.0, log = true }", "momentum = { low = 0.0, high = 0.9 }"
    )
    config = load_study_file(write(tmp_path, text + "\n[fixed]\nlr = 0.05\n"))
    assert dict(config.fixed) == {"lr": 0.05}
    assert set(config.space) == {"momentum"}


def test_integers_are_accepted_for_floats(tmp_path: pathlib.Path) -> None:
    text = MINIMAL.replace("low = 1e-3, high = 1.0", "low = 1, high = 10")
    config = load_study_file(write(tmp_path, text))
    assert config.space["lr"] == FloatDistribution(1.0, 10.0, log=True)
    assert isinstance(config.space["lr"].low, float)


# ----- bad input: one line that names the file and the key ------------------------------------

LR_LINE = "lr = { low = 1e-3, high = 1.0, log = true }"


def _replace(old: str, new: str):  # type: ignore[no-untyped-def]
    def change(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return change


def _append(extra: str):  # type: ignore[no-untyped-def]
    return lambda text: text + extra


def _prepend(extra: str):  # type: ignore[no-untyped-def]
    return lambda text: extra + text


BAD = {
    # unknown keys
    "unknown top-level key": (_prepend("colour = 1\n"), ["colour", "top level"]),
    "top-level typo": (_replace("max_epochs", "max_epoch = 3\nmax_epochs"), ["max_epoch "]),
    "unknown key in [ohgw]": (_append("\n[ohgw]\nfractoin = 0.1\n"), ["fractoin", "[ohgw]"]),
    "unknown key in [budget]": (
        _replace("n_trials = 4", "n_trials = 4\ntrials = 9"),
        ["trials", "[budget]"],
    ),
    "unknown key in [scheduler]": (
        _append("\n[scheduler]\nname = 'asha'\neta = 3\n"),
        ["eta", "[scheduler]"],
    ),
    "unknown key in [space.lr]": (
        _replace("log = true }", "log = true, lgo = true }"),
        ["lgo", "[space.lr]"],
    ),
    "unknown sampler option": (
        _append("\n[sampler]\nname = 'tpe'\nn_startup = 3\n"),
        ["sampler.n_startup", "TPESampler"],
    ),
    "option of another sampler": (
        _append("\n[sampler]\nname = 'random'\nn_startup_trials = 3\n"),
        ["sampler.n_startup_trials", "RandomSampler"],
    ),
    "sampler seed is the study's": (
        _append("\n[sampler]\nseed = 3\n"),
        ["sampler.seed", "TPESampler"],
    ),
    # wrong types
    "string for max_epochs": (_replace("max_epochs = 3", 'max_epochs = "3"'), ["max_epochs"]),
    "float for max_epochs": (_replace("max_epochs = 3", "max_epochs = 3.0"), ["max_epochs"]),
    "bool for max_epochs": (
        _replace("max_epochs = 3", "max_epochs = true"),
        ["max_epochs", "boolean"],
    ),
    "bool for a float bound": (
        _replace("low = 1e-3", "low = true"),
        ["space.lr.low", "boolean"],
    ),
    "bool for ohgw.eta": (_append("\n[ohgw]\neta = false\n"), ["ohgw.eta", "boolean"]),
    "string for log": (_replace("log = true", 'log = "yes"'), ["space.lr.log"]),
    "int for enabled": (_append("\n[ohgw]\nenabled = 1\n"), ["ohgw.enabled"]),
    "string for seed": (_prepend('seed = "zero"\n'), ["seed"]),
    "bool for seed": (_prepend("seed = false\n"), ["seed", "boolean"]),
    "string for target": (_prepend('target = "high"\n'), ["target"]),
    "string for n_trials": (_replace("n_trials = 4", 'n_trials = "4"'), ["budget.n_trials"]),
    "string for a fixed value": (_append('\n[fixed]\nmomentum = "0.9"\n'), ["fixed.momentum"]),
    "list for name": (_replace('name = "tiny"', 'name = ["tiny"]'), ["name"]),
    "[space] not a table": (
        lambda text: "space = 3\n" + text.replace("[space]\n" + LR_LINE + "\n", ""),
        ["[space]", "table"],
    ),
    "[space.lr] not a table": (_replace(LR_LINE, "lr = 0.1"), ["[space.lr]"]),
    "[sampler] not a table": (_prepend('sampler = "tpe"\n'), ["[sampler]"]),
    # missing required keys
    "missing name": (_replace('name = "tiny"\n', ""), ["name", "required"]),
    "missing task": (_replace('task = "digits"\n', ""), ["task", "required"]),
    "missing max_epochs": (_replace("max_epochs = 3\n", ""), ["max_epochs", "required"]),
    "missing high": (_replace(", high = 1.0", ""), ["space.lr.high", "required"]),
    # bounds
    "low == high": (_replace("high = 1.0", "high = 1e-3"), ["space.lr.low", "< high"]),
    "low > high": (_replace("high = 1.0", "high = 1e-4"), ["space.lr.low", "< high"]),
    "infinite bound": (_replace("high = 1.0", "high = inf"), ["space.lr.low"]),
    "nan bound": (_replace("low = 1e-3", "low = nan"), ["space.lr.low"]),
    "log with low = 0": (_replace("low = 1e-3", "low = 0.0"), ["space.lr.low", "> 0"]),
    "log with low < 0": (_replace("low = 1e-3", "low = -1.0"), ["space.lr.low", "> 0"]),
    "step with log": (_replace("log = true", "log = true, step = 0.1"), ["space.lr.step"]),
    "step <= 0": (
        _replace(LR_LINE, "lr = { low = 0.1, high = 1.0, step = 0.0 }"),
        ["space.lr.step"],
    ),
    # values out of range
    "max_epochs < 1": (_replace("max_epochs = 3", "max_epochs = 0"), ["max_epochs", ">= 1"]),
    "negative batch_size": (_prepend("batch_size = -1\n"), ["batch_size"]),
    "min_resource > max_epochs": (
        _append("\n[scheduler]\nmin_resource = 4\n"),
        ["scheduler.min_resource", "max_epochs=3"],
    ),
    "reduction_factor < 2": (
        _append("\n[scheduler]\nreduction_factor = 1\n"),
        ["scheduler.reduction_factor", ">= 2"],
    ),
    "eta <= 0": (_append("\n[ohgw]\neta = 0.0\n"), ["ohgw.eta", "> 0"]),
    "fraction > 1": (_append("\n[ohgw]\nfraction = 1.5\n"), ["ohgw.fraction", "(0, 1]"]),
    "n_pairs < 1": (_append("\n[ohgw]\nn_pairs = 0\n"), ["ohgw.n_pairs", ">= 1"]),
    "n_steps < 1": (_append("\n[ohgw]\nn_steps = 0\n"), ["ohgw.n_steps", ">= 1"]),
    "probe batch_size < 1": (_append("\n[ohgw]\nbatch_size = 0\n"), ["ohgw.batch_size"]),
    "negative k": (_append("\n[ohgw]\nk = -1\n"), ["ohgw.k"]),
    "negative n_trials": (_replace("n_trials = 4", "n_trials = -4"), ["budget.n_trials"]),
    "negative wall_seconds": (
        _replace("n_trials = 4", "n_trials = 4\nwall_seconds = -1.0"),
        ["budget.wall_seconds"],
    ),
    "infinite wall_seconds": (
        _replace("n_trials = 4", "wall_seconds = inf"),
        ["budget.wall_seconds"],
    ),
    # unknown choices
    "unknown task": (_replace('task = "digits"', 'task = "imagenet"'), ["task", "imagenet"]),
    "unknown sampler": (_append("\n[sampler]\nname = 'grid'\n"), ["sampler.name", "grid"]),
    "unknown scheduler": (
        _append("\n[scheduler]\nname = 'median'\n"),
        ["scheduler.name", "median", "asha"],
    ),
    "unknown step rule": (_append("\n[ohgw]\nstep = 'adam'\n"), ["ohgw.step", "adam"]),
    "unknown base rule": (_append("\n[ohgw]\nbase = 'flipped'\n"), ["ohgw.base", "flipped"]),
    "unknown ohgw direction": (_append("\n[ohgw]\ndirection = 'up'\n"), ["ohgw.direction"]),
    "unknown study direction": (_prepend('direction = "max"\n'), ["direction", "max"]),
    # hyperparameters
    "unknown hyperparameter in [space]": (
        _append("dropout = { low = 0.0, high = 0.5 }\n"),
        ["space.dropout", "lr"],
    ),
    "unknown hyperparameter in [fixed]": (
        _append("\n[fixed]\ndropout = 0.1\n"),
        ["fixed.dropout", "lr"],
    ),
    "fixed value torch refuses": (
        _append("\n[fixed]\nweight_decay = -1\n"),
        ["fixed.weight_decay", "[0, inf)", "-1.0"],
    ),
    "fixed momentum above 1": (_append("\n[fixed]\nmomentum = 1.5\n"), ["fixed.momentum"]),
    "fixed label_smoothing nan": (
        _append("\n[fixed]\nlabel_smoothing = nan\n"),
        ["fixed.label_smoothing"],
    ),
    "space bound outside the role's values": (
        _append("momentum = { low = 0.0, high = 1.2 }\n"),
        ["space.momentum.high", "[0, 1]"],
    ),
    "lr low = 0 without log": (
        _replace(LR_LINE, "lr = { low = 0.0, high = 1.0 }"),
        ["space.lr.low", "(0, inf)"],
    ),
    "role in [space] and [fixed]": (
        _append("\n[fixed]\nlr = 0.1\n"),
        ["fixed.lr", "[space]", "[fixed]"],
    ),
    "missing lr": (
        _replace(LR_LINE, "momentum = { low = 0.0, high = 0.9 }"),
        ["space", "lr"],
    ),
    "empty space": (_replace(LR_LINE + "\n", ""), [": space: ", "empty"]),
    "no space at all": (_replace("[space]\n" + LR_LINE + "\n", ""), [": space: ", "empty"]),
    # budget
    "empty budget": (_replace("n_trials = 4\n", ""), ["budget", "n_trials"]),
    "all-zero budget": (
        _replace("n_trials = 4", "n_trials = 0\ntotal_epochs = 0\nwall_seconds = 0.0"),
        ["budget", "at least one"],
    ),
    "no budget at all": (_replace("[budget]\nn_trials = 4\n", ""), ["budget"]),
}


@pytest.mark.parametrize(("change", "needles"), BAD.values(), ids=list(BAD))
def test_bad_study_file(tmp_path: pathlib.Path, change, needles: list[str]) -> None:  # type: ignore[no-untyped-def]
    text = change(MINIMAL)
    assert text != MINIMAL
    expect_error(write(tmp_path, text), *needles)


def test_the_template_itself_is_valid(tmp_path: pathlib.Path) -> None:
    load_study_file(write(tmp_path, MINIMAL))


def test_every_unknown_key_is_listed(tmp_path: pathlib.Path) -> None:
    message = expect_error(write(tmp_path, "zeta = 1\nalpha = 2\n" + MINIMAL), "alpha, zeta")
    assert "top level" in message


@pytest.mark.parametrize(
    "text",
    [
        MINIMAL + "\n[budget]\nn_trials = 5\n",  # a table defined twice
        MINIMAL.replace("max_epochs = 3", "max_epochs = "),
        MINIMAL.replace("log = true }", "log = true"),
        "name = 'tiny'\nname = 'again'\n",
    ],
    ids=["duplicate table", "missing value", "unclosed inline table", "duplicate key"],
)
def test_malformed_toml(tmp_path: pathlib.Path, text: str) -> None:
    expect_error(write(tmp_path, text), "not valid TOML")


def test_missing_file(tmp_path: pathlib.Path) -> None:
    expect_error(tmp_path / "nowhere.toml", "no such study file")


def test_error_is_a_value_error(tmp_path: pathlib.Path) -> None:
    assert issubclass(StudyFileError, ValueError)


# ----- command-line overrides -----------------------------------------------------------------


@pytest.fixture
def config(tmp_path: pathlib.Path) -> StudyConfig:
    return load_study_file(write(tmp_path, MINIMAL))


def test_no_overrides_is_the_same_config(config: StudyConfig) -> None:
    assert apply_overrides(config, {}) == config


def test_seed_override(config: StudyConfig) -> None:
    changed = apply_overrides(config, {"seed": 12})
    assert changed.seed == 12
    assert config.seed == 0  # the original is untouched (frozen)
    assert dataclasses.replace(changed, seed=0) == config
    assert apply_overrides(config, {"seed": "5"}).seed == 5


def test_no_ohgw_override_names_the_vanilla_twin(config: StudyConfig) -> None:
    vanilla = apply_overrides(config, {"no_ohgw": True})
    assert not vanilla.ohgw.enabled
    assert vanilla.study_name == "tiny-vanilla"
    assert vanilla.name == "tiny"
    assert config.study_name == "tiny"
    # The rest of the warm-start settings are kept; only ``enabled`` changes.
    assert dataclasses.replace(vanilla.ohgw, enabled=True) == config.ohgw
    assert apply_overrides(config, {"no_ohgw": False}) == config


def test_budget_overrides(config: StudyConfig) -> None:
    changed = apply_overrides(config, {"budget": {"total_epochs": "30", "wall_seconds": "90.5"}})
    assert changed.budget == BudgetConfig(n_trials=4, total_epochs=30, wall_seconds=90.5)
    assert isinstance(changed.budget.total_epochs, int)
    assert isinstance(changed.budget.wall_seconds, float)
    only_epochs = apply_overrides(config, {"budget": {"n_trials": 0, "total_epochs": 12}})
    assert only_epochs.budget == BudgetConfig(total_epochs=12)


def test_all_overrides_at_once(config: StudyConfig) -> None:
    changed = apply_overrides(config, {"seed": 3, "no_ohgw": True, "budget": {"n_trials": 2}})
    assert (changed.seed, changed.study_name, changed.budget.n_trials) == (3, "tiny-vanilla", 2)


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"budget": {"trials": 3}}, ["--budget trials", "n_trials"]),
        ({"budget": {"n_trials": -1}}, ["--budget n_trials", ">= 0"]),
        ({"budget": {"wall_seconds": "-2.5"}}, ["--budget wall_seconds", ">= 0"]),
        ({"budget": {"n_trials": 0}}, ["--budget", "at least one"]),
        ({"budget": {"n_trials": "many"}}, ["--budget n_trials", "many"]),
        ({"budget": {"n_trials": "2.5"}}, ["--budget n_trials", "2.5"]),
        ({"budget": {"n_trials": 2.5}}, ["--budget n_trials", "2.5"]),
        ({"budget": {"wall_seconds": "soon"}}, ["--budget wall_seconds", "soon"]),
        ({"budget": {"wall_seconds": "nan"}}, ["--budget wall_seconds"]),
        ({"budget": {"wall_seconds": "inf"}}, ["--budget wall_seconds"]),
        ({"seed": "zero"}, ["seed", "zero"]),
        ({"colour": "blue"}, ["colour"]),
    ],
)
def test_bad_overrides(
    config: StudyConfig, overrides: dict[str, object], needles: list[str]
) -> None:
    with pytest.raises(StudyFileError) as info:
        apply_overrides(config, overrides)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_overridden_budget_is_checked_like_the_file(config: StudyConfig) -> None:
    changed = apply_overrides(config, {"budget": {"wall_seconds": 0}})
    assert changed.budget.wall_seconds == 0.0
    assert math.isfinite(changed.budget.wall_seconds)


# ----- finding a study file -------------------------------------------------------------------


def test_find_by_name_in_the_studies_folder() -> None:
    assert find_study_file("digits-asha", [STUDIES]) == STUDIES / "digits-asha.toml"


def test_find_by_name_takes_the_first_folder_that_has_it(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    write(mine, MINIMAL, "digits-asha.toml")
    assert find_study_file("digits-asha", [mine, STUDIES]) == mine / "digits-asha.toml"
    assert find_study_file("digits-asha", [STUDIES, mine]) == STUDIES / "digits-asha.toml"
    assert find_study_file("cifar10-asha", [mine, STUDIES]) == STUDIES / "cifar10-asha.toml"
    # Missing folders are skipped.
    assert find_study_file("digits-asha", [tmp_path / "no", STUDIES]).parent == STUDIES


def test_find_by_path(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, MINIMAL, "my-study.toml")
    assert find_study_file(str(path), [STUDIES]) == path
    assert find_study_file(str(path), []) == path
    # An existing path without the suffix is taken as a path too.
    other = write(tmp_path, MINIMAL, "other-study")
    assert find_study_file(str(other), [STUDIES]) == other
    assert load_study_file(find_study_file(str(path), [STUDIES])).name == "tiny"


def test_find_a_missing_path(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(StudyFileError) as info:
        find_study_file(str(missing), [STUDIES])
    assert str(missing) in str(info.value)
    assert "no such study file" in str(info.value)


def test_unknown_name_lists_the_known_studies(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    write(mine, MINIMAL, "zzz-mine.toml")
    with pytest.raises(StudyFileError) as info:
        find_study_file("digits-ashaa", [mine, STUDIES, tmp_path / "absent"])
    message = str(info.value)
    assert "\n" not in message
    assert "'digits-ashaa'" in message
    known = message.split("known studies: ")[1].split(" (")[0].split(", ")
    assert known == sorted({p.stem for p in SHIPPED} | {"zzz-mine"})
    assert ".toml" in message  # says a path works too


def test_unknown_name_without_any_study(tmp_path: pathlib.Path) -> None:
    with pytest.raises(StudyFileError, match="known studies: none"):
        find_study_file("anything", [tmp_path])
