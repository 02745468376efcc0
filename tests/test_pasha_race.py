"""PASHA's shared state only moves forward: processes raising the maximum at the same instant,
on real storages, never lower it, never lose or duplicate a raise."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from optuna_ohgw.schedulers.pasha import PASHA, increases
from optuna_ohgw.storage import open_storage
from tests.conftest import ROOT, backend_url

# Curves whose order flips between every pair of neighbouring rungs of (1, 3, 9, 27), each pair
# crossing once (no swap back, so epsilon stays 0): the ranking is never stable, so every
# decision raises the maximum by one rung, 3 -> 9 -> 27.
CURVES = [
    {1: 0.9, 3: 0.1},
    {1: 0.1, 3: 0.9},
    {3: 0.5, 9: 0.6},
    {3: 0.6, 9: 0.5},
    {9: 0.5, 27: 0.6},
    {9: 0.6, 27: 0.5},
]

RACER = """\
import sys, time
import optuna
from optuna_ohgw.schedulers.pasha import PASHA
from optuna_ohgw.storage import open_storage
url, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))
pasha = PASHA(1, 3, 27)
trials = study.get_trials(deepcopy=False)
seen = []
time.sleep(max(0.0, start - time.time()))
for _ in range(3):
    pasha.after_report(study, trials, 3)
    seen.append(pasha.resource_limit(study))
print(" ".join(map(str, seen)))
"""


@pytest.mark.parametrize("backend", ["journal", "sqlite", "postgresql"])
def test_racing_raises_never_lower_the_maximum(backend: str, tmp_path: pathlib.Path) -> None:
    url = backend_url(backend, tmp_path, "race")
    name = f"pasha-race-{os.getpid()}-{time.time_ns()}"
    study = optuna.create_study(
        study_name=name, storage=open_storage(url, heartbeat=False), direction="maximize"
    )
    dist = {"x": FloatDistribution(0.0, 1.0)}
    for i, curve in enumerate(CURVES):
        study.add_trial(
            create_trial(
                value=curve[max(curve)],
                params={"x": i / 10},
                distributions=dist,
                intermediate_values=curve,
            )
        )
    start = time.time() + 4  # both processes are past their imports by then
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, name, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=120) for r in racers]
    assert all(r.returncode == 0 for r in racers), [err for _, err in outputs]
    for out, _ in outputs:
        seen = [int(v) for v in out.split()]
        assert seen == sorted(seen), f"a process saw the maximum go down: {seen}"
    final = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))
    assert PASHA(1, 3, 27).resource_limit(final) == 27
    assert [i["max_resource"] for i in increases(final.user_attrs)] == [9, 27]
