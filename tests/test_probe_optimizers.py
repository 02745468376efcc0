"""The look-ahead unrolls SGD, Adam and AdamW exactly as ``torch.optim`` steps them.

For every optimizer and every role: the probe's loss equals the held-out loss after K steps of the
real ``torch.optim`` optimizer (float64, 1e-10), and each hypergradient equals a central finite
difference of that real training (rtol 1e-5), with and without BatchNorm, at K=1 and K=2. The
networks are tiny tanh MLPs: smooth, so finite differences are derivatives, and fast.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optuna_ohgw.augmentations import GaussianNoise
from optuna_ohgw.probes import LookaheadProbe

F64 = torch.float64
RTOL = 1e-5
SEED = 3

Batch = tuple[torch.Tensor, torch.Tensor]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mlp(batch_norm: bool) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers: list[nn.Module] = [nn.Linear(6, 8)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(8))
        layers += [nn.Tanh(), nn.Linear(8, 3)]
        return nn.Sequential(*layers).double()


def _data() -> tuple[list[Batch], Batch]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(96, 6, generator=gen, dtype=F64)
    y = torch.randint(0, 3, (96,), generator=gen)
    return [(x[:32], y[:32]), (x[32:64], y[32:64])], (x[64:], y[64:])


class _Fixed:
    """A batch source returning fixed batches in turn (the generator is not needed)."""

    def __init__(self, batches: Sequence[Any]) -> None:
        self.batches, self.calls = list(batches), 0

    def __call__(self, generator: torch.Generator) -> Any:
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return batch


def _aug_seeds(k: int) -> list[int]:
    """The augmentation seeds the probe draws after its batches (fixed sources draw nothing)."""
    gen = torch.Generator().manual_seed(SEED)
    return [int(torch.randint(2**62, (1,), generator=gen)) for _ in range(k)]


def _constructor_kwargs(values: Mapping[str, float]) -> dict[str, Any]:
    """The role values as the optimizer's constructor arguments."""
    kwargs = {n: values[n] for n in ("lr", "weight_decay", "momentum") if n in values}
    if "beta1" in values:
        kwargs["betas"] = (values["beta1"], values["beta2"])
    return kwargs


def _real_training(
    model: nn.Module,
    optimizer: type[torch.optim.Optimizer],
    options: Mapping[str, Any],
    values: Mapping[str, float],
    batches: Sequence[Batch],
    val: Batch,
    *,
    lr_factors: Sequence[float] | None = None,
    val_mode: str = "train",
) -> float:
    """K steps of the real optimizer on a copy (label smoothing, Gaussian noise), held-out CE."""
    net = copy.deepcopy(model).train()
    opt = optimizer(net.parameters(), **options, **_constructor_kwargs(values))
    augment = GaussianNoise()
    for step, ((x, y), seed) in enumerate(zip(batches, _aug_seeds(len(batches)))):
        if lr_factors is not None:
            for group in opt.param_groups:
                group["lr"] = values["lr"] * lr_factors[step]
        x = augment(x, values.get("augment", 0.0), torch.Generator().manual_seed(seed))
        opt.zero_grad()
        F.cross_entropy(net(x), y, label_smoothing=values.get("label_smoothing", 0.0)).backward()
        opt.step()
    net.train(val_mode == "train")
    with torch.no_grad():
        return F.cross_entropy(net(val[0]), val[1]).item()


def _central_difference(
    fn: Callable[[dict[str, float]], float], values: dict[str, float], name: str
) -> tuple[float, float]:
    """``(difference quotient, its round-off bound)``: each loss carries ~1e-15 of rounding."""
    h = 1e-5 * abs(values[name])
    up, down = dict(values), dict(values)
    up[name] += h
    down[name] -= h
    return (fn(up) - fn(down)) / (2 * h), 1e-15 / h


SGD_VALUES = {"lr": 0.3, "weight_decay": 0.02, "momentum": 0.8}
ADAM_VALUES = {"lr": 0.01, "weight_decay": 0.02, "beta1": 0.8, "beta2": 0.9}
COMMON = {"label_smoothing": 0.15, "augment": 0.3}

CASES: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any], dict[str, float]]] = {
    "sgd": (torch.optim.SGD, {}, SGD_VALUES),
    "sgd-nesterov": (torch.optim.SGD, {"nesterov": True}, SGD_VALUES),
    "sgd-dampening": (torch.optim.SGD, {"dampening": 0.3}, SGD_VALUES),
    # torch's default eps: at K=1 Adam's step is ~lr*sign(g), so the roles that act through g
    # (L2 weight decay, label smoothing, augmentation) get gradients of ~1e-7, still exact.
    "adam": (torch.optim.Adam, {}, ADAM_VALUES),
    "adamw": (torch.optim.AdamW, {}, ADAM_VALUES),
    # A larger eps makes every role's gradient large enough to test at rtol 1e-5.
    "adam-eps": (torch.optim.Adam, {"eps": 1e-3}, ADAM_VALUES),
    "adam-eps-amsgrad": (torch.optim.Adam, {"eps": 1e-3, "amsgrad": True}, ADAM_VALUES),
    "adamw-eps": (torch.optim.AdamW, {"eps": 1e-3}, ADAM_VALUES),
    "adam-decoupled-eps": (
        torch.optim.Adam,
        {"decoupled_weight_decay": True, "eps": 1e-3},
        ADAM_VALUES,
    ),
}


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_probe_is_the_real_optimizer(case: str, batch_norm: bool, k: int) -> None:
    optimizer, options, optimizer_values = CASES[case]
    values = {**optimizer_values, **COMMON}
    model = _mlp(batch_norm)
    batches, val = _data()
    batches = batches[:k]
    probe = LookaheadProbe(
        model,
        _Fixed(batches),
        _Fixed([val]),
        {name: name for name in values},
        optimizer=optimizer,
        optimizer_kwargs=options,
        k=k,
        augmentation=GaussianNoise(),
    )
    result = probe(values, seed=SEED)

    def real(v: Mapping[str, float]) -> float:
        return _real_training(model, optimizer, options, v, batches, val)

    assert result.value == pytest.approx(real(values), rel=1e-10, abs=0)
    first_step_only = {"beta1", "beta2"} | ({"momentum"} if not options.get("nesterov") else set())
    large = optimizer is torch.optim.SGD or options.get("eps", 0.0) >= 1e-3
    for name in values:
        fd, noise = _central_difference(real, values, name)
        got = result.grads[name]
        if k == 1 and name in first_step_only:
            # Momentum (without Nesterov) does not enter the first step; Adam's bias corrections
            # cancel the betas in it exactly (m/(1-b1) = g, v/(1-b2) = g^2): zero up to rounding.
            assert abs(got) <= 1e-12 * abs(result.grads["lr"]), name
            assert abs(fd) <= 1e-9 * abs(result.grads["lr"]), name
            continue
        assert not large or abs(fd) > 1e4 * noise, f"{name}: too small for a meaningful check"
        assert got == pytest.approx(fd, rel=RTOL, abs=noise), name


def test_default_k_follows_the_roles() -> None:
    batches, val = _data()
    model = _mlp(False)

    def k(optimizer: type, roles: Sequence[str], **kwargs: Any) -> int:
        return LookaheadProbe(
            model, batches[0], val, {r: r for r in roles}, optimizer=optimizer, **kwargs
        ).k

    assert k(torch.optim.SGD, ["lr", "weight_decay"]) == 1
    assert k(torch.optim.SGD, ["lr", "momentum"]) == 2
    assert k(torch.optim.SGD, ["lr", "momentum"], optimizer_kwargs={"nesterov": True}) == 1
    assert k(torch.optim.AdamW, ["lr", "weight_decay"]) == 1
    assert k(torch.optim.AdamW, ["lr", "beta1"]) == 2
    assert k(torch.optim.Adam, ["lr", "beta2"]) == 2
    assert k(torch.optim.AdamW, ["lr"], lr_factors=[0.1, 0.2, 0.3]) == 3


@pytest.mark.parametrize("k", [1, 2])
def test_lr_warmup_factors(k: int) -> None:
    """Steps at lr * factor, as a warm-up scheduler sets them; the lr gradient matches."""
    factors = [0.1, 0.5][:k]
    values = dict(ADAM_VALUES)
    model = _mlp(True)
    batches, val = _data()
    batches = batches[:k]
    probe = LookaheadProbe(
        model,
        _Fixed(batches),
        _Fixed([val]),
        {n: n for n in values},
        optimizer=torch.optim.AdamW,
        optimizer_kwargs={"eps": 1e-6},
        lr_factors=factors,
    )
    result = probe(values, seed=SEED)

    def real(v: Mapping[str, float]) -> float:
        return _real_training(
            model, torch.optim.AdamW, {"eps": 1e-6}, v, batches, val, lr_factors=factors
        )

    assert result.value == pytest.approx(real(values), rel=1e-10, abs=0)
    fd, noise = _central_difference(real, values, "lr")
    assert result.grads["lr"] == pytest.approx(fd, rel=RTOL, abs=noise)
    plain = LookaheadProbe(
        model, _Fixed(batches), _Fixed([val]), {"lr": "lr"}, optimizer=torch.optim.AdamW, k=k
    )
    assert plain({"lr": 0.01}, seed=SEED).value != result.value


@pytest.mark.parametrize(("batch_norm", "k"), [(True, 1), (False, 2)])
def test_eval_mode_held_out_loss(batch_norm: bool, k: int) -> None:
    """``val_mode='eval'``: exact where the running statistics are constants (see docstring)."""
    values = {"lr": 0.3, "weight_decay": 0.02, "momentum": 0.8}
    model = _mlp(batch_norm)
    batches, val = _data()
    batches = batches[:k]
    probe = LookaheadProbe(
        model,
        _Fixed(batches),
        _Fixed([val]),
        {n: n for n in values},
        optimizer=torch.optim.SGD,
        k=k,
        val_mode="eval",
    )
    result = probe(values, seed=SEED)

    def real(v: Mapping[str, float]) -> float:
        return _real_training(model, torch.optim.SGD, {}, v, batches, val, val_mode="eval")

    assert result.value == pytest.approx(real(values), rel=1e-10, abs=0)
    for name in ("lr", "weight_decay"):
        fd, noise = _central_difference(real, values, name)
        assert result.grads[name] == pytest.approx(fd, rel=RTOL, abs=noise)
    train_mode = LookaheadProbe(
        model,
        _Fixed(batches),
        _Fixed([val]),
        {n: n for n in values},
        optimizer=torch.optim.SGD,
        k=k,
    )(values, seed=SEED)
    # Batch statistics differ from running ones; without BatchNorm the two modes agree.
    assert (train_mode.value != result.value) == batch_norm


def test_float64_model_probed_in_float64_and_float32_in_float32() -> None:
    batches, val = _data()
    seen: list[torch.dtype] = []

    def loss_fn(apply: Callable[..., Any], batch: Batch, hypers: Any) -> torch.Tensor:
        seen.append(batch[0].dtype)
        return F.cross_entropy(apply(batch[0]), batch[1])

    for model, dtype in ((_mlp(False), F64), (_mlp(False).float(), torch.float32)):
        seen.clear()
        LookaheadProbe(
            model, batches[0], val, {"lr": "lr"}, optimizer=torch.optim.SGD, loss_fn=loss_fn
        )({"lr": 0.1})
        assert set(seen) == {dtype}


class _Opaque:
    """Not a tensor, not a container: the probe cannot move it."""


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self) -> Iterator[Any]:
        return iter([])


def _opaque_loader() -> torch.utils.data.DataLoader:
    """A loader whose collate_fn puts an object the probe cannot move into each batch."""

    def collate(items: list[tuple[torch.Tensor]]) -> dict[str, Any]:
        return {"x": torch.stack([row[0] for row in items]), "meta": _Opaque()}

    rows = torch.utils.data.TensorDataset(torch.zeros(4, 6))
    return torch.utils.data.DataLoader(rows, batch_size=2, collate_fn=collate)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": torch.optim.RMSprop}, ValueError, r"torch\.optim\.SGD, torch\.optim\.Adam"),
        ({"optimizer": type("MySGD", (torch.optim.SGD,), {})}, ValueError, "cannot unroll"),
        (
            {"roles": {"lr": "lr", "m": "momentum"}, "optimizer": torch.optim.AdamW},
            ValueError,
            "does not apply to AdamW",
        ),
        ({"roles": {"lr": "lr", "b": "beta1"}}, ValueError, "does not apply to SGD"),
        ({"optimizer_kwargs": {"lr": 0.1}}, ValueError, "tuned but also set"),
        ({"optimizer_kwargs": {"foo": 1}}, ValueError, "not understood"),
        (
            {"optimizer_kwargs": {"nesterov": True, "dampening": 0.1, "momentum": 0.9}},
            ValueError,
            "dampening",
        ),
        (
            {"fixed": {"label_smoothing": 0.1}, "loss_fn": lambda a, b, h: a(b[0]).sum()},
            ValueError,
            "label_smoothing",
        ),
        (
            {
                "roles": {"lr": "lr", "ls": "label_smoothing"},
                "loss_fn": lambda a, b, h: a(b[0]).sum(),
            },
            ValueError,
            "label_smoothing",
        ),
        ({"roles": {"lr": "lr", "w": "loss"}}, ValueError, "needs loss_fn"),
        ({"val_mode": "test"}, ValueError, "val_mode"),
        ({"lr_factors": [1.0, 0.5], "k": 1}, ValueError, "one factor per step"),
        (
            {"train_data": _opaque_loader(), "loss_fn": lambda a, b, h: a(b["x"]).sum()},
            TypeError,
            "_Opaque.*cannot move",
        ),
        ({"train_data": _Stream()}, ValueError, "IterableDataset"),
        ({"train_data": 3}, ValueError, "train_data is a int"),
    ],
)
def test_construction_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    batches, val = _data()
    arguments: dict[str, Any] = {
        "train_data": batches[0],
        "val_data": val,
        "roles": {"lr": "lr"},
        "optimizer": torch.optim.SGD,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        LookaheadProbe(_mlp(False), **arguments)


def test_unmovable_batch_from_a_callable_is_one_clear_error() -> None:
    batches, val = _data()
    probe = LookaheadProbe(
        _mlp(False),
        lambda g: {"x": batches[0][0], "arr": batches[0][0].numpy()},
        val,
        {"lr": "lr"},
        optimizer=torch.optim.SGD,
        loss_fn=lambda apply, b, h: apply(b["x"]).pow(2).mean(),
        val_loss_fn=lambda apply, b: F.cross_entropy(apply(b[0]), b[1]),
    )
    with pytest.raises(TypeError, match=r"train_data: a batch holds a numpy\.ndarray"):
        probe({"lr": 0.1})


def test_optimizer_is_required() -> None:
    batches, val = _data()
    with pytest.raises(TypeError, match="optimizer"):
        LookaheadProbe(_mlp(False), batches[0], val, {"lr": "lr"})  # type: ignore[call-arg]


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.AdamW])
def test_gpu_probe_equals_cpu_probe_in_float64(optimizer: type) -> None:
    """The model on the GPU, its data on the CPU (moved by the probe)."""
    values = dict(SGD_VALUES if optimizer is torch.optim.SGD else ADAM_VALUES)
    batches, val = _data()
    model = _mlp(True)

    def probe(net: nn.Module) -> Any:
        return LookaheadProbe(
            net, batches[0], val, {n: n for n in values}, optimizer=optimizer, k=2, batch_size=24
        )(values, seed=SEED)

    cpu, gpu = probe(model), probe(copy.deepcopy(model).cuda())
    assert gpu.value == pytest.approx(cpu.value, rel=1e-9)
    for name in values:
        assert gpu.grads[name] == pytest.approx(cpu.grads[name], rel=1e-7, abs=1e-12), name


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=needs_cuda)],
)
def test_autocast_bf16_gives_the_same_signs(device: str) -> None:
    """bf16 forward passes (CPU autocast too), K=2 with beta1: the same step directions."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 32, generator=gen)
    y = (x[:, :4].argmax(1)).long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 4)).to(device)
    values = {"lr": 3e-3, "weight_decay": 0.05, "beta1": 0.9}

    def probe(autocast: torch.dtype | None) -> Any:
        return LookaheadProbe(
            model,
            (x[:384], y[:384]),
            (x[384:], y[384:]),
            {n: n for n in values},
            optimizer=torch.optim.AdamW,
            autocast=autocast,
            batch_size=128,
        )(values, seed=1)

    full, half = probe(None), probe(torch.bfloat16)
    assert half.value == pytest.approx(full.value, rel=0.05) and half.value != full.value
    for name in values:
        assert (half.grads[name] > 0) == (full.grads[name] > 0), name


class _PartlyUsed(nn.Module):
    """A frozen first layer and a parameter the forward pass never uses."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp(True)
        self.net[0].requires_grad_(False)
        self.unused = nn.Parameter(torch.ones(4, dtype=F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("case", ["sgd", "adamw", "adam"])
def test_frozen_and_unused_parameters_stay_put_as_in_torch(case: str) -> None:
    """torch.optim never moves a frozen parameter (not even by weight decay); a parameter the
    forward pass does not use gets a ``None`` gradient, which the unrolled step skips too."""
    optimizer, options, optimizer_values = CASES[case]
    values = {**optimizer_values, "weight_decay": 0.3}
    model = _PartlyUsed()
    batches, val = _data()
    probe = LookaheadProbe(
        model,
        _Fixed(batches),
        _Fixed([val]),
        {n: n for n in values},
        optimizer=optimizer,
        optimizer_kwargs=options,
        k=2,
    )
    result = probe(values, seed=SEED)
    expected = _real_training(model, optimizer, options, values, batches, val)
    assert result.value == pytest.approx(expected, rel=1e-10, abs=0)


@pytest.mark.parametrize("roles", [("lr", "weight_decay"), ("lr", "label_smoothing"), None])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("case", ["sgd", "sgd-nesterov", "adamw-eps", "adam-eps-amsgrad"])
def test_loss_alone_is_the_full_calls_value(
    case: str, batch_norm: bool, roles: tuple[str, ...] | None
) -> None:
    """``probe.loss`` (what a line search compares) gives bit for bit the loss of a full call,
    which is the real optimizer's: every path of the look-ahead (the label-smoothing shortcut
    at step 0, double backward, BatchNorm, K=2), without computing a hypergradient."""
    optimizer, options, optimizer_values = CASES[case]
    values = {**optimizer_values, **COMMON}
    tuned = roles or tuple(values)
    model = _mlp(batch_norm)
    batches, val = _data()
    params = {n: values[n] for n in tuned}
    kwargs = {n: v for n, v in values.items() if n not in tuned and n not in COMMON}
    probe = LookaheadProbe(
        model,
        _Fixed(batches),
        _Fixed([val]),
        {name: name for name in tuned},
        optimizer=optimizer,
        optimizer_kwargs={**options, **_constructor_kwargs(kwargs)},
        fixed={n: v for n, v in values.items() if n not in tuned and n in COMMON},
        k=2,
        augmentation=GaussianNoise(),
    )
    alone = probe.loss(params, seed=SEED)
    full = probe(params, seed=SEED)
    assert alone.grads == {} and alone.seconds > 0
    assert alone.value == full.value
    real = _real_training(model, optimizer, options, values, batches, val)
    assert alone.value == pytest.approx(real, rel=1e-10, abs=0)
    # It never touches the model, and can be called under no_grad like the full call.
    with torch.no_grad():
        assert probe.loss(params, seed=SEED).value == alone.value
