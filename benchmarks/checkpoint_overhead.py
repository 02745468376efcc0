"""Seconds per pause/resume (checkpoint save + load through CheckpointStore) per task, as a
fraction of one training epoch of that task on this machine, through each artifact store: a
folder (``FileSystemArtifactStore``) and, with ``--s3``, an S3 bucket (``Boto3ArtifactStore``;
endpoint and keys from the AWS_* variables, e.g. the server ``scripts/s3.sh`` starts).

    python benchmarks/checkpoint_overhead.py [--repeats 5] [--s3 s3://bucket/prefix]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import optuna
import torch

from optuna_ohgw.artifact_store import open_artifact_store
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.tasks import CIFAR10Task, DigitsTask, MNIST1DTask
from optuna_ohgw.tasks._base import Splits, TrainState

HP = {"lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9, "augment": 1.0, "label_smoothing": 0.1}


def _state(task, splits: Splits) -> TrainState:  # type: ignore[no-untyped-def]
    model = task.model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return TrainState(model, opt, dict(HP), 0, splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cifar-steps", type=int, default=5)
    parser.add_argument("--s3", default=None, help="also measure s3://BUCKET/PREFIX")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stores = {"file": tempfile.mkdtemp(prefix="ohgw-ckpt-")}
    if args.s3:
        stores["s3"] = args.s3
    print(f"threads={torch.get_num_threads()}")
    print(
        f"{'task':<8} {'store':<5} {'ckpt KB':>8} {'save s':>8} {'load s':>8} "
        f"{'save+load s':>11} {'epoch s':>8} {'fraction':>9}"
    )
    for cls in (DigitsTask, MNIST1DTask, CIFAR10Task):
        task = cls()
        if cls is CIFAR10Task:
            gen = torch.Generator().manual_seed(0)
            n = args.cifar_steps * task.batch_size
            x, y = torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,))
            splits = Splits((x, y), (x[:256], y[:256]), (x[:256], y[:256]))
        else:
            splits = task.splits(0)
        state = _state(task, splits)
        task.train_one_epoch(state, 0, 10, task.batch_size)  # fills momentum buffers
        start = time.perf_counter()
        task.train_one_epoch(state, 1, 10, task.batch_size)
        epoch = time.perf_counter() - start
        if cls is CIFAR10Task:  # scale the timed steps to a 45k-image epoch
            epoch *= 45_000 / n
        for kind, url in stores.items():
            study = optuna.create_study()
            store = CheckpointStore(open_artifact_store(url, f"bench-{cls.name}"))
            saves, loads, size = [], [], 0
            for _ in range(args.repeats):
                trial = study.ask()  # uploads are recorded on a RUNNING trial
                start = time.perf_counter()
                artifact = store.save(trial, 0, 1, state.state_dict())
                saves.append(time.perf_counter() - start)
                start = time.perf_counter()
                state.load_state_dict(store.load(artifact, 0)["state"])
                loads.append(time.perf_counter() - start)
                with store.store.open_reader(artifact) as reader:
                    size = len(reader.read()) / 1024
                store.delete(artifact)
                study.tell(trial, 0.0)
            save, load = statistics.median(saves), statistics.median(loads)
            print(
                f"{cls.name:<8} {kind:<5} {size:>8.0f} {save:>8.4f} {load:>8.4f} "
                f"{save + load:>11.4f} {epoch:>8.2f} {(save + load) / epoch:>9.2%}"
            )


if __name__ == "__main__":
    main()
