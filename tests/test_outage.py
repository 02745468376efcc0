"""A storage outage is ridden out: the storage proxy killed (SIGKILL) and restarted on the same
port while a worker trains, and the worker goes on; killed for longer than the worker's
patience, the worker gives up in one line, without a traceback."""

from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw.storage import open_storage
from tests.conftest import PG_URL, require_postgres
from tests.test_cluster import _free_port, _start, _study_file


def _proxy(tmp_path: pathlib.Path, port: int) -> subprocess.Popen[str]:
    proxy = _start(tmp_path, "storage-proxy", "--storage", PG_URL, "--port", str(port))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proxy
        except OSError:
            assert proxy.poll() is None, proxy.communicate()[1]
            time.sleep(0.2)
    raise AssertionError("the storage proxy did not start")


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def _wait_training(name: str, worker: subprocess.Popen[str]) -> None:
    storage = open_storage(PG_URL, heartbeat=False)
    deadline = time.time() + 240
    while time.time() < deadline:
        assert worker.poll() is None, worker.communicate()[1]
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            study = None
        if study and any(t.intermediate_values for t in study.trials):
            return
        time.sleep(0.3)
    raise AssertionError("the worker did not start training")


@pytest.fixture
def proxied(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    require_postgres()
    pytest.importorskip("grpc", reason="grpcio is not installed (pip install -e '.[test]')")
    name = f"outage-{uuid.uuid4().hex[:8]}"
    path = _study_file(tmp_path, name, "asha", n_trials=6, max_epochs=3)
    port = _free_port()
    procs: list[subprocess.Popen[str]] = [_proxy(tmp_path, port)]
    yield name, path, port, procs
    for proc in procs:
        if proc.poll() is None:
            _kill(proc)
    optuna.delete_study(study_name=name, storage=open_storage(PG_URL, heartbeat=False))


def test_a_worker_rides_out_a_proxy_outage(proxied, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    name, path, port, procs = proxied
    url = f"grpc://127.0.0.1:{port}"
    worker = _start(tmp_path, "worker", "--study", str(path), "--storage", url,
                    "--storage-patience", "120")  # fmt: skip
    procs.append(worker)
    _wait_training(name, worker)
    _kill(procs[0])
    time.sleep(8)  # the proxy is down: every storage call of the worker fails meanwhile
    procs.append(_proxy(tmp_path, port))  # back, on the same port
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    assert "unreachable (StatusCode.UNAVAILABLE); retrying for up to 120 s" in err, err
    assert "reachable again after" in err, err
    assert "Traceback" not in err, err
    trials = optuna.load_study(study_name=name, storage=open_storage(PG_URL)).trials
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and TrialState.FAIL not in states, states
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) >= 6


def test_a_worker_gives_up_after_its_patience_in_one_line(proxied, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name, path, port, procs = proxied
    url = f"grpc://127.0.0.1:{port}"
    worker = _start(tmp_path, "worker", "--study", str(path), "--storage", url,
                    env={"OHGW_STORAGE_PATIENCE": "3"})  # fmt: skip
    procs.append(worker)
    _wait_training(name, worker)
    _kill(procs[0])
    start = time.monotonic()
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 2, err
    assert time.monotonic() - start < 30
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert lines[-1].startswith("error: storage grpc://") and "unreachable for 3 s" in lines[-1]
    assert [line for line in lines if "retrying for up to 3 s" in line], err
