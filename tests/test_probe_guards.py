"""What the look-ahead probe cannot follow is refused in one line at its first call.

Each refusal first reproduces the issue's row: with the check switched off (``_guards.refusal``
patched to find nothing) the probe gives a value that disagrees with central finite differences
of the real ``torch.optim.SGD`` loop in float64 (or crashes, or mutates the user's model); with
the check on, the first call raises one line naming the cause and the way out. Models the probe
does follow (GRU, LSTM, a pre-LN transformer block, a residual BatchNorm CNN, tied weights,
dropout) pass the check untouched.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from optuna_ohgw.probes import LookaheadProbe, _guards

F64 = torch.float64
VALUES = {"lr": 0.4, "wd": 0.05}
ROLES = {"lr": "lr", "wd": "weight_decay"}

_gen = torch.Generator().manual_seed(0)
X, Y = torch.randn(32, 6, generator=_gen, dtype=F64), torch.randint(0, 3, (32,), generator=_gen)
XV, YV = torch.randn(32, 6, generator=_gen, dtype=F64), torch.randint(0, 3, (32,), generator=_gen)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

LossFn = Callable[[Callable[..., Any], Any, Mapping[str, Any]], torch.Tensor]


def _seeded(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build().double()

    return make


def _probe(
    model: nn.Module | Callable[[int], nn.Module],
    *,
    roles: Mapping[str, str] = ROLES,
    loss_fn: LossFn | None = None,
    k: int = 2,
) -> LookaheadProbe:
    """Every step trains on (X, Y); the held-out loss is cross entropy on (XV, YV)."""
    return LookaheadProbe(
        model,
        lambda gen: (X, Y),
        lambda gen: (XV, YV),
        roles,
        optimizer=torch.optim.SGD,
        k=k,
        loss_fn=loss_fn,
        val_loss_fn=(lambda apply, b: F.cross_entropy(apply(b[0]), b[1])) if loss_fn else None,
    )


def _real(
    build: Callable[[], nn.Module],
    values: Mapping[str, float],
    loss_fn: LossFn | None = None,
    k: int = 2,
) -> float:
    """The held-out loss after k steps of the real torch.optim.SGD (train mode throughout)."""
    net = build().train()
    opt = torch.optim.SGD(net.parameters(), lr=values["lr"], weight_decay=values["wd"])
    hypers = {n: torch.tensor(v, dtype=F64) for n, v in values.items()}
    for _ in range(k):
        opt.zero_grad()
        loss = loss_fn(net, (X, Y), hypers) if loss_fn else F.cross_entropy(net(X), Y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(net(XV), YV))


def _fd(
    build: Callable[[], nn.Module], name: str, values: Mapping[str, float], **kw: Any
) -> float:
    h = 1e-6
    up, down = {**values, name: values[name] + h}, {**values, name: values[name] - h}
    return (_real(build, up, **kw) - _real(build, down, **kw)) / (2 * h)


def _unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe as it was before the check: nothing is refused."""
    monkeypatch.setattr(_guards, "refusal", lambda *args, **kwargs: None)


def _assert_refused(probe: LookaheadProbe, match: str) -> str:
    with pytest.raises(ValueError, match=match) as caught:
        probe(VALUES)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("LookaheadProbe: ")
    return message


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ----- a forward that writes module state -----------------------------------------------------


class _Centering(nn.Module):
    """Keeps a running centre of its hidden activations, updated in forward (in place or by
    rebinding the buffer), and subtracts it."""

    def __init__(self, rebind: bool) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)
        self.register_buffer("mu", torch.zeros(8))
        self.rebind = rebind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _FORWARDS.append(1)
        h = torch.tanh(self.a(x))
        new = 0.9 * self.mu + 0.1 * h.mean(0).detach()
        if self.rebind:
            self.mu = new
        else:
            self.mu.copy_(new)
        return self.b(h - self.mu)


_FORWARDS: list[int] = []


def test_buffer_updated_in_place_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    build = _seeded(lambda: _Centering(rebind=False))
    with monkeypatch.context() as patch:
        _unchecked(patch)
        wrong = _probe(build()).__call__(VALUES).grads["wd"]
    truth = _fd(build, "wd", VALUES)
    assert _rel(wrong, truth) > 1e-3  # FD's own error is ~1e-8 (the issue: 9.0e-3 vs 2.4e-3)

    model = build()
    probe = _probe(model)
    _FORWARDS.clear()
    _assert_refused(probe, r"forward updates buffer 'mu' in place.*probe=None")
    assert len(_FORWARDS) == 2  # two forwards (the first may fill caches), on a copy
    assert torch.equal(model.mu, torch.zeros(8, dtype=F64))  # the user's model is untouched
    _assert_refused(probe, "in place")  # cached: no further forward
    assert len(_FORWARDS) == 2


def test_buffer_rebound_in_forward_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    build = _seeded(lambda: _Centering(rebind=True))
    with monkeypatch.context() as patch:
        _unchecked(patch)
        wrong = _probe(build()).loss(VALUES).value
    assert _rel(wrong, _real(build, VALUES)) > 1e-4  # the update is dropped between steps
    _assert_refused(_probe(build()), r"forward rebinds buffer 'mu'")


class _Annealed(nn.Module):
    """Shrinks a plain attribute at every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.scale = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scale = self.scale * 0.5
        return self.lin(x) * self.scale


def test_attribute_assigned_in_forward_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    build = _seeded(_Annealed)
    model = build()
    with monkeypatch.context() as patch:
        _unchecked(patch)
        probe = _probe(model)
        first, second = probe(VALUES), probe(VALUES)
    assert first.value != second.value and model.scale != 1.0  # the probe changed the model
    model = build()
    _assert_refused(_probe(model), r"forward assigns attribute 'scale'")
    assert model.scale == 1.0


class _Tracked(nn.Module):
    """Keeps a running mean of its inputs in a plain tensor attribute (not a registered
    buffer), updated in forward by rebinding it or in place, and uses it."""

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.running = torch.zeros((), dtype=F64)
        self.in_place = in_place

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_place:
            self.running.mul_(0.9).add_(x.mean())
        else:
            self.running = self.running * 0.9 + x.mean()
        return self.lin(x - self.running)


@pytest.mark.parametrize("in_place", [False, True])
def test_plain_tensor_attribute_updated_in_forward_is_refused(
    in_place: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _seeded(lambda: _Tracked(in_place))
    model = build()
    with monkeypatch.context() as patch:
        _unchecked(patch)
        probe = _probe(model)
        first, second = probe(VALUES), probe(VALUES)
    assert first.value != second.value and float(model.running) != 0.0  # state leaked
    model = build()
    message = _assert_refused(
        _probe(model), r"forward updates tensor attribute 'running', which is not a registered"
    )
    assert "register_buffer" in message
    assert float(model.running) == 0.0


class _Counted(nn.Module):
    """Counts its calls in an int attribute; with ``uses`` the count also scales the output."""

    def __init__(self, uses: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.calls, self.uses = 0, uses

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.lin(x) * (1.0 + 0.1 * self.calls if self.uses else 1.0)


def test_a_call_counter_is_not_refused_and_the_probe_is_exact() -> None:
    build = _seeded(_Counted)
    result = _probe(build())(VALUES)
    assert result.value == pytest.approx(_real(build, VALUES), rel=1e-12)
    for name in VALUES:
        assert result.grads[name] == pytest.approx(_fd(build, name, VALUES), rel=1e-6), name


def test_a_counter_the_output_depends_on_is_refused() -> None:
    build = _seeded(lambda: _Counted(uses=True))
    _assert_refused(_probe(build()), r"forward assigns attribute 'calls', on which its output")


# ----- activation checkpointing ---------------------------------------------------------------


class _Checkpointed(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.stem, self.head = nn.Linear(6, 8), nn.Linear(8, 3)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.stem(x))
        return self.head(checkpoint(self.block, h, use_reentrant=self.reentrant))


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_activation_checkpointing_is_refused(
    reentrant: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _seeded(lambda: _Checkpointed(reentrant))
    with monkeypatch.context() as patch:
        _unchecked(patch)
        if reentrant:  # torch's own error, which does not say what to do about the probe
            with pytest.raises(RuntimeError, match="incompatible with .grad"):
                _probe(build())(VALUES)
        else:
            wrong = _probe(build())(VALUES).grads["wd"]
            assert _rel(wrong, _fd(build, "wd", VALUES)) > 1e-2  # the issue: rel. error 0.31
    _assert_refused(_probe(build()), r"activation checkpointing.*without checkpointing")


# ----- a loss hyperparameter that does not reach the loss -------------------------------------


_CUTS: dict[str, Callable[[torch.Tensor], Any]] = {
    "float": float,
    "item": lambda h: h.item(),
    "detach": lambda h: h.detach(),
}


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")
@pytest.mark.parametrize("cut", list(_CUTS))
def test_loss_hyperparameter_off_the_graph_is_refused(
    cut: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def loss_fn(apply: Callable[..., Any], batch: Any, h: Mapping[str, Any]) -> torch.Tensor:
        logits = apply(batch[0])
        return F.cross_entropy(logits, batch[1]) + _CUTS[cut](h["pen"]) * logits.pow(2).mean()

    build = _seeded(lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)))
    roles = {**ROLES, "pen": "loss"}
    values = {**VALUES, "pen": 0.3}
    with monkeypatch.context() as patch:
        _unchecked(patch)
        wrong = _probe(build(), roles=roles, loss_fn=loss_fn)(values).grads["pen"]
    assert wrong == 0.0 and abs(_fd(build, "pen", values, loss_fn=loss_fn)) > 1e-4
    probe = _probe(build(), roles=roles, loss_fn=loss_fn)
    with pytest.raises(ValueError, match=r"\['pen'\] do not reach the training loss") as caught:
        probe(values)
    assert "\n" not in str(caught.value)


# ----- weight_norm / spectral_norm ------------------------------------------------------------


def test_torchs_weight_norm_second_derivative_is_wrong() -> None:
    """Why the parametrizations are refused: torch's own double backward fails gradgradcheck."""
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(3, 4, generator=gen, dtype=F64, requires_grad=True)
    g = (torch.rand(3, 1, generator=gen, dtype=F64) + 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, g: torch._weight_norm(v, g, 0), (v, g))
    assert not torch.autograd.gradgradcheck(
        lambda v, g: torch._weight_norm(v, g, 0), (v, g), raise_exception=False
    )


def _normed(kind: str) -> nn.Module:
    from torch.nn.utils import parametrizations

    wrap = {
        "weight_norm": parametrizations.weight_norm,
        "spectral_norm": parametrizations.spectral_norm,
        "hook weight_norm": nn.utils.weight_norm,
        "hook spectral_norm": nn.utils.spectral_norm,
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the hook style is deprecated
        return nn.Sequential(wrap(nn.Linear(6, 8)), nn.Tanh(), nn.Linear(8, 3))


@pytest.mark.parametrize(
    "kind", ["weight_norm", "spectral_norm", "hook weight_norm", "hook spectral_norm"]
)
def test_weight_and_spectral_norm_are_refused(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    build = _seeded(lambda: _normed(kind))
    if kind == "weight_norm":
        with monkeypatch.context() as patch:
            _unchecked(patch)
            wrong = _probe(build())(VALUES).grads["wd"]
        assert _rel(wrong, _fd(build, "wd", VALUES)) > 1e-4  # the issue: rel. error 1.2e-2
    message = _assert_refused(_probe(build()), rf"'0' uses {kind.split()[-1]}.*probe=None")
    assert "remove_parametrizations" in message


# ----- torch.compile --------------------------------------------------------------------------


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def test_compiled_model_is_probed_through_its_original_module() -> None:
    build = _seeded(_mlp)
    compiled = torch.compile(build())  # never run: the probe unwraps it, nothing is compiled
    # (run as compiled, the K=2 crashed on donated buffers; compiling takes ~40 s here)
    result = _probe(compiled)(VALUES)
    plain = _probe(build())(VALUES)
    assert result.value == plain.value and result.grads == plain.grads
    assert result.grads["wd"] == pytest.approx(_fd(build, "wd", VALUES), rel=1e-5)


def test_compiled_submodule_is_refused() -> None:
    model = _seeded(_mlp)()
    model[0] = torch.compile(model[0])
    _assert_refused(_probe(model), r"submodule '0' is torch.compile'd.*compile the whole model")


# ----- what the probe follows: no false alarms ------------------------------------------------


class _Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn, self.head = cell(2, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.view(len(x), 3, 2))
        return self.head(out[:, -1])


class _PreLN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Linear(2, 8), nn.Linear(8, 3)
        self.block = nn.TransformerEncoderLayer(
            8, 2, dim_feedforward=16, dropout=0.1, batch_first=True, norm_first=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(x.view(len(x), 3, 2))).mean(1))


class _ResidualBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.bn, self.bn2 = nn.BatchNorm1d(4), nn.BatchNorm1d(4)
        self.conv2 = nn.Conv1d(4, 4, 3, padding=1)
        self.head = nn.Linear(24, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.bn(self.conv(x.unsqueeze(1))))
        h = torch.tanh(h + self.bn2(self.conv2(h)))
        return self.head(h.flatten(1))


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.b.weight = self.a.weight
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.tanh(self.b(torch.tanh(self.a(x))))))


class _CachedMask(nn.Module):
    """Builds its causal mask at the first forward and keeps it (a common transformer cache)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Linear(2, 8), nn.Linear(8, 3)
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(len(x), 3, 2))
        if self.mask is None:
            self.mask = torch.ones(3, 3, dtype=torch.bool).tril()
        scores = (h @ h.transpose(1, 2)).masked_fill(~self.mask, float("-inf"))
        return self.head((scores.softmax(-1) @ h).mean(1))


@pytest.mark.parametrize(
    "build",
    [
        lambda: _Recurrent(nn.GRU),
        lambda: _Recurrent(nn.LSTM),
        _PreLN,
        _ResidualBN,
        _Tied,
        _CachedMask,
    ],
    ids=["gru", "lstm", "pre-ln-transformer", "residual-bn-cnn", "tied-dropout", "cached-mask"],
)
def test_models_the_probe_follows_pass_the_check(build: Callable[[], nn.Module]) -> None:
    model = _seeded(build)()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = _probe(model)
    first, second = probe(VALUES, seed=3), probe(VALUES, seed=3)
    # Bit for bit: the check (first call only) leaves the seeded dropout masks alone.
    assert (first.value, first.grads) == (second.value, second.grads)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ----- the check's batch, and a refused model in a study --------------------------------------


def _whole_batch_loss(apply: Callable[..., Any], batch: Any, h: Mapping[str, Any]) -> torch.Tensor:
    """A loss that only works on the full 32-row batch (the check first tries 8 rows)."""
    return F.cross_entropy(apply(batch[0]).view(32, 3), batch[1])


def test_the_check_falls_back_to_the_whole_batch() -> None:
    build = _seeded(_mlp)
    result = _probe(build(), loss_fn=_whole_batch_loss)(VALUES)
    assert result.grads["wd"] == pytest.approx(
        _fd(build, "wd", VALUES, loss_fn=_whole_batch_loss), rel=1e-5
    )
    probe = _probe(_seeded(lambda: _Centering(rebind=False))(), loss_fn=_whole_batch_loss)
    _assert_refused(probe, "in place")


def test_a_refused_model_leaves_every_trial_on_its_raw_values() -> None:
    import optuna

    import optuna_ohgw as ohgw
    from optuna_ohgw import attrs

    space = {"lr": optuna.distributions.FloatDistribution(0.01, 1.0, log=True)}
    probe = _probe(lambda seed: _seeded(_Annealed)(), roles={"lr": "lr"}, k=1)
    refusal = "ValueError: LookaheadProbe: the model's forward assigns"
    for self_check in (False, True):
        sampler = ohgw.OHGWSampler(
            optuna.samplers.RandomSampler(seed=0),
            probe,
            search_space=space,
            seed=0,
            self_check=self_check,
        )
        study = optuna.create_study(sampler=sampler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the self-check's one warning
            study.optimize(lambda t: t.suggest_float("lr", 0.01, 1.0, log=True), n_trials=3)
        for trial in study.trials:
            assert trial.state == optuna.trial.TrialState.COMPLETE
            status = trial.user_attrs[attrs.STATUS]
            if not self_check:  # every probe call is refused
                assert status.startswith(f"error: {refusal}")
            elif trial.number == 0:  # the self-check runs the probe first and is refused
                assert status.startswith(f"error: self-check: the check raised {refusal}")
            else:  # then the warm start is off in this process
                assert status.startswith("off: ")
            assert trial.params["lr"] == trial.user_attrs[attrs.raw("lr")]
