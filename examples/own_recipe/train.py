"""My own model: a small MLP on scikit-learn's digits, trained with AdamW (no weight decay on
biases), a linear warm-up stepped per step, gradient clipping, and my own metric."""

import torch
from sklearn.datasets import load_digits
from torch import nn

x, y = load_digits(return_X_y=True)
x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, val = order[:1200], order[1200:]
train_data = (x[train], y[train])
val_data = (x[val], y[val])
batch_size = 64
clip_grad_norm = 1.0
WARMUP_STEPS = 30


def build_model(seed, hypers):
    width = hypers["width"]
    return nn.Sequential(
        nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
    )


def make_optimizer(model, hypers):
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    groups = [
        {"params": decay, "weight_decay": hypers["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=hypers["lr"], betas=(hypers["beta1"], 0.999))


def make_scheduler(optimizer):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS)
    )


@torch.no_grad()
def evaluate(model):
    """Balanced accuracy: the mean over the ten digits of the fraction recognised."""
    model.eval()
    inputs, targets = val_data
    hits = model(inputs).argmax(1) == targets
    model.train()
    return sum(hits[targets == c].float().mean().item() for c in range(10)) / 10
