"""The look-ahead probe returns the exact gradient of its own look-ahead loss.

Every hypergradient is compared with a central finite difference of the probe's returned value
in float64, for every role, K = 1 and 2, with and without BatchNorm and dropout, and with each
augmentation. Networks use smooth activations: a finite difference across a ReLU kink is not a
derivative. RandomTranslate is bilinear, hence piecewise linear in the shift with kinks at whole
pixels; at magnitude 0.6 every shift ``0.6 * u`` (``|u| < 1``) stays inside one linear piece.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optuna_ohgw.augmentations import BaseAugmentation, GaussianNoise, RandomTranslate
from optuna_ohgw.probes import LookaheadProbe
from optuna_ohgw.probes._lookahead import _fixed_rng, _nll_and_uniform, _train_mode
from optuna_ohgw.tasks.models import ResNet20, SmallCNN1d, SmallCNN2d, count_parameters

ALL_ROLES = {
    "lr": "lr",
    "wd": "weight_decay",
    "mu": "momentum",
    "ls": "label_smoothing",
    "aug": "augment",
}
PARAMS = {"lr": 0.3, "wd": 0.02, "mu": 0.8, "ls": 0.15, "aug": 0.6}
RTOL = 1e-5
SGDProbe = functools.partial(LookaheadProbe, optimizer=torch.optim.SGD)
"""These tests predate the optimizer argument: every probe here unrolls SGD, as the tasks do."""
F64 = torch.float64

Batch = tuple[torch.Tensor, torch.Tensor]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny float64 ops: one thread is faster, and immune to a busy machine's thread stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _digits() -> tuple[Batch, Batch]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    return (x[:1200], y[:1200]), (x[1200:], y[1200:])


@functools.cache
def _signals() -> tuple[Batch, Batch]:
    """MNIST-1D-shaped data: smooth random signals (N, 1, 40) with random labels."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(400, 1, 40, generator=gen).cumsum(-1) / 4.0
    y = torch.randint(0, 10, (400,), generator=gen)
    return (x[:300], y[:300]), (x[300:], y[300:])


@functools.cache
def _small_images() -> tuple[Batch, Batch]:
    """3x8x8 random images: ResNet20 pools globally, so small inputs keep float64 fast."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 3, 8, 8, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    return (x[:48], y[:48]), (x[48:], y[48:])


def _factory(build: Callable[[], nn.Module]) -> Callable[[int], nn.Module]:
    """``seed -> freshly initialised model``, without touching the caller's global RNG."""

    def make(seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build()

    return make


MODELS: dict[str, tuple[Callable[[int], nn.Module], Callable[[], tuple[Batch, Batch]]]] = {
    "cnn2d-tanh": (_factory(lambda: SmallCNN2d(width=4, activation=nn.Tanh)), _digits),
    "cnn2d-bn-silu": (
        _factory(lambda: SmallCNN2d(width=4, activation=nn.SiLU, batch_norm=True)),
        _digits,
    ),
    "cnn2d-dropout-softplus": (
        _factory(lambda: SmallCNN2d(width=4, activation=nn.Softplus, dropout=0.3)),
        _digits,
    ),
    "cnn1d-bn-tanh": (
        _factory(lambda: SmallCNN1d(width=4, activation=nn.Tanh, batch_norm=True)),
        _signals,
    ),
}

ROLE_SETS: dict[str, tuple[dict[str, str], BaseAugmentation | None, dict[str, float]]] = {
    # Augmentation tuned: every step's gradient depends on a hyperparameter (double backward).
    "all-five-translate": (ALL_ROLES, RandomTranslate(flip=True), {}),
    "all-five-noise": (ALL_ROLES, GaussianNoise(), {}),
    # No tuned augmentation: step 0 takes the first-order label-smoothing shortcut.
    "four-no-augment": ({k: v for k, v in ALL_ROLES.items() if k != "aug"}, None, {}),
    "four-fixed-augment": (
        {k: v for k, v in ALL_ROLES.items() if k != "aug"},
        RandomTranslate(flip=True),
        {"augment": 0.4},
    ),
    # lr fixed, so it carries no gradient; eps not tuned but non-zero.
    "fixed-lr": (
        {"wd": "weight_decay", "aug": "augment"},
        GaussianNoise(),
        {"lr": 0.3, "label_smoothing": 0.1},
    ),
}


def _central_difference(
    probe: LookaheadProbe, params: dict[str, float], name: str, *, seed: int = 0
) -> float:
    h = 2e-6 * abs(params[name])  # truncation ~h^2 vs round-off ~1e-16/h: both far below RTOL
    up, down = dict(params), dict(params)
    up[name] += h
    down[name] -= h
    return (probe(up, seed=seed).value - probe(down, seed=seed).value) / (2 * h)


def _assert_matches_fd(probe: LookaheadProbe, *, seed: int = 0) -> dict[str, float]:
    params = {name: PARAMS[name] for name in probe.param_names}
    result = probe(params, seed=seed)
    assert set(result.grads) == set(params)
    for name, role in probe.roles.items():
        fd = _central_difference(probe, params, name, seed=seed)
        got = result.grads[name]
        if role == "momentum" and probe.k == 1:
            # Momentum never enters one step: the loss does not depend on it at all.
            assert fd == 0.0 and got == 0.0
            continue
        assert abs(fd) > 1e-5, f"{name}: gradient too small for a meaningful check"
        assert got == pytest.approx(fd, rel=RTOL, abs=1e-10), f"{name} ({role})"
    return dict(result.grads)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("role_set", list(ROLE_SETS))
def test_hypergradient_matches_finite_differences(k: int, model_name: str, role_set: str) -> None:
    factory, data = MODELS[model_name]
    roles, augmentation, fixed = ROLE_SETS[role_set]
    train, val = data()
    probe = SGDProbe(
        factory,
        train,
        val,
        roles,
        fixed=fixed,
        k=k,
        batch_size=32,
        augmentation=augmentation,
        dtype=F64,
    )
    _assert_matches_fd(probe, seed=3)


def test_resnet20_hypergradient_matches_finite_differences() -> None:
    """BatchNorm, residual sums and option-A shortcuts, K=2, all five roles."""
    train, val = _small_images()
    probe = SGDProbe(
        _factory(lambda: ResNet20(activation=nn.SiLU)),
        train,
        val,
        ALL_ROLES,
        k=2,
        batch_size=16,
        augmentation=RandomTranslate(flip=True),
        dtype=F64,
    )
    _assert_matches_fd(probe, seed=1)


def test_module_float32_probe_float64_and_n_pairs() -> None:
    """An ``nn.Module`` (not a factory) in float32, probed in float64, averaged over 2 pairs."""
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, activation=nn.Tanh, batch_norm=True))(0)
    probe = SGDProbe(
        model,
        train,
        val,
        ALL_ROLES,
        batch_size=24,
        n_pairs=2,
        augmentation=RandomTranslate(),
        dtype=F64,
    )
    assert probe.k == 2
    _assert_matches_fd(probe, seed=5)


def test_gradcheck_of_lookahead_graph() -> None:
    """``torch.autograd.gradcheck`` of the look-ahead loss as a function of the five values."""
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, activation=nn.Tanh, batch_norm=True))(0)
    probe = SGDProbe(
        model, train, val, ALL_ROLES, k=2, batch_size=16, augmentation=GaussianNoise(), dtype=F64
    )
    gen = torch.Generator().manual_seed(0)
    device = torch.device("cpu")
    train_batches = [
        probe._draw_batch(probe._draw_train, gen, device, F64, "t") for _ in range(probe.k)
    ]
    val_batch = probe._draw_batch(probe._draw_val, gen, device, F64, "v")
    plan = probe._plan(model, PARAMS)

    def loss(h: torch.Tensor) -> torch.Tensor:
        leaves = dict(zip(ALL_ROLES, h.unbind()))
        with _train_mode(model), _fixed_rng(0, device):
            return probe._lookahead(
                model, plan, leaves, PARAMS, train_batches, val_batch, [11, 12], F64
            )

    h = torch.tensor([PARAMS[name] for name in ALL_ROLES], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (h,), eps=1e-6, atol=1e-9, rtol=1e-5)


class _ProbeFunction(torch.autograd.Function):
    """The public probe as an autograd function: value forward, reported gradient backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h: torch.Tensor,
        probe: LookaheadProbe,
        names: Sequence[str],
    ) -> torch.Tensor:
        result = probe(dict(zip(names, h.tolist())), seed=7)
        ctx.save_for_backward(torch.tensor([result.grads[n] for n in names], dtype=h.dtype))
        return h.new_tensor(result.value)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None]:
        (grads,) = ctx.saved_tensors
        return grad * grads, None, None


def test_gradcheck_of_public_probe() -> None:
    train, val = _signals()
    factory = _factory(lambda: SmallCNN1d(width=4, activation=nn.SiLU, dropout=0.2))
    probe = SGDProbe(
        factory,
        train,
        val,
        ALL_ROLES,
        batch_size=16,
        augmentation=RandomTranslate(),
        dtype=F64,
    )
    names = list(ALL_ROLES)
    h = torch.tensor([PARAMS[n] for n in names], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: _ProbeFunction.apply(t, probe, names),
        (h,),
        eps=1e-6,
        atol=1e-9,
        rtol=1e-5,
        check_undefined_grad=False,
    )


def _bn_dropout_model() -> nn.Module:
    return _factory(lambda: SmallCNN2d(width=4, batch_norm=True, dropout=0.3))(0)


def test_model_weights_buffers_and_mode_untouched() -> None:
    train, val = _digits()
    model = _bn_dropout_model()
    with torch.no_grad():  # Non-trivial running statistics, so a silent update would show.
        model(train[0][:64])
    model.eval()
    before = copy.deepcopy(model.state_dict())
    probe = SGDProbe(model, train, val, ALL_ROLES, batch_size=32, augmentation=RandomTranslate())
    probe(PARAMS, seed=0)
    assert not model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_probe_runs_in_train_mode_regardless_of_model_mode() -> None:
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, batch_norm=True))(0)
    probe = SGDProbe(model, train, val, ALL_ROLES, batch_size=32, augmentation=GaussianNoise())
    model.eval()
    in_eval = probe(PARAMS, seed=0)
    model.train()
    in_train = probe(PARAMS, seed=0)
    assert in_eval.value == in_train.value and in_eval.grads == in_train.grads


def test_deterministic_for_a_seed_with_dropout_and_rng_untouched() -> None:
    train, val = _digits()
    model = _bn_dropout_model()
    probe = SGDProbe(
        model, train, val, ALL_ROLES, batch_size=32, augmentation=RandomTranslate(flip=True)
    )
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = probe(PARAMS, seed=4)
    assert torch.equal(torch.get_rng_state(), state), "probe must not consume the global RNG"
    second = probe(PARAMS, seed=4)
    other = probe(PARAMS, seed=5)
    assert first.value == second.value and first.grads == second.grads
    assert other.value != first.value
    assert all(other.grads[n] != first.grads[n] for n in ("lr", "wd", "mu", "ls", "aug"))


def test_dropout_masks_follow_the_seed() -> None:
    """Same batches, different seed: only the dropout masks differ, and they change the loss."""
    train, val = _digits()
    batch = (train[0][:32], train[1][:32])
    val_batch = (val[0][:32], val[1][:32])
    model = _factory(lambda: SmallCNN2d(width=4, dropout=0.5))(0)
    probe = SGDProbe(model, lambda g: batch, lambda g: val_batch, {"lr": "lr"}, batch_size=32)
    assert probe({"lr": 0.3}, seed=0).value == probe({"lr": 0.3}, seed=0).value
    assert probe({"lr": 0.3}, seed=0).value != probe({"lr": 0.3}, seed=1).value


class _Cycle:
    """A batch source that returns fixed batches in turn (and ignores the generator)."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self.batches = list(batches)
        self.calls = 0

    def __call__(self, generator: torch.Generator) -> Batch:
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return batch


def _batches(data: Batch, n: int, size: int) -> list[Batch]:
    x, y = data
    return [(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(n)]


def test_n_pairs_is_the_mean_of_the_pairs() -> None:
    """Pairs are successive draws: the average equals single-pair probes on the same batches.

    This holds by construction only without augmentation or dropout: augmentation draws and
    dropout masks of later pairs come from the same (advanced) random streams and cannot be
    reproduced by a single-pair call.
    """
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, activation=nn.Tanh, batch_norm=True))(0)
    roles = {k: v for k, v in ALL_ROLES.items() if k != "aug"}
    params = {n: PARAMS[n] for n in roles}
    tb, vb = _batches(train, 6, 20), _batches(val, 3, 20)

    def probe(train_batches: list[Batch], val_batches: list[Batch], n_pairs: int) -> object:
        return SGDProbe(
            model, _Cycle(train_batches), _Cycle(val_batches), roles, n_pairs=n_pairs, dtype=F64
        )(params, seed=0)

    averaged = probe(tb, vb, 3)
    singles = [probe(tb[2 * i : 2 * i + 2], vb[i : i + 1], 1) for i in range(3)]
    assert averaged.value == pytest.approx(np.mean([s.value for s in singles]), rel=1e-12)
    for name in roles:
        expected = np.mean([s.grads[name] for s in singles])
        assert averaged.grads[name] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert averaged.value != singles[0].value


def test_label_smoothing_terms_match_cross_entropy() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=gen, dtype=F64)
    target = torch.randint(0, 7, (50,), generator=gen)
    nll, uniform = _nll_and_uniform(logits, target)
    for eps in (0.0, 0.1, 0.37, 1.0):
        expected = F.cross_entropy(logits, target, label_smoothing=eps)
        assert ((1 - eps) * nll + eps * uniform).item() == pytest.approx(
            expected.item(), rel=1e-14
        )


def _reference_unroll(
    model: nn.Module,
    batches: Sequence[Batch],
    val_batch: Batch,
    lr: float,
    wd: float,
    mu: float,
    eps: float,
) -> float:
    """Train a copy with the real ``torch.optim.SGD`` and ``F.cross_entropy``; held-out loss."""
    net = copy.deepcopy(model).double().train()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=mu, weight_decay=wd)
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(net(x.double()), y, label_smoothing=eps).backward()
        optimizer.step()
    with torch.no_grad():
        return F.cross_entropy(net(val_batch[0].double()), val_batch[1]).item()


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_lookahead_loss_is_torch_sgd_with_label_smoothing(k: int, frozen: bool) -> None:
    """The probe's loss is the held-out loss after k real ``torch.optim.SGD`` steps.

    ``frozen``: SGD never moves a parameter with ``requires_grad=False`` (it has no gradient, so
    not even weight decay applies); the look-ahead must keep it fixed too.
    """
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, activation=nn.Tanh, batch_norm=True))(0)
    if frozen:
        model.features[0].weight.requires_grad_(False)
    roles = {k: v for k, v in ALL_ROLES.items() if k != "aug"}
    tb, vb = _batches(train, k, 32), _batches(val, 1, 32)
    probe = SGDProbe(model, _Cycle(tb), _Cycle(vb), roles, k=k, dtype=F64)
    got = probe({n: PARAMS[n] for n in roles}).value
    expected = _reference_unroll(
        model, tb, vb[0], PARAMS["lr"], PARAMS["wd"], PARAMS["mu"], PARAMS["ls"]
    )
    assert got == pytest.approx(expected, rel=1e-12)


def _flat_grad(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


def test_closed_forms_at_k1_and_momentum_at_k2() -> None:
    """DESIGN section 4: closed forms built from ``F.cross_entropy(label_smoothing=eps)``."""
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, activation=nn.Tanh))(0).double()
    (x0, y0), (x1, y1) = _batches(train, 2, 32)
    xv, yv = _batches(val, 1, 32)[0]
    lr, wd, mu, eps = PARAMS["lr"], PARAMS["wd"], PARAMS["mu"], PARAMS["ls"]
    names = [n for n, _ in model.named_parameters()]
    w0 = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    flat_w0 = torch.cat([w.reshape(-1) for w in w0]).detach()

    def loss_at(
        flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, smooth: float
    ) -> torch.Tensor:
        chunks = torch.split(flat, [w.numel() for w in w0])
        weights = {n: c.view_as(w) for n, c, w in zip(names, chunks, w0)}
        logits = torch.func.functional_call(model, weights, (x.double(),))
        return F.cross_entropy(logits, y, label_smoothing=smooth)

    def grad_at(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, smooth: float):
        flat = flat.detach().requires_grad_(True)
        return _flat_grad(loss_at(flat, x, y, smooth), [flat])

    g0 = grad_at(flat_w0, x0, y0, eps)
    b0 = g0 + wd * flat_w0
    w1 = flat_w0 - lr * b0
    v1 = grad_at(w1, xv, yv, 0.0)
    delta = grad_at(flat_w0, x0, y0, 1.0) - grad_at(flat_w0, x0, y0, 0.0)

    roles = {k: v for k, v in ALL_ROLES.items() if k != "aug"}
    params = {n: PARAMS[n] for n in roles}
    k1 = SGDProbe(model, _Cycle([(x0, y0)]), _Cycle([(xv, yv)]), roles, k=1, dtype=F64)
    got = k1(params).grads
    assert got["lr"] == pytest.approx(-(v1 @ b0).item(), rel=1e-10)
    assert got["wd"] == pytest.approx(-lr * (v1 @ flat_w0).item(), rel=1e-10)
    assert got["ls"] == pytest.approx(-lr * (v1 @ delta).item(), rel=1e-10)
    assert got["mu"] == 0.0

    b1 = mu * b0 + grad_at(w1, x1, y1, eps) + wd * w1
    v2 = grad_at(w1 - lr * b1, xv, yv, 0.0)
    k2 = SGDProbe(model, _Cycle([(x0, y0), (x1, y1)]), _Cycle([(xv, yv)]), roles, k=2, dtype=F64)
    got = k2(params).grads
    assert got["mu"] == pytest.approx(-lr * (v2 @ b0).item(), rel=1e-10)
    assert got["mu"] != 0.0


def test_k_defaults() -> None:
    train, val = _digits()
    model = SmallCNN2d(width=4)
    assert SGDProbe(model, train, val, ALL_ROLES, augmentation=GaussianNoise()).k == 2
    assert SGDProbe(model, train, val, {"lr": "lr", "m": "momentum"}).k == 2
    assert SGDProbe(model, train, val, {"lr": "lr", "wd": "weight_decay"}).k == 1
    fixed_mu = SGDProbe(model, train, val, {"lr": "lr"}, fixed={"momentum": 0.9})
    assert fixed_mu.k == 1
    assert SGDProbe(model, train, val, {"lr": "lr", "m": "momentum"}, k=3).k == 3


@pytest.mark.parametrize(
    ("roles", "kwargs", "match"),
    [
        ({"lr": "lr", "x": "dropout"}, {}, "Unknown role"),
        ({"lr": "lr"}, {"fixed": {"beta": 0.5}}, "Unknown fixed role"),
        ({"a": "lr", "b": "lr"}, {}, "mapped once"),
        ({"lr": "lr"}, {"fixed": {"lr": 0.1}}, "both tuned and fixed"),
        ({"wd": "weight_decay"}, {}, "learning rate"),
        ({"lr": "lr", "aug": "augment"}, {}, "augmentation"),
        ({"lr": "lr"}, {"k": 0}, "positive"),
        ({"lr": "lr"}, {"n_pairs": 0}, "positive"),
        ({"lr": "lr"}, {"batch_size": 0}, "positive"),
    ],
)
def test_constructor_errors(roles: dict[str, str], kwargs: dict, match: str) -> None:
    train, val = _digits()
    with pytest.raises(ValueError, match=match):
        SGDProbe(SmallCNN2d(width=4), train, val, roles, **kwargs)


def test_missing_parameter_value() -> None:
    train, val = _digits()
    probe = SGDProbe(SmallCNN2d(width=4), train, val, {"lr": "lr", "wd": "weight_decay"})
    with pytest.raises(KeyError, match="wd"):
        probe({"lr": 0.1})


def test_model_builders() -> None:
    assert count_parameters(ResNet20()) == 269_722
    assert count_parameters(ResNet20(shortcut="B")) == 272_474
    assert ResNet20(n_classes=100)(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert SmallCNN2d()(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert SmallCNN2d(in_channels=3, image_size=32)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert SmallCNN1d()(torch.randn(2, 1, 40)).shape == (2, 10)
    with pytest.raises(ValueError, match="shortcut"):
        ResNet20(shortcut="C")


def test_probe_differentiates_under_no_grad_and_inference_mode() -> None:
    train, val = _digits()
    probe = SGDProbe(
        SmallCNN2d(width=4), train, val, ALL_ROLES, batch_size=32, augmentation=GaussianNoise()
    )
    expected = probe(PARAMS, seed=2)
    with torch.no_grad():
        assert probe(PARAMS, seed=2).grads == expected.grads
    with torch.inference_mode():
        assert probe(PARAMS, seed=2).grads == expected.grads


def test_seeding_factory_leaves_the_callers_rng_alone() -> None:
    train, val = _digits()

    def factory(seed: int) -> nn.Module:
        torch.manual_seed(seed)  # As the tasks' build_model does.
        return SmallCNN2d(width=4)

    probe = SGDProbe(factory, train, val, {"lr": "lr"}, batch_size=32)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    probe({"lr": 0.1}, seed=1)
    assert torch.equal(torch.get_rng_state(), state)


def test_cpu_probe_does_not_reseed_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """``torch.manual_seed`` would (lazily) reseed every CUDA device, beyond fork_rng's reach."""
    train, val = _digits()
    model = _factory(lambda: SmallCNN2d(width=4, dropout=0.2))(0)
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", calls.append)
    SGDProbe(model, train, val, {"lr": "lr"}, batch_size=32)({"lr": 0.1}, seed=1)
    assert calls == []


def test_no_tuned_roles_returns_the_loss_only() -> None:
    train, val = _digits()
    probe = SGDProbe(SmallCNN2d(width=4), train, val, {}, fixed={"lr": 0.1}, batch_size=32)
    result = probe({}, seed=0)
    assert result.grads == {} and np.isfinite(result.value)
