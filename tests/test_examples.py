"""The examples run as a user runs them, each in a fresh process, and print warm starts."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MOVE = re.compile(r"trial \d+: .*\b\w+ [-+.\de]+ -> [-+.\de]+")


@pytest.mark.parametrize(
    "script",
    ["quickstart.py", "adamw_transformer.py", "regression_dataloader.py", "hf_style_adamw.py"],
)
def test_example_runs_and_prints_raw_and_nudged_values(script: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if MOVE.search(line)]
    assert len(lines) >= 5, done.stdout
    assert "error" not in done.stdout and "nonfinite" not in done.stdout
    assert "failed" not in done.stderr, done.stderr[-2000:]
    if script == "hf_style_adamw.py":  # the probe checked against the real loop first
        assert "self-check ok" in done.stdout, done.stdout
