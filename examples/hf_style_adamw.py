"""OHGW with the Hugging Face recipe: the probe reads the trial's own optimizer and scheduler.

The recipe of ``transformers.Trainer``: AdamW with no weight decay on biases and LayerNorm
weights, a linear warm-up then linear decay (``get_linear_schedule_with_warmup``, written out
below), gradient clipping at norm 1.0, dict batches through a model that returns its own loss.
The probe is given the same ``make_optimizer`` and ``make_scheduler`` the objective trains with,
so it unrolls exactly that training (two parameter groups, the warm-up's first steps, the
clipping), and ``probe.check`` compares it once with the real loop before the study starts.
The task, made up here: does token 1 occur before token 2 in a padded sequence?
"""

import optuna
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import optuna_ohgw as ohgw

VOCAB, LENGTH, EPOCHS, BATCH = 12, 10, 2, 32
N_TRAIN = 256
TOTAL_STEPS, WARMUP_STEPS = EPOCHS * N_TRAIN // BATCH, 4


def make_data(n: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (n, LENGTH), generator=gen)
    first, second = torch.randint(0, LENGTH, (2, n), generator=gen)
    rows = torch.arange(n)
    ids[rows, first], ids[rows, second] = 1, 2
    lengths = torch.maximum(first, second) + 1 + torch.randint(0, 2, (n,), generator=gen)
    mask = (torch.arange(LENGTH) < lengths.clamp(max=LENGTH)[:, None]).long()
    labels = (first < second).long()
    return {"input_ids": ids * mask, "attention_mask": mask, "labels": labels}


class Rows(Dataset):
    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data["labels"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {key: value[i] for key, value in self.data.items()}


class Classifier(nn.Module):
    """A pre-LN transformer block that returns ``{"logits", "loss"}``, as Hugging Face models."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width, padding_idx=0)
        self.position = nn.Parameter(torch.randn(LENGTH, width) * 0.02)
        self.block = nn.TransformerEncoderLayer(
            width, 2, 2 * width, dropout=0.1, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, 2)

    def forward(self, input_ids, attention_mask, labels=None) -> dict[str, torch.Tensor]:
        h = self.block(
            self.embed(input_ids) + self.position, src_key_padding_mask=attention_mask == 0
        )
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        logits = self.classifier(self.norm((h * mask).sum(1) / mask.sum(1)))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits, labels)
        return out


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return Classifier()


def make_optimizer(model: nn.Module, hypers) -> torch.optim.Optimizer:
    """Trainer's grouping: weight decay on every weight but biases and LayerNorm weights."""
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "norm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "norm" in n)]
    groups = [
        {"params": decay, "weight_decay": hypers["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=hypers["lr"], betas=(hypers["beta1"], 0.999))


def make_scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """``transformers.get_linear_schedule_with_warmup``: 0 -> lr over the warm-up, then -> 0."""

    def factor(step: int) -> float:
        if step < WARMUP_STEPS:
            return step / WARMUP_STEPS
        return max(0.0, (TOTAL_STEPS - step) / (TOTAL_STEPS - WARMUP_STEPS))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def loss_fn(apply, batch, hypers) -> torch.Tensor:
    return apply(**batch)["loss"]


train = DataLoader(Rows(make_data(N_TRAIN, 0)), batch_size=BATCH, shuffle=True)
val = DataLoader(Rows(make_data(256, 1)), batch_size=64)
space = {
    "lr": optuna.distributions.FloatDistribution(1e-4, 3e-2, log=True),
    "weight_decay": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True),
    "beta1": optuna.distributions.FloatDistribution(0.5, 0.95),
}
# The warm-up's first step has lr 0: K=3 reaches two steps that move the weights.
probe = ohgw.LookaheadProbe(
    make_model,
    train,
    val,
    {n: n for n in space},
    optimizer=make_optimizer,
    scheduler=make_scheduler,
    clip_grad_norm=1.0,
    loss_fn=loss_fn,
    k=3,
)


def objective(trial: optuna.Trial) -> float:
    p = {n: trial.suggest_float(n, d.low, d.high, log=d.log) for n, d in space.items()}
    model = make_model(ohgw.trial_seed(trial))  # the weights the probe started from
    optimizer = make_optimizer(model, p)
    scheduler = make_scheduler(optimizer)
    torch.manual_seed(trial.number)  # the DataLoader's shuffle, dropout
    model.train()
    for _ in range(EPOCHS):
        for batch in train:
            optimizer.zero_grad()
            model(**batch)["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
    model.eval()
    with torch.no_grad():
        batch = next(iter(val))
        logits = model(batch["input_ids"], batch["attention_mask"])["logits"]
        return (logits.argmax(1) == batch["labels"]).float().mean().item()


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check = probe.check({"lr": 3e-3, "weight_decay": 0.01, "beta1": 0.9}, seed=0)
    verdict = check.verdict
    print(
        f"self-check {verdict}: probe loss {check.probe_loss:.6f}, real loss "
        f"{check.real_loss:.6f}; derivative {check.directional:.6g}, finite difference "
        f"{check.finite_difference:.6g} ({check.seconds:.2f} s) {check.message}"
    )
    sampler = ohgw.OHGWSampler(
        optuna.samplers.TPESampler(seed=0),
        probe,
        search_space=space,
        seed=0,
        max_consecutive_failures=1,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=5)
    for t in study.trials:
        moves = ", ".join(
            f"{n} {t.user_attrs[f'ohgw.raw.{n}']:.3g} -> {t.params[n]:.3g}" for n in space
        )
        print(
            f"trial {t.number}: accuracy {t.value:.3f}  {moves}  [{t.user_attrs['ohgw.status']}]"
        )
