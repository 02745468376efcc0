"""A benchmark task: data splits, a model, an augmentation, SGD training and its probe."""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import optuna
import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution
from torch import nn

from optuna_ohgw.augmentations import BaseAugmentation
from optuna_ohgw.objective import EpochObjective
from optuna_ohgw.probes import LookaheadProbe
from optuna_ohgw.seeding import trial_seed

Batch = tuple[torch.Tensor, torch.Tensor]

DEFAULT_HYPERPARAMETERS: Mapping[str, float] = {
    "lr": 0.1,
    "weight_decay": 0.0,
    "momentum": 0.0,
    "augment": 0.0,
    "label_smoothing": 0.0,
}
"""Values used for any of the five roles that a study neither tunes nor fixes."""

ROLES = tuple(DEFAULT_HYPERPARAMETERS)
"""The hyperparameters a task trains with (a subset of the probe's roles: SGD has no betas)."""


@dataclasses.dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors, fixed for a given seed."""

    train: Batch
    val: Batch
    test: Batch

    def to(self, device: torch.device) -> Splits:
        return Splits(
            *((x.to(device), y.to(device)) for x, y in (self.train, self.val, self.test))
        )


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[torch.Tensor]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into consecutive parts of ``fractions``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cuts = [round(n * sum(fractions[: i + 1])) for i in range(len(fractions))]
    starts = [0, *cuts[:-1]]
    return [perm[a:b] for a, b in zip(starts, cuts)]


@dataclasses.dataclass
class TrainState:
    """What a trial trains: created by :meth:`BaseTask.setup`, advanced one epoch at a time."""

    model: nn.Module
    optimizer: torch.optim.SGD
    hyperparameters: dict[str, float]
    seed: int
    data: Splits

    def state_dict(self) -> dict[str, Any]:
        """What a pause must keep: weights and buffers, optimizer state (momentum), the seed
        that derives every epoch's data order and augmentation draws."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "seed": self.seed,
            "hyperparameters": dict(self.hyperparameters),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.seed = int(state["seed"])
        self.hyperparameters = dict(state["hyperparameters"])

    def set_hyperparameters(self, values: Mapping[str, float]) -> None:
        """Change hyperparameters between epochs (the re-probe at a promotion): the optimizer's
        momentum and weight decay at once; lr, augmentation and label smoothing are read from
        :attr:`hyperparameters` at every epoch."""
        self.hyperparameters.update({k: float(v) for k, v in values.items()})
        for group in self.optimizer.param_groups:
            group["momentum"] = self.hyperparameters["momentum"]
            group["weight_decay"] = self.hyperparameters["weight_decay"]


class BaseTask(abc.ABC):
    """A classification benchmark over the seed's five continuous hyperparameters.

    Subclasses provide the data (:meth:`load`), the network (:meth:`build_model`) and the
    augmentation. The base class trains with ``torch.optim.SGD`` (momentum, weight decay),
    label-smoothed cross entropy, the augmentation at the trial's magnitude and a cosine learning
    rate schedule over ``max_epochs``; it reports validation accuracy per epoch and records test
    accuracy when a trial trains to the end. The probe differentiates exactly this update.
    """

    name: ClassVar[str]
    batch_size: ClassVar[int] = 128

    def __init__(
        self,
        *,
        device: torch.device | str = "cpu",
        data_dir: str | None = None,
        download: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.data_dir = data_dir
        self.download = download
        self._splits: dict[int, Splits] = {}

    @abc.abstractmethod
    def load(self, seed: int) -> Splits:
        """Load the data and split it (fixed per ``seed``); CPU tensors are fine."""

    @abc.abstractmethod
    def build_model(self, seed: int) -> nn.Module:
        """A freshly initialised network (initialisation seeded by ``seed``)."""

    @property
    @abc.abstractmethod
    def augmentation(self) -> BaseAugmentation:
        """The augmentation whose magnitude is the ``augment`` hyperparameter."""

    def check_data(self) -> None:
        """Raise a one-line error if the dataset is not where the task reads it (no loading)."""
        return None

    def splits(self, seed: int) -> Splits:
        """The splits for ``seed``, loaded once and kept on the task's device."""
        if seed not in self._splits:
            self._splits[seed] = self.load(seed).to(self.device)
        return self._splits[seed]

    def model(self, seed: int) -> nn.Module:
        """:meth:`build_model` on the task's device."""
        return self.build_model(seed).to(self.device)

    def make_probe(
        self,
        seed: int,
        space: Mapping[str, FloatDistribution],
        fixed: Mapping[str, float] | None = None,
        *,
        k: int | None = None,
        n_pairs: int = 1,
        batch_size: int = 128,
        model: nn.Module | None = None,
    ) -> LookaheadProbe:
        """The look-ahead probe of this task's training for the tuned roles in ``space``.

        The probe builds the model with the same per-trial seed as :meth:`setup`, so it starts
        from the weights the trial will train, and reads its held-out batch from the validation
        split (never the test split). It unrolls ``torch.optim.SGD`` with torch's defaults for
        everything but the five roles (no dampening, no Nesterov), as :meth:`setup` builds it.
        With ``model`` it starts from that network's current weights instead (a resumed
        configuration's, for the re-probe at a promotion).
        """
        splits = self.splits(seed)
        values = self.hyperparameters(fixed)
        roles = {name: name for name in space}
        return LookaheadProbe(
            model if model is not None else self.model,
            splits.train,
            splits.val,
            roles,
            optimizer=torch.optim.SGD,
            fixed={r: v for r, v in values.items() if r not in roles},
            k=k,
            batch_size=batch_size,
            n_pairs=n_pairs,
            augmentation=self.augmentation,
        )

    @staticmethod
    def hyperparameters(fixed: Mapping[str, float] | None) -> dict[str, float]:
        """The five role values with ``fixed`` overriding the defaults."""
        values = dict(DEFAULT_HYPERPARAMETERS)
        for role, value in (fixed or {}).items():
            if role not in ROLES:
                raise ValueError(f"Unknown hyperparameter {role!r}; choose from {ROLES}.")
            values[role] = float(value)
        return values

    def make_objective(
        self,
        seed: int,
        space: Mapping[str, FloatDistribution],
        max_epochs: int,
        fixed: Mapping[str, float] | None = None,
        batch_size: int | None = None,
    ) -> EpochObjective[TrainState]:
        """An epoch objective that tunes ``space`` (names are roles) on this task."""
        for name in space:
            if name not in ROLES:
                raise ValueError(f"Unknown hyperparameter {name!r}; choose from {ROLES}.")
        defaults = self.hyperparameters(fixed)
        batch = batch_size or self.batch_size

        def setup(trial: optuna.Trial) -> TrainState:
            hp = dict(defaults)
            for name, d in space.items():
                hp[name] = trial.suggest_float(name, d.low, d.high, log=d.log, step=d.step)
            init = trial_seed(seed, trial.number)
            model = self.model(init)
            opt = torch.optim.SGD(
                model.parameters(),
                lr=hp["lr"],
                momentum=hp["momentum"],
                weight_decay=hp["weight_decay"],
            )
            return TrainState(model, opt, hp, init, self.splits(seed))

        def train_epoch(state: TrainState, epoch: int) -> float:
            self.train_one_epoch(state, epoch, max_epochs, batch)
            return self.accuracy(state.model, state.data.val)

        def final(state: TrainState) -> dict[str, float]:
            return {"test_accuracy": self.accuracy(state.model, state.data.test)}

        return EpochObjective(train_epoch, setup=setup, max_epochs=max_epochs, final=final)

    def train_one_epoch(
        self, state: TrainState, epoch: int, max_epochs: int, batch_size: int
    ) -> None:
        """One pass over the training split with SGD, augmentation and label smoothing."""
        hp = state.hyperparameters
        lr = hp["lr"] * 0.5 * (1.0 + math.cos(math.pi * epoch / max_epochs))
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        x_train, y_train = state.data.train
        gen = torch.Generator().manual_seed(trial_seed(state.seed, epoch))
        state.model.train()
        order = torch.randperm(len(x_train), generator=gen).to(x_train.device)
        for idx in order.split(batch_size):
            x = x_train[idx]
            # Always applied (magnitude 0 is the identity shift; flips stay): the probe
            # differentiates exactly this augmentation.
            x = self.augmentation(x, hp["augment"], gen)
            loss = F.cross_entropy(
                state.model(x), y_train[idx], label_smoothing=hp["label_smoothing"]
            )
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()

    @torch.no_grad()
    def accuracy(self, model: nn.Module, data: Batch, chunk: int = 1000) -> float:
        """Top-1 accuracy of ``model`` in eval mode on ``data``."""
        model.eval()
        x, y = data
        correct = sum(
            int((model(xb).argmax(1) == yb).sum())
            for xb, yb in zip(x.split(chunk), y.split(chunk))
        )
        return correct / len(y)
