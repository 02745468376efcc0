"""``ohgw-optuna dashboard`` serves the study's storage through the real optuna-dashboard."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

from tests.conftest import CLI, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_dashboard_shows_the_warm_start_attrs(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=2, max_epochs=2)
    assert run_cli("run", "--study", str(path), cwd=tmp_path).returncode == 0
    port = _free_port()
    proc = subprocess.Popen(
        [str(CLI), "dashboard", "--study", str(path), "--port", str(port)],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        studies = None
        for _ in range(100):
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")
                break
            except OSError:
                time.sleep(0.2)
        assert studies is not None, proc.stderr.read1().decode() if proc.stderr else ""
        (summary,) = [s for s in studies["study_summaries"] if s["study_name"] == "digits-small"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}?after=0")
        trial = detail["trials"][0]
        keys = {a["key"] for a in trial["user_attrs"]}
        assert {"ohgw.raw.lr", "ohgw.nudged.lr", "ohgw.grad.lr", "ohgw.status"} <= keys
        # At a glance: the trial note has one row per parameter (raw, nudged, grad, step) ...
        note = trial["note"]["body"]
        assert "| parameter | raw | nudged | hypergradient | step |" in note
        assert all(f"| {name} |" in note for name in ("lr", "momentum", "weight_decay"))
        # ... and per-epoch lists are one short string that wraps, not a page-wide JSON list.
        (seconds,) = [a["value"] for a in trial["user_attrs"] if a["key"] == "ohgw.epoch_seconds"]
        assert isinstance(seconds, str) and len(seconds.split()) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_note_shows_the_self_checks_verdict() -> None:
    from optuna_ohgw import attrs
    from optuna_ohgw.runner._note import warm_start_note

    note = warm_start_note(
        {
            attrs.STATUS: "ok",
            attrs.SELF_CHECK: "inconclusive: self-check: the look-ahead loss jumps",
            attrs.raw("lr"): 0.1,
            attrs.nudged("lr"): 0.11,
        }
    )
    assert "**OHGW warm start:** ok" in note
    assert "**Self-check (this process):** inconclusive: self-check: the look-ahead" in note
    assert "| lr | 0.1 | 0.11 |" in note
    assert "Self-check" not in warm_start_note({attrs.STATUS: "ok"})
