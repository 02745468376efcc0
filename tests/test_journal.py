"""A journal cut in the middle of a record (a crash or a full disk mid-write) loses no complete
record: readers say so in one line, writers cut the broken record off (keeping a copy of the
original) and never append onto it."""

from __future__ import annotations

import json
import os
import pathlib

import optuna
from optuna.trial import TrialState, create_trial

from optuna_ohgw.storage import open_storage
from tests.conftest import run_cli


def _journal_with_trials(tmp_path: pathlib.Path, small_study, n: int) -> tuple[str, pathlib.Path]:  # type: ignore[no-untyped-def]
    """A real journal of the study ``small_study`` writes, with ``n`` finished trials."""
    study_file = small_study("cut")
    url = f"journal:{tmp_path / 'runs' / 'cut.journal'}"
    study = optuna.create_study(study_name="cut", storage=open_storage(url), direction="maximize")
    for i in range(n):
        study.add_trial(create_trial(value=i / 10))
    return url, study_file


def _cut(path: pathlib.Path, inside_record: int) -> tuple[bytes, int]:
    """Cut ``path`` ``inside_record`` bytes into its last record; the original bytes and the
    size up to the last complete record."""
    original = path.read_bytes()
    good = original.rstrip(b"\n").rfind(b"\n") + 1
    os.truncate(path, good + inside_record)
    return original, good


def test_status_says_in_one_line_how_to_repair_a_cut_journal(tmp_path, small_study) -> None:  # type: ignore[no-untyped-def]
    url, study_file = _journal_with_trials(tmp_path, small_study, 5)
    path = tmp_path / "runs" / "cut.journal"
    _, good = _cut(path, 17)
    cut_bytes = path.read_bytes()
    result = run_cli("status", "--study", str(study_file), "--storage", url, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "cut-off record (17 bytes" in lines[0] and f"truncate -s {good} {path}" in lines[0]
    assert path.read_bytes() == cut_bytes  # a reader writes nothing
    assert sorted(p.name for p in path.parent.iterdir()) == ["cut.journal"]


def test_a_writer_cuts_the_broken_record_off_and_keeps_every_complete_one(
    tmp_path, small_study, capfd
) -> None:  # type: ignore[no-untyped-def]
    url, _ = _journal_with_trials(tmp_path, small_study, 5)
    path = tmp_path / "runs" / "cut.journal"
    original, good = _cut(path, 17)  # the last trial's last record is cut
    study = optuna.load_study(study_name="cut", storage=open_storage(url))
    warning = capfd.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "cut it off, keeping every complete record" in warning[0]
    (backup,) = [p for p in path.parent.iterdir() if p.name.startswith("cut.journal.cut-")]
    assert backup.read_bytes() == original[: good + 17]  # the original, as it was found
    assert path.read_bytes() == original[:good]
    study.add_trial(create_trial(value=0.9))  # appended on a clean line
    for line in path.read_bytes().splitlines():
        json.loads(line)  # every record parses: nothing fused onto a cut line
    again = optuna.load_study(study_name="cut", storage=open_storage(url, create=False))
    states = [t.state for t in again.trials]
    assert states[:4] == [TrialState.COMPLETE] * 4  # the complete records' trials, unchanged
    assert [t.value for t in again.trials[:4]] == [0.0, 0.1, 0.2, 0.3]
    assert again.trials[-1].value == 0.9


def test_an_append_after_a_crash_mid_write_repairs_first(tmp_path, small_study) -> None:  # type: ignore[no-untyped-def]
    """A worker killed mid-append while others keep writing: their next append finds the cut
    record under the lock and cuts it off before writing."""
    url, _ = _journal_with_trials(tmp_path, small_study, 2)
    study = optuna.load_study(study_name="cut", storage=open_storage(url))
    path = tmp_path / "runs" / "cut.journal"
    with open(path, "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"x","trial_id":1,"st')  # a writer died here
    study.add_trial(create_trial(value=0.5))
    for line in path.read_bytes().splitlines():
        json.loads(line)
    fresh = optuna.load_study(study_name="cut", storage=open_storage(url, create=False))
    assert [t.value for t in fresh.trials] == [0.0, 0.1, 0.5]


def _break_mid_file(path: pathlib.Path, how: str) -> tuple[bytes, int]:
    """Break the record in the middle of ``path``: fuse it with the next one, or put a line
    of garbage before it; the original bytes and the offset of the broken line."""
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)
    middle = len(lines) // 2
    at = sum(len(line) for line in lines[:middle])
    if how == "fused":
        lines[middle] = lines[middle].rstrip(b"\n")
    else:
        lines.insert(middle, b'{"op_code": 4, "garb\x00age\n')
    path.write_bytes(b"".join(lines))
    return path.read_bytes(), at


def test_a_broken_record_mid_file_is_one_line_for_status_and_repaired_by_a_writer(
    tmp_path, small_study, capfd
) -> None:  # type: ignore[no-untyped-def]
    # Issue 26, finding 6: status and run printed a 52-line JSONDecodeError traceback.
    url, study_file = _journal_with_trials(tmp_path, small_study, 6)
    path = tmp_path / "runs" / "cut.journal"
    for how in ("fused", "garbage"):
        broken, at = _break_mid_file(path, how)
        result = run_cli("status", "--study", str(study_file), "--storage", url, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert f"broken record at byte {at}" in lines[0], lines[0]
        assert f"truncate -s {at} {path}" in lines[0]
        assert path.read_bytes() == broken  # a reader writes nothing
        capfd.readouterr()
        study = optuna.load_study(study_name="cut", storage=open_storage(url))  # a writer
        warning = capfd.readouterr().err.strip().splitlines()
        assert len(warning) == 1 and "keeping every record before it" in warning[0], warning
        backups = [p for p in path.parent.iterdir() if p.name.startswith("cut.journal.cut-")]
        assert broken in [b.read_bytes() for b in backups]
        assert path.read_bytes() == broken[:at]
        for line in path.read_bytes().splitlines():
            json.loads(line)
        assert study.trials, "the records before the broken one are kept"
        study.add_trial(create_trial(value=0.9))  # appends go on
        for p in backups:
            p.unlink()
        for _ in range(4):
            study.add_trial(create_trial(value=0.5))  # records enough to break again
