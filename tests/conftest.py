"""Shared fixtures: a small, fast study file and the real ``ohgw-optuna`` command."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = pathlib.Path(sys.executable).parent / "ohgw-optuna"
PG_URL = os.environ.get(
    "OHGW_TEST_PG_URL", "postgresql+psycopg2://ohgw:ohgw@127.0.0.1:5433/ohgw_test"
)


def require_postgres() -> None:
    """Skip without a PostgreSQL server at ``PG_URL``; in CI (``CI`` set), fail instead."""
    from optuna_ohgw.storage import open_storage

    try:
        open_storage(PG_URL, heartbeat=False)
    except Exception:  # noqa: BLE001 - any failure to connect means "no server"
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide PostgreSQL at {PG_URL} (see scripts/postgres.sh)")
        pytest.skip("no PostgreSQL server reachable; run scripts/postgres.sh to start one")


S3_ENDPOINT = os.environ.get("OHGW_TEST_S3_ENDPOINT", "http://127.0.0.1:5435")
S3_ENV = {
    "AWS_ENDPOINT_URL": S3_ENDPOINT,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def require_s3(monkeypatch: pytest.MonkeyPatch, bucket: str = "ohgw-test") -> str:
    """Point boto3 at the S3-compatible server at ``S3_ENDPOINT`` (``scripts/s3.sh``) and make
    ``bucket``; skip when none answers (in CI, fail instead). Returns ``s3://bucket``."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        pytest.skip("boto3 is not installed (pip install -e '.[test]')")
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    try:
        client = boto3.client("s3")
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide an S3 server at {S3_ENDPOINT} (scripts/s3.sh): {err}")
        pytest.skip(f"no S3-compatible server at {S3_ENDPOINT}; run scripts/s3.sh to start one")
    return f"s3://{bucket}"


def backend_url(backend: str, tmp_path: pathlib.Path, stem: str) -> str:
    """A storage URL of each kind the race tests run on."""
    if backend == "postgresql":
        require_postgres()
        return PG_URL
    return {
        "sqlite": f"sqlite:///{tmp_path / stem}.db",
        "journal": f"journal:{tmp_path / stem}.journal",
    }[backend]


SMALL_STUDY = """\
name = "{name}"
task = "digits"
target = 0.9
seed = 0
max_epochs = {max_epochs}

[scheduler]
name = "{scheduler}"
min_resource = 1
reduction_factor = 3

[budget]
n_trials = {n_trials}

[space]
lr = {{ low = 1e-2, high = 0.5, log = true }}
weight_decay = {{ low = 1e-6, high = 1e-3, log = true }}
momentum = {{ low = 0.0, high = 0.9 }}
augment = {{ low = 0.0, high = 1.0 }}
label_smoothing = {{ low = 0.0, high = 0.2 }}
"""


@pytest.fixture
def small_study(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    """Write a digits study file with a tiny budget; returns a factory taking overrides."""

    def make(
        name: str = "digits-small",
        *,
        max_epochs: int = 3,
        n_trials: int = 6,
        scheduler: str = "asha",
    ) -> pathlib.Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(
            SMALL_STUDY.format(
                name=name, max_epochs=max_epochs, n_trials=n_trials, scheduler=scheduler
            )
        )
        return path

    return make


def run_cli(
    *args: str, cwd: pathlib.Path, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ohgw-optuna`` console script for real."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Tiny float64 ops: one torch thread is faster, and immune to a busy machine's stalls."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
