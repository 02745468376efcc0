"""The chaos harness of issue 26 (slow: skipped by default; run it with
``.venv/bin/python -m pytest -m slow tests/test_chaos.py``): random SIGKILLs of random workers
over a whole study, a SIGTERM of ``run`` in the middle and a rerun, for each promotion
scheduler on the journal. Nothing may be trained twice, lost, left RUNNING or WAITING, and no
checkpoint may be left behind."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import time

import pytest
from optuna.trial import TrialState

from optuna_ohgw import lineage
from tests.test_stops import _run, _trials, _write, trained_twice


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["asha-promotion", "pasha", "dyhpo"])
def test_random_kills_and_a_stop_lose_and_repeat_nothing(
    tmp_path: pathlib.Path, scheduler: str
) -> None:
    rng = random.Random(26)
    name = f"chaos-{scheduler}"
    extra = "total_epochs = 60\n" if scheduler == "dyhpo" else ""
    path = _write(tmp_path, name, scheduler, n_trials=8, extra=extra)
    url = f"journal:{tmp_path / 'chaos.journal'}"
    artifacts = tmp_path / "ckpt"
    args = ("--n-workers", "3", "--artifacts", str(artifacts))
    for stop in (True, False):  # a run stopped by SIGTERM half-way, then the rerun to the end
        proc = _run(path, url, tmp_path, *args)
        start, kills = time.monotonic(), 0
        while proc.poll() is None:
            time.sleep(rng.uniform(1.0, 4.0))
            workers = _children(proc.pid)
            if workers and kills < 6:
                os.kill(rng.choice(workers), signal.SIGKILL)
                kills += 1
            if stop and time.monotonic() - start > 25:
                proc.send_signal(signal.SIGTERM)
                break
        proc.wait(timeout=600)
    assert proc.returncode == 0, proc.stderr.read()[-2000:] if proc.stderr else ""
    trials = _trials(url, name)
    assert trained_twice(trials) == []
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not [t.number for t in trials if lineage.LOST in t.user_attrs]
    assert len(lineage.configurations(trials)) == 8
    assert [p.name for p in (artifacts / name).iterdir() if not p.name.startswith("ohgw-")] == []
