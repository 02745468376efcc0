"""A storage outage is ridden out: the storage proxy killed (SIGKILL) and restarted on the same
port while a worker trains, and the worker goes on; killed for longer than the worker's
patience, the worker gives up in one line, without a traceback."""

from __future__ import annotations

import contextlib
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
    _assert_rode_out(name, worker, err, "StatusCode.UNAVAILABLE")


def _assert_rode_out(name: str, worker: subprocess.Popen[str], err: str, reason: str) -> None:
    """The worker waited the outage out in two lines and lost nothing."""
    assert worker.returncode == 0, err
    assert f"unreachable ({reason}); retrying for up to 120 s" in err, err
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


def test_a_restarted_proxy_takes_the_parameters_of_a_trial_it_never_read(
    tmp_path: pathlib.Path,
) -> None:
    # Issue 26, finding 4: after the proxy came back, the trial in flight failed with KeyError
    # (Optuna's cached storage knew only the trials it had read since it started).
    from optuna.distributions import FloatDistribution
    from optuna.study import StudyDirection

    from optuna_ohgw import _optuna_compat as compat

    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    before = compat.proxy_backend(open_storage(url, heartbeat=False))  # the proxy, first run
    study_id = before.create_new_study([StudyDirection.MAXIMIZE], "s")
    trial_id = before.create_new_trial(study_id)  # a worker's trial, in flight
    after = compat.proxy_backend(open_storage(url, heartbeat=False))  # the proxy, restarted
    after.set_trial_param(trial_id, "lr", 0.1, FloatDistribution(0.01, 1.0))
    after.set_trial_param(trial_id, "wd", 0.2, FloatDistribution(0.01, 1.0))
    assert after.get_trial(trial_id).params == {"lr": 0.1, "wd": 0.2}
    assert after.get_all_trials(study_id)[0].params == {"lr": 0.1, "wd": 0.2}


def test_a_worker_started_before_its_proxy_waits_its_patience(tmp_path: pathlib.Path) -> None:
    # Issue 26, finding 7: it gave up after 10 s whatever --storage-patience said.
    require_postgres()
    pytest.importorskip("grpc", reason="grpcio is not installed (pip install -e '.[test]')")
    name = f"outage-{uuid.uuid4().hex[:8]}"
    path = _study_file(tmp_path, name, "asha", n_trials=2, max_epochs=1)
    port = _free_port()
    worker = _start(tmp_path, "worker", "--study", str(path), "--storage",
                    f"grpc://127.0.0.1:{port}", "--storage-patience", "60")  # fmt: skip
    proxy = None
    try:
        time.sleep(14)  # longer than the old fixed 10 s
        assert worker.poll() is None, worker.communicate()[1]
        proxy = _proxy(tmp_path, port)
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        assert "no storage proxy answers at" in err and "waiting up to 60 s" in err, err
    finally:
        for proc in (worker, proxy):
            if proc is not None and proc.poll() is None:
                _kill(proc)
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=open_storage(PG_URL, heartbeat=False))


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_a_checkpoint_whose_record_never_reached_the_database_is_swept(
    where: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 26, finding 5: an upload during a database outage left its checkpoint for good.
    import io

    from optuna_ohgw.checkpoint import open_checkpoints
    from optuna_ohgw.schedulers import finish_study
    from tests.conftest import require_s3

    url = str(tmp_path / "ckpt") if where == "folder" else require_s3(monkeypatch)
    name = f"sweep-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(
        study_name=name, storage=open_storage(f"journal:{tmp_path / 's.journal'}")
    )
    store = open_checkpoints(study, url)
    orphan = uuid.uuid4().hex  # uploaded, then the database went away: no record names it
    store.store.write(orphan, io.BytesIO(b"weights"))
    listed = store.store.list_ids()
    assert orphan in listed and len(listed) == 2  # and the study's marker
    assert finish_study(study, store) == 1
    (marker,) = store.store.list_ids()
    assert marker.startswith("ohgw-store-")
    open_checkpoints(study, url)  # the marker still binds the study to its store


class _Forwarder:
    """A TCP port in front of the PostgreSQL server that can go away and come back, as the
    server itself does when it restarts (every connection dropped, connections refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, _free_port()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None

    def start(self) -> None:
        import threading

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server

        def pump(a: socket.socket, b: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := a.recv(65536):
                    b.sendall(data)
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

        def accept() -> None:
            while True:
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                upstream = socket.create_connection(self.target)
                self._conns += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self._server.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns = []


def test_a_worker_rides_out_a_database_restart(tmp_path: pathlib.Path) -> None:
    # Issue 26, finding 5: a direct PostgreSQL restart ended the run with 4 tracebacks and 3
    # trials left RUNNING.
    from urllib.parse import urlsplit

    require_postgres()
    parts = urlsplit(PG_URL)
    forwarder = _Forwarder((parts.hostname or "127.0.0.1", parts.port or 5432))
    forwarder.start()
    url = PG_URL.replace(
        parts.netloc, f"{parts.username}:{parts.password}@127.0.0.1:{forwarder.port}"
    )
    name = f"restart-{uuid.uuid4().hex[:8]}"
    path = _study_file(tmp_path, name, "asha", n_trials=6, max_epochs=3)
    worker = _start(tmp_path, "worker", "--study", str(path), "--storage", url,
                    "--storage-patience", "120")  # fmt: skip
    try:
        _wait_training(name, worker)
        forwarder.stop()  # the server goes down: connections dropped, new ones refused
        time.sleep(8)
        forwarder.start()  # and is back on the same port
        _, err = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            _kill(worker)
    try:
        _assert_rode_out(name, worker, err, "OperationalError")
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(PG_URL, heartbeat=False))


def _terminate(application_name: str) -> int:
    """Terminates the server's backends of ``application_name`` (as a restart does); how many."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        PG_URL, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    where = "FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"
    with engine.connect() as admin:
        query = sqlalchemy.text(f"SELECT pg_terminate_backend(pid) {where}")
        rows = admin.execute(query, {"name": application_name}).all()
        deadline = time.time() + 30  # the backends exit asynchronously: wait until they have
        count = sqlalchemy.text(f"SELECT count(*) {where}")
        while admin.execute(count, {"name": application_name}).scalar() and time.time() < deadline:
            time.sleep(0.05)
    engine.dispose()
    return len(rows)


def _dropped_error(application_name: str, at_commit: bool) -> BaseException:
    """The real error of a connection the server dropped in a transaction: at a statement, or
    at the COMMIT."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_URL, connect_args={"application_name": application_name})
    conn = engine.connect()
    conn.execute(sqlalchemy.text("SELECT 1"))  # a transaction is open
    assert _terminate(application_name) == 1
    try:
        if at_commit:
            conn.commit()
        else:
            conn.execute(sqlalchemy.text("SELECT 2"))
    except sqlalchemy.exc.DBAPIError as err:
        return err
    finally:
        engine.dispose()
    raise AssertionError("the dropped connection raised nothing")


def test_a_transaction_the_server_dropped_is_retried_a_lost_commit_is_not() -> None:
    # CI at d908979: a restart that cut a worker's write mid-transaction failed its trial
    # (the connection was dropped, not refused, so the call was not taken for an outage).
    import sqlalchemy

    from optuna_ohgw.patient_storage import is_db_down

    require_postgres()
    tag = f"ohgw-dropped-{uuid.uuid4().hex[:8]}"
    statement = _dropped_error(tag, at_commit=False)
    assert isinstance(statement, sqlalchemy.exc.OperationalError)
    assert is_db_down(statement)  # never committed: the server rolled it back
    assert is_db_down(optuna.exceptions.StorageInternalError("commit")) is False
    wrapped = optuna.exceptions.StorageInternalError("commit")
    wrapped.__cause__ = statement
    assert is_db_down(wrapped)  # as Optuna raises it
    commit = _dropped_error(tag, at_commit=True)
    assert commit.connection_invalidated and not is_db_down(commit)  # it may have landed
    engine = sqlalchemy.create_engine(PG_URL)  # an error of the server that is not a drop
    with engine.connect() as conn, pytest.raises(sqlalchemy.exc.OperationalError) as slow:
        conn.execute(sqlalchemy.text("SET statement_timeout = 1; SELECT pg_sleep(1)"))
    engine.dispose()
    assert not is_db_down(slow.value)


def test_the_outage_line_names_the_drop_when_optuna_falls_back_in_a_dead_session() -> None:
    # CI at 20b6989: Optuna's _get_trials catches the OperationalError of the drop and queries
    # again in the same session, which raises PendingRollbackError; the worker rode it out but
    # named the PendingRollbackError, not the drop.
    import sqlalchemy
    import sqlalchemy.orm

    from optuna_ohgw.patient_storage import _reason, is_db_down

    require_postgres()
    tag = f"ohgw-fallback-{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(PG_URL, connect_args={"application_name": tag})
    session = sqlalchemy.orm.Session(engine)
    session.execute(sqlalchemy.text("SELECT 1"))  # a transaction is open
    assert _terminate(tag) == 1
    try:
        try:
            session.execute(sqlalchemy.text("SELECT 2"))
        except sqlalchemy.exc.OperationalError:
            session.execute(sqlalchemy.text("SELECT 3"))  # Optuna's slower alternative
    except sqlalchemy.exc.PendingRollbackError as err:
        fallback: BaseException = err
    else:
        raise AssertionError("the dead session ran the fallback")
    finally:
        session.close()
        engine.dispose()
    assert is_db_down(fallback)  # nothing of the call ran
    assert _reason(fallback) == "OperationalError"
    assert _reason(optuna.exceptions.StorageInternalError("x")) == "StorageInternalError"


def test_a_patient_database_storage_reruns_a_write_the_server_dropped() -> None:
    from optuna.storages import RDBStorage
    from optuna.study import StudyDirection

    from optuna_ohgw.patient_storage import patient_rdb

    require_postgres()
    tag = f"ohgw-dropped-{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in PG_URL else "?"
    plain = RDBStorage(f"{PG_URL}{sep}application_name={tag}")  # no pre-ping: the drop is hit
    storage = patient_rdb(plain, where="postgresql", patience=30)
    name = f"dropped-{uuid.uuid4().hex[:8]}"
    study_id = storage.create_new_study([StudyDirection.MAXIMIZE], name)
    try:
        trial_id = storage.create_new_trial(study_id)
        assert _terminate(tag) >= 1  # the pooled connection dies, as in a restart
        storage.set_trial_user_attr(trial_id, "ohgw.status", "ok")
        assert storage.get_trial(trial_id).user_attrs == {"ohgw.status": "ok"}
    finally:
        storage.delete_study(study_id)
        storage.engine.dispose()
