"""Any loss, any batch, any data source: the custom-loss path of the look-ahead probe.

Each hypergradient, including a user loss hyperparameter's, is compared with a central finite
difference of real training with the real ``torch.optim`` optimizer on the batches the probe
draws: rows ``torch.randperm(n, generator)[:batch_size]`` of a generator seeded with the probe's
seed, K training batches first, then the held-out one (the documented draw order).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from optuna_ohgw.probes import LookaheadProbe

F64 = torch.float64
RTOL = 1e-5
SEED = 11


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().double()


def _draws(
    train: Dataset, val: Dataset, k: int, size: int, collate: Callable[[list[Any]], Any]
) -> tuple[list[Any], Any]:
    """The batches the probe draws for ``SEED``."""
    gen = torch.Generator().manual_seed(SEED)

    def one(data: Dataset) -> Any:
        idx = torch.randperm(len(data), generator=gen)[:size].tolist()  # type: ignore[arg-type]
        return collate([data[i] for i in idx])

    batches = [one(train) for _ in range(k)]
    return batches, one(val)


def _real(
    model: nn.Module,
    optimizer: type[torch.optim.Optimizer],
    values: Mapping[str, float],
    batches: Sequence[Any],
    val: Any,
    train_loss: Callable[[nn.Module, Any, Mapping[str, float]], torch.Tensor],
    val_loss: Callable[[nn.Module, Any], torch.Tensor],
) -> float:
    net = copy.deepcopy(model).train()
    opt = optimizer(net.parameters(), lr=values["lr"], weight_decay=values["wd"])
    for batch in batches:
        opt.zero_grad()
        train_loss(net, batch, values).backward()
        opt.step()
    with torch.no_grad():
        return float(val_loss(net, val))


def _check(
    probe: LookaheadProbe,
    values: dict[str, float],
    real: Callable[[Mapping[str, float]], float],
) -> None:
    result = probe(values, seed=SEED)
    assert result.value == pytest.approx(real(values), rel=1e-10, abs=0)
    for name in values:
        h = 1e-5 * abs(values[name])
        up, down = dict(values), dict(values)
        up[name] += h
        down[name] -= h
        fd = (real(up) - real(down)) / (2 * h)
        assert abs(fd) > 1e4 * 1e-15 / h, f"{name}: too small to check"
        assert result.grads[name] == pytest.approx(fd, rel=RTOL, abs=1e-15 / h), name


# --- MSE regression from a DataLoader, with a user loss hyperparameter ---------------------


def _regression_data() -> tuple[TensorDataset, TensorDataset]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen, dtype=torch.float32)
    y = (x @ torch.randn(5, 1, generator=gen) + 0.1 * torch.randn(200, 1, generator=gen)).float()
    return TensorDataset(x[:150], y[:150]), TensorDataset(x[150:], y[150:])


def _regressor() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1))


def _mse_l1(apply: Callable[..., Any], batch: Any, hypers: Mapping[str, Any]) -> torch.Tensor:
    x, y = batch
    pred = apply(x)
    # The user's own hyperparameter: the weight of an activity penalty on the predictions.
    return F.mse_loss(pred, y) + hypers["penalty"] * pred.pow(2).mean()


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.AdamW])
def test_mse_regression_from_a_dataloader(k: int, optimizer: type) -> None:
    train, val = _regression_data()
    model = _seeded(_regressor)
    loader = DataLoader(train, batch_size=32, shuffle=True)  # shuffle is never used
    probe = LookaheadProbe(
        model,
        loader,
        DataLoader(val, batch_size=32),
        {"lr": "lr", "wd": "weight_decay", "penalty": "loss"},
        optimizer=optimizer,
        optimizer_kwargs={"eps": 1e-3} if optimizer is torch.optim.AdamW else {},
        k=k,
        loss_fn=_mse_l1,
        val_loss_fn=lambda apply, batch: F.mse_loss(apply(batch[0]), batch[1]),
    )
    assert probe.batch_size == 32
    batches, val_batch = _draws(train, val, k, 32, default_collate)
    batches = [(x.double(), y.double()) for x, y in batches]
    val_batch = (val_batch[0].double(), val_batch[1].double())
    kwargs = {"eps": 1e-3} if optimizer is torch.optim.AdamW else {}

    def real(v: Mapping[str, float]) -> float:
        def opt(params: Any, **kw: Any) -> torch.optim.Optimizer:
            return optimizer(params, **kw, **kwargs)

        return _real(
            model,
            opt,  # type: ignore[arg-type]
            v,
            batches,
            val_batch,
            lambda net, b, hv: _mse_l1(net, b, {"penalty": hv["penalty"]}),
            lambda net, b: F.mse_loss(net(b[0]), b[1]),
        )

    lr = 0.05 if optimizer is torch.optim.SGD else 0.01
    _check(probe, {"lr": lr, "wd": 0.05, "penalty": 0.3}, real)


# --- dict batches, two inputs, a tuple output (the Hugging Face convention) -----------------


class _TinyEncoder(nn.Module):
    """``model(input_ids=..., attention_mask=...) -> (logits, aux)``."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8, padding_idx=0)
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.mix(self.embed(input_ids)))
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * mask).sum(1) / mask.sum(1)
        return self.head(pooled), pooled.pow(2).mean()


def _token_data(n: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 20, (n, 6), generator=gen)
    lengths = torch.randint(2, 7, (n,), generator=gen)
    mask = (torch.arange(6) < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask, "labels": ids[:, 0] % 3}


def _lm_loss(apply: Callable[..., Any], batch: Any, hypers: Mapping[str, Any]) -> torch.Tensor:
    logits, aux = apply(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return F.cross_entropy(logits, batch["labels"]) + hypers["aux_weight"] * aux


class _Rows(Dataset):
    def __init__(self, data: Mapping[str, torch.Tensor]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data["labels"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.data.items()}


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("source", ["tensors", "dataset"])
def test_dict_batches_tuple_outputs_and_a_loss_hyperparameter(k: int, source: str) -> None:
    train, val = _token_data(64, 1), _token_data(32, 2)
    model = _seeded(_TinyEncoder)
    data = (train, val) if source == "tensors" else (_Rows(train), _Rows(val))
    probe = LookaheadProbe(
        model,
        data[0],
        data[1],
        {"lr": "lr", "wd": "weight_decay", "aux_weight": "loss"},
        optimizer=torch.optim.Adam,
        optimizer_kwargs={"eps": 1e-3, "betas": (0.8, 0.95)},
        k=k,
        batch_size=16,
        loss_fn=_lm_loss,
    )
    batches, val_batch = _draws(_Rows(train), _Rows(val), k, 16, default_collate)

    def real(v: Mapping[str, float]) -> float:
        def opt(params: Any, **kw: Any) -> torch.optim.Optimizer:
            return torch.optim.Adam(params, eps=1e-3, betas=(0.8, 0.95), **kw)

        def train_loss(net: nn.Module, b: Any, hv: Mapping[str, float]) -> torch.Tensor:
            return _lm_loss(lambda **kw: net(**kw), b, {"aux_weight": hv["aux_weight"]})

        def held_out(net: nn.Module, b: Any) -> torch.Tensor:
            # The default held-out loss: loss_fn with its hyperparameters as constants.
            return _lm_loss(lambda **kw: net(**kw), b, {"aux_weight": 0.7})

        return _real(model, opt, v, batches, val_batch, train_loss, held_out)  # type: ignore[arg-type]

    _check(probe, {"lr": 0.02, "wd": 0.05, "aux_weight": 0.7}, real)


def test_same_seed_same_batches_for_every_source() -> None:
    train, val = _regression_data()
    x, y = train.tensors
    sources = {
        "tensors": (x, y),
        "dict": {"x": x, "y": y},
        "dataset": train,
        "loader": DataLoader(train, batch_size=16),
        "callable": lambda g: (
            x[torch.randperm(len(x), generator=g)[:16]],
            y[torch.randperm(len(y), generator=g)[:16]],
        ),
    }
    model = _seeded(_regressor)

    def loss(apply: Callable[..., Any], batch: Any, hypers: Any) -> torch.Tensor:
        if isinstance(batch, Mapping):
            batch = (batch["x"], batch["y"])
        return F.mse_loss(apply(batch[0]), batch[1])

    for name, source in sources.items():
        probe = LookaheadProbe(
            model,
            source,
            source,
            {"lr": "lr"},
            optimizer=torch.optim.SGD,
            batch_size=16,
            loss_fn=loss,
        )
        a, b, c = (probe({"lr": 0.1}, seed=s) for s in (1, 1, 2))
        assert a.value == b.value and a.grads == b.grads, name
        assert a.value != c.value, name
    # Tensors, a Dataset and a DataLoader over the same rows draw the same batches.
    values = [
        LookaheadProbe(
            model, s, s, {"lr": "lr"}, optimizer=torch.optim.SGD, batch_size=16, loss_fn=loss
        )({"lr": 0.1}, seed=4).value
        for s in (sources["tensors"], sources["dict"], sources["dataset"], sources["loader"])
    ]
    assert len(set(values)) == 1


def test_loss_hyperparameter_reaches_loss_fn_as_a_tensor() -> None:
    train, val = _regression_data()
    seen: list[torch.Tensor] = []

    def loss(apply: Callable[..., Any], batch: Any, hypers: Mapping[str, Any]) -> torch.Tensor:
        seen.append(hypers["penalty"])
        return _mse_l1(apply, batch, hypers)

    probe = LookaheadProbe(
        _seeded(_regressor),
        train,
        val,
        {"lr": "lr", "penalty": "loss", "other": "loss"},
        optimizer=torch.optim.SGD,
        loss_fn=lambda a, b, h: loss(a, b, h) + h["other"] * 0.0,
        val_loss_fn=lambda apply, batch: F.mse_loss(apply(batch[0]), batch[1]),
    )
    result = probe({"lr": 0.1, "penalty": 0.25, "other": 1.0})
    assert seen[0].requires_grad and seen[0].dtype == F64 and seen[0].item() == 0.25
    assert result.grads["penalty"] != 0.0 and result.grads["other"] == 0.0


def test_default_loss_needs_pairs() -> None:
    train = _token_data(32, 1)
    probe = LookaheadProbe(
        _seeded(_TinyEncoder), train, train, {"lr": "lr"}, optimizer=torch.optim.SGD
    )
    with pytest.raises(ValueError, match="loss_fn="):
        probe({"lr": 0.1})


class _Attention(nn.Module):
    """Self-attention through ``nn.MultiheadAttention``, whose fused kernels lack a double
    backward: the probe must route K >= 2 through the math kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8, padding_idx=0)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids)
        h, _ = self.attn(h, h, h, key_padding_mask=attention_mask == 0, need_weights=False)
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * mask).sum(1) / mask.sum(1))


def _attention_loss(apply: Callable[..., Any], batch: Any, hypers: Any) -> torch.Tensor:
    logits = apply(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return F.cross_entropy(logits, batch["labels"])


def test_attention_with_adamw_at_k2() -> None:
    train, val = _token_data(64, 3), _token_data(32, 4)
    model = _seeded(_Attention)
    probe = LookaheadProbe(
        model,
        train,
        val,
        {"lr": "lr", "wd": "weight_decay", "b1": "beta1", "b2": "beta2"},
        optimizer=torch.optim.AdamW,
        optimizer_kwargs={"eps": 1e-3},
        batch_size=16,
        loss_fn=_attention_loss,
    )
    assert probe.k == 2
    batches, val_batch = _draws(_Rows(train), _Rows(val), 2, 16, default_collate)

    def real(v: Mapping[str, float]) -> float:
        def opt(params: Any, **kw: Any) -> torch.optim.Optimizer:
            return torch.optim.AdamW(params, eps=1e-3, betas=(v["b1"], v["b2"]), **kw)

        def loss(net: nn.Module, b: Any, *_: Any) -> torch.Tensor:
            return _attention_loss(lambda **kw: net(**kw), b, {})

        return _real(model, opt, v, batches, val_batch, loss, loss)  # type: ignore[arg-type]

    _check(probe, {"lr": 0.02, "wd": 0.05, "b1": 0.8, "b2": 0.9}, real)
