"""The benchmark tasks: their splits, the MNIST-1D cache, the CIFAR-10 folder, a real study with
the warm start on each CPU task, and the translation augmentation they train with."""

from __future__ import annotations

import io
import pathlib
import pickle
import random
import types

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.pruners import NopPruner
from optuna.samplers import RandomSampler, TPESampler
from optuna.trial import TrialState

from optuna_ohgw import attrs
from optuna_ohgw.augmentations import RandomTranslate
from optuna_ohgw.sampler import OHGWSampler
from optuna_ohgw.seeding import trial_seed
from optuna_ohgw.tasks import (
    TASKS,
    CIFAR10Task,
    DatasetMissingError,
    DigitsTask,
    MNIST1DTask,
    get_task,
)
from optuna_ohgw.tasks import mnist1d as mnist1d_module
from optuna_ohgw.tasks._base import split_indices
from optuna_ohgw.tasks.models import ResNet20

optuna.logging.set_verbosity(optuna.logging.WARNING)

SIZES = {
    # 1,797 digits cut 60/20/20 per seed.
    "digits": (1078, 360, 359),
    # 8,000 generated signals cut 80/20 per seed, and the fixed 2,000-signal test set.
    "mnist1d": (6400, 1600, 2000),
}
SAMPLE_SHAPE = {"digits": (1, 8, 8), "mnist1d": (1, 40)}
TOTAL = {"digits": 1797, "mnist1d": 10_000}

SPACE = {
    "lr": FloatDistribution(1e-2, 0.5, log=True),
    "weight_decay": FloatDistribution(1e-6, 1e-3, log=True),
    "momentum": FloatDistribution(0.0, 0.9),
    "augment": FloatDistribution(0.0, 1.0),
    "label_smoothing": FloatDistribution(0.0, 0.2),
}


# ----- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """These networks are tiny: on a busy machine, intra-op threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mnist1d_generation(tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """Generate MNIST-1D once for the module, recording the global RNG states around it."""
    folder = tmp_path_factory.mktemp("mnist1d")
    random.seed(1234)
    np.random.seed(1234)  # noqa: NPY002 - the global state is what the generator must keep
    before = (random.getstate(), np.random.get_state())  # noqa: NPY002
    arrays = mnist1d_module.generate_mnist1d(str(folder))
    after = (random.getstate(), np.random.get_state())  # noqa: NPY002
    return types.SimpleNamespace(folder=folder, arrays=arrays, before=before, after=after)


@pytest.fixture(scope="module")
def digits() -> DigitsTask:
    return DigitsTask()


@pytest.fixture(scope="module")
def mnist1d(mnist1d_generation: types.SimpleNamespace) -> MNIST1DTask:
    return MNIST1DTask(data_dir=str(mnist1d_generation.folder))


@pytest.fixture(params=["digits", "mnist1d"])
def task(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(request.param)


# ----- registry -------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(TASKS) == {"digits", "mnist1d", "cifar10", "fashion"}
    for name, cls in TASKS.items():
        assert cls.name == name
        assert get_task(name) is cls
    with pytest.raises(ValueError, match="imagenet"):
        get_task("imagenet")


# ----- splits ---------------------------------------------------------------------------------


def test_split_indices_cover_and_are_disjoint() -> None:
    for n, fractions in ((1797, (0.6, 0.2, 0.2)), (8000, (0.8, 0.2)), (10, (0.5, 0.5))):
        parts = split_indices(n, fractions, seed=3)
        assert [len(p) for p in parts] == [
            round(n * sum(fractions[: i + 1])) - round(n * sum(fractions[:i]))
            for i in range(len(fractions))
        ]
        joined = torch.cat(parts)
        assert sorted(joined.tolist()) == list(range(n))
        again = split_indices(n, fractions, seed=3)
        assert all(torch.equal(a, b) for a, b in zip(parts, again))
        other = split_indices(n, fractions, seed=4)
        assert not torch.equal(parts[0], other[0])


def test_splits_have_the_documented_sizes(task) -> None:  # type: ignore[no-untyped-def]
    splits = task.splits(0)
    sizes = tuple(len(y) for _, y in (splits.train, splits.val, splits.test))
    assert sizes == SIZES[task.name]
    for x, y in (splits.train, splits.val, splits.test):
        assert x.shape == (len(y), *SAMPLE_SHAPE[task.name])
        assert x.dtype == torch.float32 and y.dtype == torch.long
        assert torch.isfinite(x).all()
        assert set(y.unique().tolist()) == set(range(10))
    assert task.splits(0) is splits  # loaded once per seed


def test_splits_are_disjoint_and_cover_the_dataset(task) -> None:  # type: ignore[no-untyped-def]
    splits = task.splits(0)
    rows = [x.flatten(1) for x, _ in (splits.train, splits.val, splits.test)]
    everything = torch.cat(rows)
    # Every sample of these datasets is distinct, so distinct rows mean disjoint splits.
    assert len(everything) == TOTAL[task.name]
    assert len(torch.unique(everything, dim=0)) == TOTAL[task.name]
    # Labels travel with their inputs: the same row always has the same label.
    labels = torch.cat([y for _, y in (splits.train, splits.val, splits.test)])
    other = task.load(5)
    other_rows = torch.cat([x.flatten(1) for x, _ in (other.train, other.val, other.test)])
    other_labels = torch.cat([y for _, y in (other.train, other.val, other.test)])
    order = torch.unique(everything, dim=0, return_inverse=True)[1].argsort()
    other_order = torch.unique(other_rows, dim=0, return_inverse=True)[1].argsort()
    assert torch.equal(everything[order], other_rows[other_order])
    assert torch.equal(labels[order], other_labels[other_order])


def test_same_seed_same_splits_other_seed_other_splits(task) -> None:  # type: ignore[no-untyped-def]
    first = task.load(0)
    again = type(task)(data_dir=task.data_dir).load(0)
    for a, b in zip((first.train, first.val, first.test), (again.train, again.val, again.test)):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other = task.load(1)
    assert not torch.equal(first.train[0], other.train[0])
    assert not torch.equal(first.val[0], other.val[0])
    # Another seed reshuffles train and validation between them but never brings test in.
    pool = torch.cat([first.train[0], first.val[0]]).flatten(1)
    other_pool = torch.cat([other.train[0], other.val[0]]).flatten(1)
    if task.name == "mnist1d":
        assert torch.equal(first.test[0], other.test[0])  # the package's fixed test set
        assert torch.equal(torch.unique(pool, dim=0), torch.unique(other_pool, dim=0))


def test_digits_are_standardised(digits: DigitsTask) -> None:
    s = digits.splits(0)
    x = torch.cat([s.train[0], s.val[0], s.test[0]])
    assert abs(float(x.mean())) < 1e-5
    assert float(x.std()) == pytest.approx(1.0, abs=1e-4)


# ----- the MNIST-1D generator -----------------------------------------------------------------


def test_mnist1d_generation_restores_the_global_rngs(
    mnist1d_generation: types.SimpleNamespace,
) -> None:
    (py_before, np_before), (py_after, np_after) = (
        mnist1d_generation.before,
        mnist1d_generation.after,
    )
    assert py_before == py_after
    assert np_before[0] == np_after[0]
    assert np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]


def test_mnist1d_arrays(mnist1d_generation: types.SimpleNamespace) -> None:
    arrays = mnist1d_generation.arrays
    assert set(arrays) == {"x", "y", "x_test", "y_test"}
    assert arrays["x"].shape == (8000, 40) and arrays["x_test"].shape == (2000, 40)
    assert arrays["y"].shape == (8000,) and arrays["y_test"].shape == (2000,)
    assert set(np.unique(arrays["y"]).tolist()) == set(range(10))
    everything = np.concatenate([arrays["x"], arrays["x_test"]])
    assert abs(float(everything.mean())) < 1e-6  # the package centres and scales the signals
    assert float(everything.std()) == pytest.approx(1.0, abs=1e-6)


def test_mnist1d_is_cached(
    mnist1d_generation: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = mnist1d_generation.folder
    cached = folder / f"mnist1d-{mnist1d_module.N_SAMPLES}-{mnist1d_module.DATA_SEED}.npz"
    assert cached.is_file()
    assert [p.name for p in folder.iterdir()] == [cached.name]  # no temporary file left

    import mnist1d.data

    def no_generation(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("MNIST-1D was generated again instead of read from the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
    random.seed(7)
    state = random.getstate()
    again = mnist1d_module.generate_mnist1d(str(folder))
    assert random.getstate() == state
    assert set(again) == set(mnist1d_generation.arrays)
    for key, value in mnist1d_generation.arrays.items():
        assert np.array_equal(again[key], value)
    # The task reads that cache, so its test split is exactly the cached test arrays.
    split = MNIST1DTask(data_dir=str(folder)).load(0)
    assert np.array_equal(split.test[0].squeeze(1).numpy(), again["x_test"].astype(np.float32))
    assert np.array_equal(split.test[1].numpy(), again["y_test"])


def test_mnist1d_default_cache_folder(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mnist1d_module._cache_dir(None) == tmp_path / "optuna-ohgw"
    assert mnist1d_module._cache_dir("somewhere") == pathlib.Path("somewhere")


# ----- CIFAR-10 from a local folder -----------------------------------------------------------

CIFAR_PER_BATCH = 20
CIFAR_MEAN = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
CIFAR_STD = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)


class _Py2Str(str):
    """A string pickled as Python 2's ``str``, like every key of the official files."""


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc]
    """Writes the official files' format: protocol 2 with Python 2 byte-string keys, which load
    as ``'data'`` with ``encoding='latin1'`` (torchvision) and ``b'data'`` with
    ``encoding='bytes'`` (the dataset's own instructions)."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2_str(self, obj: str) -> None:
        data = obj.encode("latin1")
        self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2_str


def _dump(obj: object) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_cifar10(root, per_batch: int = CIFAR_PER_BATCH):  # type: ignore[no-untyped-def]
    """A small ``cifar-10-batches-py`` folder; image i of a batch has i in its first pixel."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        data[:, 0] = np.arange(per_batch) + 50 * b  # a unique tag: R channel, pixel (0, 0)
        labels = [int(v) for v in np.arange(per_batch) % 10]
        images[name] = (data, labels)
        batch = {
            _Py2Str("batch_label"): _Py2Str(f"{name.replace('_', ' ')}"),
            _Py2Str("labels"): labels,
            _Py2Str("data"): data,
            _Py2Str("filenames"): [_Py2Str(f"img_{b}_{i}.png") for i in range(per_batch)],
        }
        (folder / name).write_bytes(_dump(batch))
    meta = {
        _Py2Str("label_names"): [
            _Py2Str(n)
            for n in ("airplane automobile bird cat deer dog frog horse ship truck".split())
        ],
        _Py2Str("num_cases_per_batch"): per_batch,
        _Py2Str("num_vis"): 3072,
    }
    (folder / "batches.meta").write_bytes(_dump(meta))
    return images


def test_generated_cifar10_files_have_the_official_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    images = write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    for name, (data, labels) in images.items():
        raw = (folder / name).read_bytes()
        as_str = pickle.loads(raw, encoding="latin1")
        as_bytes = pickle.loads(raw, encoding="bytes")
        assert np.array_equal(as_str["data"], data) and as_str["labels"] == labels
        assert np.array_equal(as_bytes[b"data"], data) and as_bytes[b"labels"] == labels
        assert as_str["data"].dtype == np.uint8 and as_str["data"].shape == (20, 3072)
    meta = pickle.loads((folder / "batches.meta").read_bytes(), encoding="latin1")
    assert meta["label_names"][0] == "airplane" and len(meta["label_names"]) == 10


def test_cifar10_splits_from_a_local_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    images = write_cifar10(tmp_path)
    task = CIFAR10Task(data_dir=str(tmp_path))
    task.check_data()
    splits = task.splits(0)
    n_train = 5 * CIFAR_PER_BATCH
    assert (len(splits.train[1]), len(splits.val[1]), len(splits.test[1])) == (
        round(0.9 * n_train),
        n_train - round(0.9 * n_train),
        CIFAR_PER_BATCH,
    )
    for x, y in (splits.train, splits.val, splits.test):
        assert x.shape == (len(y), 3, 32, 32) and x.dtype == torch.float32
        assert y.dtype == torch.long

    def pixels(x: torch.Tensor) -> np.ndarray:
        """Undo the normalisation: back to the files' uint8 rows (CHW, R then G then B)."""
        restored = ((x * CIFAR_STD + CIFAR_MEAN) * 255.0).round()
        return restored.to(torch.uint8).flatten(1).numpy()

    test_data, test_labels = images["test_batch"]
    assert np.array_equal(pixels(splits.test[0]), test_data)  # test keeps the file's order
    assert splits.test[1].tolist() == test_labels
    # Train + validation are the five training batches, each image once, with its label.
    train_data = np.concatenate([images[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((images[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    got = np.concatenate([pixels(splits.train[0]), pixels(splits.val[0])])
    got_labels = torch.cat([splits.train[1], splits.val[1]]).tolist()
    order = np.argsort(got[:, 0], kind="stable")
    assert np.array_equal(got[order], train_data)
    assert [got_labels[i] for i in order] == train_labels
    assert len(set(pixels(splits.train[0])[:, 0]) & set(pixels(splits.val[0])[:, 0])) == 0
    # Normalisation: (x / 255 - mean) / std per channel.
    x0 = torch.tensor(test_data[:1].reshape(1, 3, 32, 32), dtype=torch.float32) / 255.0
    assert torch.allclose(splits.test[0][:1], (x0 - CIFAR_MEAN) / CIFAR_STD, atol=1e-6)
    other = CIFAR10Task(data_dir=str(tmp_path)).splits(1)
    assert not torch.equal(other.train[0], splits.train[0])


def test_a_resnet20_epoch_on_a_local_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_cifar10(tmp_path)
    task = CIFAR10Task(data_dir=str(tmp_path))
    objective = task.make_objective(0, {"lr": FloatDistribution(0.01, 0.1, log=True)}, 1)
    study = optuna.create_study(direction="maximize", sampler=RandomSampler(seed=0))
    trial = study.ask()
    state = objective.setup(trial)
    assert isinstance(state.model, ResNet20)
    before = [p.detach().clone() for p in state.model.parameters()]
    accuracy = objective.train_epoch(state, 0)
    assert 0.0 <= accuracy <= 1.0
    assert any(not torch.equal(a, p) for a, p in zip(before, state.model.parameters()))
    assert 0.0 <= objective.final(state)["test_accuracy"] <= 1.0


def test_cifar10_missing_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "no-data-here"
    task = CIFAR10Task(data_dir=str(root))
    for call in (task.check_data, lambda: task.splits(0)):
        with pytest.raises(DatasetMissingError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message
        assert str(root.resolve()) in message
        assert "--download" in message
        assert "cifar-10-batches-py" in message
    assert issubclass(DatasetMissingError, FileNotFoundError)
    assert not root.exists()  # nothing was created, let alone downloaded


def test_cifar10_folder_without_the_batches(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "cifar-10-batches-py").mkdir()
    task = CIFAR10Task(data_dir=str(tmp_path))
    task.check_data()  # the folder is there; its contents are checked when reading
    with pytest.raises(DatasetMissingError, match="--download"):
        task.splits(0)


def test_cifar10_corrupt_batch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DatasetMissingError) as info:
        CIFAR10Task(data_dir=str(tmp_path)).splits(0)
    assert "\n" not in str(info.value) and "--download" in str(info.value)


def test_cifar10_default_folder_and_download_flag(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetMissingError, match=str(tmp_path / "data")):
        CIFAR10Task().check_data()
    CIFAR10Task(download=True).check_data()  # a download is allowed: nothing to check yet


def test_cifar10_model_and_augmentation() -> None:
    task = CIFAR10Task()
    model = task.build_model(3)
    assert isinstance(model, ResNet20)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), task.build_model(3).state_dict().values())
    )
    assert isinstance(task.augmentation, RandomTranslate) and task.augmentation.flip


# ----- a real study with the warm start -------------------------------------------------------


def _spy_on_models(task, monkeypatch):  # type: ignore[no-untyped-def]
    """Record every model the task builds: (seed, copy of its initial state_dict)."""
    built: list[tuple[int, dict[str, torch.Tensor]]] = []
    original = task.build_model

    def build_model(seed: int):  # type: ignore[no-untyped-def]
        model = original(seed)
        built.append((seed, {k: v.detach().clone() for k, v in model.state_dict().items()}))
        return model

    monkeypatch.setattr(task, "build_model", build_model)
    return built, original


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("name", "max_epochs"), [("digits", 2), ("mnist1d", 1)])
def test_two_trial_study_with_the_warm_start(
    name: str, max_epochs: int, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = request.getfixturevalue(name)
    seed = 11
    built, original = _spy_on_models(task, monkeypatch)
    objective = task.make_objective(seed, SPACE, max_epochs)
    probe = task.make_probe(seed, SPACE, batch_size=64)
    assert set(probe.param_names) == set(SPACE)
    sampler = OHGWSampler(
        TPESampler(seed=seed), probe, step="normalized", search_space=SPACE, seed=seed
    )
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=NopPruner())
    study.optimize(objective, n_trials=2)

    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        ua = t.user_attrs
        assert ua[attrs.STATUS] == "ok", ua[attrs.STATUS]
        assert 0.0 <= ua["test_accuracy"] <= 1.0
        assert ua[attrs.EPOCHS] == max_epochs
        seconds = attrs.unpack_floats(ua[attrs.EPOCH_SECONDS])
        assert len(seconds) == max_epochs
        assert all(s > 0 for s in seconds)
        assert ua[attrs.TRAIN_SECONDS] == pytest.approx(sum(seconds))
        assert ua[attrs.PROBE_SECONDS] > 0
        assert sorted(t.intermediate_values) == list(range(1, max_epochs + 1))
        assert t.value == t.intermediate_values[max_epochs]
        assert 0.0 <= t.value <= 1.0
        for param in SPACE:  # the trial trains with the nudged values
            assert t.params[param] == pytest.approx(ua[attrs.nudged(param)])
            assert SPACE[param].low <= t.params[param] <= SPACE[param].high

        # The probe and the trial start from the same weights: both build the model with
        # trial_seed(seed, number), first the probe (at the first suggest), then setup();
        # on the first trial the probe's self-check builds it once more, before the probe.
        init = trial_seed(seed, t.number)
        from_trial = [weights for s, weights in built if s == init]
        assert len(from_trial) == (3 if t.number == 0 else 2)
        fresh = {k: v for k, v in original(init).state_dict().items()}
        assert all(_same_weights(w, fresh) for w in from_trial)
    assert trials[0].user_attrs[attrs.SELF_CHECK_SECONDS] > 0  # it ran, and found no mismatch
    assert attrs.SELF_CHECK_SECONDS not in trials[1].user_attrs
    assert {s for s, _ in built} == {trial_seed(seed, t.number) for t in trials}
    assert not _same_weights(built[0][1], built[-1][1])  # each trial has its own initialisation


def test_probe_seed_is_the_trial_seed() -> None:
    """The sampler seeds the probe with SeedSequence([seed, number]) like ``trial_seed``."""
    for seed, number in ((0, 0), (11, 1), (2**31 - 1, 57)):
        probe_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
        assert probe_seed == trial_seed(seed, number)
    assert trial_seed(0, 1) != trial_seed(0, 2) != trial_seed(1, 1)


def test_setup_builds_the_model_of_the_trial_seed(digits: DigitsTask) -> None:
    seed = 3
    objective = digits.make_objective(seed, SPACE, 1)
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    states = []
    for _ in range(2):
        trial = study.ask()
        state = objective.setup(trial)
        assert state.seed == trial_seed(seed, trial.number)
        expected = digits.build_model(trial_seed(seed, trial.number)).state_dict()
        assert _same_weights(state.model.state_dict(), dict(expected))
        assert state.hyperparameters == {**trial.params}
        states.append(state)
    assert not _same_weights(states[0].model.state_dict(), states[1].model.state_dict())


def test_probe_model_factory_builds_the_trial_model(digits: DigitsTask) -> None:
    probe = digits.make_probe(3, SPACE)
    for number in (0, 4):
        init = trial_seed(3, number)
        from_probe = probe._model(init)
        assert _same_weights(from_probe.state_dict(), dict(digits.build_model(init).state_dict()))


def test_fixed_roles_reach_the_trial_and_the_probe(digits: DigitsTask) -> None:
    space = {"lr": SPACE["lr"]}
    objective = digits.make_objective(0, space, 1, fixed={"momentum": 0.5})
    trial = optuna.create_study(sampler=RandomSampler(seed=0)).ask()
    state = objective.setup(trial)
    assert state.hyperparameters["momentum"] == 0.5
    assert state.optimizer.param_groups[0]["momentum"] == 0.5
    probe = digits.make_probe(0, space, {"momentum": 0.5})
    assert probe.param_names == ("lr",)
    assert probe._fixed["momentum"] == 0.5


# ----- the augmentation the tasks train with --------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_zero_magnitude_is_the_identity(name: str, request: pytest.FixtureRequest) -> None:
    task = request.getfixturevalue(name)
    x = task.splits(0).train[0][:64]
    aug = task.augmentation
    assert isinstance(aug, RandomTranslate) and not aug.flip
    out = aug(x, 0.0, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-6)
    assert torch.allclose(aug(x, torch.tensor(0.0), None), x, atol=1e-6)


def test_zero_magnitude_only_flips_with_flip_on() -> None:
    x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = CIFAR10Task().augmentation(x, 0.0, torch.Generator().manual_seed(1))
    same = (out - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (out - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | flipped).all())
    assert bool(same.any()) and bool(flipped.any())


def _generator_with_sign(sign: int) -> tuple[int, float]:
    """A generator seed whose first draw of U(-1, 1) for sample 0 has ``sign``, and that draw."""
    for seed in range(100):
        u = torch.rand((1, 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        u0 = float(u[0, 0]) * 2.0 - 1.0
        if u0 * sign > 0.1:
            return seed, u0
    raise AssertionError("no suitable generator seed")


@pytest.mark.parametrize("shift", [-5, -2, -1, 1, 3, 7])
def test_integer_shift_moves_a_signal_by_that_many_samples(shift: int) -> None:
    length = 40
    x = torch.randn(1, 3, length, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    seed, u0 = _generator_with_sign(1 if shift > 0 else -1)
    magnitude = shift / u0  # magnitude * u0 == shift samples, with magnitude > 0
    assert magnitude > 0
    out = RandomTranslate()(x, magnitude, torch.Generator().manual_seed(seed))
    d = shift
    expected = torch.zeros_like(x)
    if d > 0:  # out[i] = x[i + d]: the content moves d samples towards the start
        expected[..., : length - d] = x[..., d:]
    else:
        expected[..., -d:] = x[..., : length + d]
    assert torch.allclose(out, expected, atol=1e-9)


def test_translation_is_a_smooth_function_of_the_magnitude() -> None:
    """Half a sample is the average of the neighbours: a continuous shift, not a crop."""
    x = torch.randn(1, 1, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    seed, u0 = _generator_with_sign(1)
    out = RandomTranslate()(x, 0.5 / u0, torch.Generator().manual_seed(seed))
    assert torch.allclose(out[..., :-1], 0.5 * (x[..., :-1] + x[..., 1:]), atol=1e-9)


# ----- Fashion-MNIST -------------------------------------------------------------------------


def _write_idx(path: pathlib.Path, array: np.ndarray) -> None:
    """An IDX file (big-endian dims, uint8 data), gzipped when ``path`` ends in ``.gz``."""
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.fixture(scope="module")
def fashion_folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A small Fashion-MNIST-format folder: 300 train / 100 test images (gzipped, as Debian
    ships them), the real ones when the Debian package is installed, else random pixels."""
    from optuna_ohgw.tasks import fashion

    folder = tmp_path_factory.mktemp("fashion")
    gen = np.random.default_rng(0)
    sizes = {"train": 300, "test": 100}
    for split, n in sizes.items():
        prefix = "t10k" if split == "test" else "train"
        images = gen.integers(0, 256, (n, 28, 28))
        labels = np.arange(n) % 10
        if fashion.DEBIAN_DIR.is_dir():
            task = fashion.FashionMNISTTask()
            images = task._read(f"{split}_images")[:n].numpy()
            labels = task._read(f"{split}_labels")[:n].numpy()
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_fashion_missing_folder_is_one_line(tmp_path: pathlib.Path) -> None:
    from optuna_ohgw.tasks import FashionMNISTTask

    task = FashionMNISTTask(data_dir=str(tmp_path))
    with pytest.raises(DatasetMissingError) as info:
        task.splits(0)
    message = str(info.value)
    assert "\n" not in message and "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path) in message


def test_fashion_subset_splits(
    fashion_folder: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna_ohgw.tasks import FashionMNISTTask, fashion

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the unpacked copies go here
    task = FashionMNISTTask(data_dir=str(fashion_folder), n_train=200, n_val=50)
    a, b = task.load(0), task.load(1)
    assert [len(s[1]) for s in (a.train, a.val, a.test)] == [200, 50, 100]
    assert a.train[0].shape[1:] == (1, 28, 28) and a.train[0].dtype == torch.float32
    # The same fixed subset for every seed, cut differently per seed; the official test set.

    def pool(s):  # type: ignore[no-untyped-def]
        return sorted(map(tuple, torch.cat([s.train[0], s.val[0]]).flatten(1).tolist()))

    assert pool(a) == pool(b)
    assert not torch.equal(a.val[0], b.val[0])
    assert torch.equal(a.test[0], b.test[0]) and set(a.train[1].tolist()) <= set(range(10))
    # Uncompressed files in --data-dir are read in place.
    plain = tmp_path / "plain"
    plain.mkdir()
    unpacked = tmp_path / "optuna-ohgw" / "fashion-mnist"
    for name in fashion.FILES.values():
        (plain / name).write_bytes((unpacked / name).read_bytes())
    again = FashionMNISTTask(data_dir=str(plain), n_train=200, n_val=50).load(0)
    assert torch.equal(again.train[0], a.train[0]) and torch.equal(again.test[1], a.test[1])
    with pytest.raises(ValueError, match="exceeds"):
        FashionMNISTTask(data_dir=str(fashion_folder), n_train=300, n_val=1).load(0)


def test_fashion_corrupt_file_is_one_line(tmp_path: pathlib.Path) -> None:
    from optuna_ohgw.tasks import FashionMNISTTask

    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3))
    with pytest.raises(DatasetMissingError) as info:
        FashionMNISTTask(data_dir=str(tmp_path)).load(0)
    assert "\n" not in str(info.value) and "unreadable" in str(info.value)


@pytest.mark.skipif(
    not pathlib.Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="needs 'apt-get install dataset-fashion-mnist' (.ci/run installs it)",
)
def test_fashion_from_the_debian_package(tmp_path: pathlib.Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from optuna_ohgw.tasks import FashionMNISTTask

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    splits = FashionMNISTTask().load(0)
    assert [len(s[1]) for s in (splits.train, splits.val, splits.test)] == [10_000, 2_000, 10_000]
    x = splits.train[0]
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    assert torch.bincount(splits.test[1]).tolist() == [1000] * 10  # the official test set


def test_fashion_study_with_the_warm_start(
    fashion_folder: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna_ohgw.tasks import FashionMNISTTask
    from optuna_ohgw.tasks.models import StridedCNN2d

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    task = FashionMNISTTask(data_dir=str(fashion_folder), n_train=200, n_val=50)
    assert isinstance(task.build_model(0), StridedCNN2d)
    assert isinstance(task.augmentation, RandomTranslate) and task.augmentation.flip
    objective = task.make_objective(0, SPACE, 2)
    probe = task.make_probe(0, SPACE, batch_size=32)
    sampler = OHGWSampler(TPESampler(seed=0), probe, search_space=SPACE, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=NopPruner())
    study.optimize(objective, n_trials=2)
    for t in study.get_trials():
        assert t.state == TrialState.COMPLETE and t.user_attrs[attrs.STATUS] == "ok"
        assert t.user_attrs[attrs.PROBE_SECONDS] > 0 and 0 <= t.user_attrs["test_accuracy"] <= 1
        assert sorted(t.intermediate_values) == [1, 2]
