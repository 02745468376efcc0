"""OHGW for an AdamW-trained transformer on dict batches (the Hugging Face convention).

The model is called as ``model(input_ids=..., attention_mask=...)``; batches are dicts from a
``DataLoader``; the probe unrolls two real AdamW steps to differentiate lr, weight decay and
beta1, and every trial starts from the weights the probe started from (``ohgw.trial_seed``).
The task, made up here: does a padded sequence hold more 1 tokens than 2 tokens?
"""

import optuna
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import optuna_ohgw as ohgw

VOCAB, LENGTH = 16, 12


def make_data(n: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (n, LENGTH), generator=gen)
    lengths = torch.randint(4, LENGTH + 1, (n,), generator=gen)
    ids[torch.rand(n, LENGTH, generator=gen) < 0.3] = 1
    ids[torch.rand(n, LENGTH, generator=gen) < 0.3] = 2
    mask = (torch.arange(LENGTH) < lengths[:, None]).long()
    ids = ids * mask
    labels = ((ids == 1).sum(1) > (ids == 2).sum(1)).long()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class Rows(Dataset):
    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data["labels"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {key: value[i] for key, value in self.data.items()}


class TinyTransformer(nn.Module):
    def __init__(self, width: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width, padding_idx=0)
        self.position = nn.Parameter(torch.randn(LENGTH, width) * 0.02)
        self.layer = nn.TransformerEncoderLayer(
            width, heads, 2 * width, dropout=0.0, activation="gelu", batch_first=True
        )
        self.head = nn.Linear(width, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.layer(
            self.embed(input_ids) + self.position, src_key_padding_mask=attention_mask == 0
        )
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * mask).sum(1) / mask.sum(1))


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return TinyTransformer()


def loss_fn(apply, batch, hypers) -> torch.Tensor:
    logits = apply(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return F.cross_entropy(logits, batch["labels"])


train = DataLoader(Rows(make_data(1024, 0)), batch_size=64, shuffle=True)
val = DataLoader(Rows(make_data(256, 1)), batch_size=256)
space = {
    "lr": optuna.distributions.FloatDistribution(1e-4, 3e-2, log=True),
    "weight_decay": optuna.distributions.FloatDistribution(1e-4, 0.3, log=True),
    "beta1": optuna.distributions.FloatDistribution(0.5, 0.95),
}
probe = ohgw.LookaheadProbe(
    make_model,
    train,
    val,
    {n: n for n in space},
    optimizer=torch.optim.AdamW,
    loss_fn=loss_fn,
)


def objective(trial: optuna.Trial) -> float:
    p = {n: trial.suggest_float(n, d.low, d.high, log=d.log) for n, d in space.items()}
    model = make_model(ohgw.trial_seed(trial))  # the weights the probe started from
    opt = torch.optim.AdamW(
        model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"], betas=(p["beta1"], 0.999)
    )
    torch.manual_seed(trial.number)  # the DataLoader's shuffle
    for _ in range(3):
        model.train()
        for batch in train:
            opt.zero_grad()
            loss_fn(model, batch, {}).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        batch = next(iter(val))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return (logits.argmax(1) == batch["labels"]).float().mean().item()


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # max_consecutive_failures=1: a probe that cannot run stops the study instead of logging.
    sampler = ohgw.OHGWSampler(
        optuna.samplers.TPESampler(seed=0),
        probe,
        search_space=space,
        seed=0,
        max_consecutive_failures=1,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=6)
    for t in study.trials:
        moves = ", ".join(
            f"{n} {t.user_attrs[f'ohgw.raw.{n}']:.3g} -> {t.params[n]:.3g}" for n in space
        )
        print(
            f"trial {t.number}: accuracy {t.value:.3f}  {moves}  [{t.user_attrs['ohgw.status']}]"
        )
