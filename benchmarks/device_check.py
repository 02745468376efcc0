"""The GPU figures of ``benchmarks/device_check.sh`` (run it, not this, on a GPU machine).

1. The look-ahead probe on the GPU vs the CPU, both in float64, on digits and MNIST-1D: the
   held-out loss and every hypergradient, with the largest relative difference.
2. One ResNet-20 epoch on CIFAR-10-shaped data held on the GPU (generated images of the real
   shape, 50,000 x 3x32x32, and labels; the cost does not depend on the pixel values).
3. The probe on that network (fp32, the five hyperparameters, as a trial runs it) in seconds and
   as a share of that epoch.

``--device cpu`` is a dry run of the same code with fewer images (the figures then say nothing
about a GPU).

    python benchmarks/device_check.py [--device cuda] [--images 50000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from optuna_ohgw.probes import LookaheadProbe
from optuna_ohgw.tasks import CIFAR10Task, DigitsTask, MNIST1DTask
from optuna_ohgw.tasks._base import Splits, TrainState

HP = {"lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9, "augment": 0.5, "label_smoothing": 0.1}
ROLES = {name: name for name in HP}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _probe(task, splits: Splits, device: torch.device, dtype: torch.dtype, k: int | None = None):  # type: ignore[no-untyped-def]
    return LookaheadProbe(
        task.build_model,
        splits.train,
        splits.val,
        ROLES,
        optimizer=torch.optim.SGD,  # as the tasks train
        k=k,
        batch_size=128,
        augmentation=task.augmentation,
        dtype=dtype,
        device=device,
    )


def probe_gpu_vs_cpu(device: torch.device) -> None:
    print(f"== probe on {device} vs cpu, float64 (k=1, all five hyperparameters)")
    print(f"{'task':<8} {'loss ' + device.type:>22} {'loss cpu':>22} {'max rel diff (grads)':>21}")
    for cls in (DigitsTask, MNIST1DTask):
        task = cls()  # data on the CPU; each probe moves its batches to its device
        splits = task.splits(0)
        results = {}
        for where in (device, torch.device("cpu")):
            results[where.type] = _probe(task, splits, where, torch.float64, k=1)(HP, seed=0)
        a, b = results[device.type], results["cpu"]
        worst = max(abs(a.grads[n] - b.grads[n]) / max(abs(b.grads[n]), 1e-300) for n in b.grads)
        print(f"{cls.name:<8} {a.value:>22.15g} {b.value:>22.15g} {worst:>21.3e}")
        for name in b.grads:
            print(f"    d/d{name:<16} {a.grads[name]:>22.15g} {b.grads[name]:>22.15g}")


def resnet_epoch_and_probe(device: torch.device, images: int) -> None:
    task = CIFAR10Task(device=str(device))
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.rand(images, 3, 32, 32, generator=gen).to(device)
    x = (x - 0.5) / 0.25  # roughly the normalised range of the real images
    y = torch.randint(0, 10, (images,), generator=gen).to(device)
    val = (x[:1000], y[:1000])
    splits = Splits((x, y), val, val)
    print(f"== ResNet-20, {images} CIFAR-10-shaped images resident on {device}")
    model = task.model(0)
    opt = torch.optim.SGD(model.parameters(), lr=HP["lr"], momentum=HP["momentum"])
    state = TrainState(model, opt, dict(HP), 0, splits)
    times = []
    for epoch in range(2):  # the first epoch warms up kernels and the allocator
        _sync(device)
        start = time.perf_counter()
        task.train_one_epoch(state, epoch, 10, task.batch_size)
        _sync(device)
        times.append(time.perf_counter() - start)
    epoch = times[-1]
    steps = -(-images // task.batch_size)
    print(
        f"epoch seconds           {epoch:.3f}  ({steps} steps of {task.batch_size}; warm-up "
        f"epoch {times[0]:.3f} s)"
    )
    probe = _probe(task, splits, device, torch.float32)
    probe(HP, seed=0)  # warm-up
    seconds = []
    for seed in range(3):
        _sync(device)
        start = time.perf_counter()
        probe(HP, seed=seed)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    cost = statistics.median(seconds)
    print(f"probe seconds           {cost:.4f}  (fp32, k={probe.k}, median of 3)")
    print(f"probe / epoch           {cost / epoch:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=50_000)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: CUDA is not available to torch on this machine")
        device = torch.device("cuda", torch.cuda.current_device())
        print(
            f"device {device}: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}"
        )
    else:
        print(f"device {device} (DRY RUN: these figures say nothing about a GPU)")
    probe_gpu_vs_cpu(device)
    resnet_epoch_and_probe(device, args.images)


if __name__ == "__main__":
    main()
