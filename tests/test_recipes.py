"""Recipes: roles read from the user's code, the probe exact against the recipe's own loop,
bit-for-bit resume from a checkpoint, and a broken recipe as one line before any worker."""

from __future__ import annotations

import io
import pathlib

import pytest
import torch

from optuna_ohgw.recipes import RecipeProbe, load_recipe, make_state, plan_recipe
from optuna_ohgw.runner import check_trainer
from optuna_ohgw.studyfile import StudyFileError, load_study_file
from tests.conftest import run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "own_recipe"
SOURCE = (EXAMPLE / "train.py").read_text()
STUDY = (EXAMPLE / "study.toml").read_text()
POINT = {"lr": 3e-3, "weight_decay": 1e-3, "beta1": 0.9, "width": 24}


def _example() -> tuple[object, object]:
    config = load_study_file(EXAMPLE / "study.toml")
    recipe = load_recipe(config.recipe)
    return recipe, plan_recipe(recipe, config.space)


def test_roles_are_read_from_make_optimizer(torch_one_thread) -> None:
    _, plan = _example()
    assert plan.roles == {"lr": "lr", "weight_decay": "weight_decay", "beta1": "beta1"}
    assert plan.held == ("width",)


def test_probe_is_exact_against_the_recipes_own_loop(torch_one_thread) -> None:
    recipe, plan = _example()
    probe = RecipeProbe(recipe, plan)
    check = probe.check(POINT, seed=7)
    assert check.ok, check.message
    result = probe(POINT, seed=7)
    assert result.value == pytest.approx(check.probe_loss, rel=1e-5)
    assert all(g != 0.0 for g in result.grads.values())
    assert probe.context_names == ("width",)


def test_a_held_float_is_sampled_but_fixed_in_the_probe(tmp_path, torch_one_thread) -> None:
    source = SOURCE.replace(
        "def make_scheduler(optimizer):",
        "def make_scheduler(optimizer, hypers):\n    steps = hypers['warmup'] * 100",
    ).replace("(step + 1) / WARMUP_STEPS", "(step + 1) / steps")
    (tmp_path / "train.py").write_text(source)
    study = STUDY + "warmup = { low = 0.05, high = 0.3 }\n"
    (tmp_path / "study.toml").write_text(study)
    config = load_study_file(tmp_path / "study.toml")
    recipe = load_recipe(config.recipe)
    plan = plan_recipe(recipe, config.space)
    assert "warmup" in plan.held and "warmup" not in plan.roles
    check = RecipeProbe(recipe, plan).check({**POINT, "warmup": 0.1}, seed=1)
    assert check.ok, check.message


def test_resume_from_a_checkpoint_is_bit_for_bit(torch_one_thread) -> None:
    recipe, plan = _example()
    straight = make_state(recipe, plan, POINT, seed=5)
    for epoch in range(2):
        recipe.train_epoch(straight, epoch)
    paused = make_state(recipe, plan, POINT, seed=5)
    recipe.train_epoch(paused, 0)
    buffer = io.BytesIO()
    torch.save(paused.state_dict(), buffer)
    resumed = make_state(recipe, plan, POINT, seed=5)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=False))
    recipe.train_epoch(resumed, 1)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.steps == resumed.steps
    assert recipe.evaluate(straight.model) == recipe.evaluate(resumed.model)


BROKEN = {
    "import error": (("import torch\n", "import torch\nimport no_such_module_xyz\n"), "No"),
    "missing name": (("def evaluate(model):", "def score(model):"), "missing evaluate"),
    "wrong signature": (
        ("def build_model(seed, hypers):", "def build_model(seed):"),
        "build_model(seed, hypers)",
    ),
    "optimizer": (
        (
            'torch.optim.AdamW(groups, lr=hypers["lr"], betas=(hypers["beta1"], 0.999))',
            'torch.optim.RMSprop(groups, lr=hypers["lr"], momentum=hypers["beta1"])',
        ),
        "cannot unroll",
    ),
    "metric": (
        ("return sum(hits", "return torch.tensor(0.5)\n    return sum(hits"),
        "not a float",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_recipe_is_one_line(case: str, tmp_path: pathlib.Path) -> None:
    (old, new), expected = BROKEN[case]
    assert old in SOURCE
    (tmp_path / "mine.py").write_text(SOURCE.replace(old, new))
    (tmp_path / "study.toml").write_text(STUDY.replace('"train.py"', '"mine.py"'))
    config = load_study_file(tmp_path / "study.toml")
    with pytest.raises(StudyFileError) as err:
        check_trainer(config, data_dir=None, download=False)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "mine.py") in message
    assert expected in message, message


def test_the_cli_refuses_a_broken_recipe_before_any_worker(tmp_path: pathlib.Path) -> None:
    (tmp_path / "mine.py").write_text(SOURCE.replace("def evaluate(model):", "def score(m):"))
    (tmp_path / "study.toml").write_text(STUDY.replace('"train.py"', '"mine.py"'))
    result = run_cli("run", "--study", str(tmp_path / "study.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "mine.py: missing evaluate" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_paused_recipe_trial_resumes_bit_for_bit(tmp_path, torch_one_thread) -> None:
    import optuna
    from optuna.trial import TrialState

    from optuna_ohgw import lineage
    from optuna_ohgw.checkpoint import CheckpointStore
    from optuna_ohgw.recipes import recipe_objective
    from optuna_ohgw.schedulers import PauseResumeHooks, PromotionASHA, run_promotion_worker

    class AlwaysPromote(PromotionASHA):
        def choose(self, study, trials, allow_new=True):  # type: ignore[no-untyped-def]
            waiting = [t for t in trials if t.state == TrialState.WAITING]
            return next((t for t in waiting if lineage.is_continuation(t)), None)

    recipe, plan = _example()
    straight = optuna.create_study(direction="maximize")
    straight.enqueue_trial(POINT)
    straight.optimize(recipe_objective(recipe, plan, seed=0, max_epochs=4), n_trials=1)
    paused = optuna.create_study(direction="maximize")
    paused.enqueue_trial(POINT)
    objective = recipe_objective(recipe, plan, seed=0, max_epochs=4)
    objective.hooks = PauseResumeHooks(PromotionASHA(1, 2, 4), CheckpointStore(tmp_path, "s"))
    run_promotion_worker(paused, objective, AlwaysPromote(1, 2, 4), lambda trials: False)
    curve = lineage.learning_curves(paused.trials)[0]
    assert len([t for t in paused.trials if t.state == TrialState.COMPLETE]) == 3  # two pauses
    assert curve == straight.trials[0].intermediate_values  # bit for bit


def test_the_builtin_vit_recipe_is_probed_exactly(monkeypatch, torch_one_thread) -> None:
    from optuna_ohgw.tasks import Splits, fashion_vit

    gen = torch.Generator().manual_seed(0)
    fake = [(torch.randn(32, 1, 28, 28, generator=gen), torch.randint(10, (32,))) for _ in "tvs"]
    monkeypatch.setattr(fashion_vit, "_splits", lambda: Splits(*fake))
    config = load_study_file(ROOT / "studies" / "fashion-vit-pasha.toml")
    recipe = load_recipe(config.recipe)
    plan = plan_recipe(recipe, config.space)
    assert plan.held == ("warmup",)  # read by make_scheduler only: sampled, held by the probe
    assert set(plan.roles.values()) == {"lr", "weight_decay", "beta1", "beta2", "label_smoothing"}
    point = {"lr": 1e-3, "weight_decay": 0.05, "beta1": 0.9, "beta2": 0.99, "label_smoothing": 0.1}
    check = RecipeProbe(recipe, plan, batch_size=8).check({**point, "warmup": 0.05}, seed=2)
    assert check.ok, check.message
