"""The wheel a user installs (not ``-e``): built from this checkout, installed without its
dependencies into a fresh venv that borrows them from the test environment, then used from a
temporary folder, far from the source tree."""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "optuna_ohgw", "cli", "studies")


def _run(argv: list[str], cwd: pathlib.Path, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


def _setuptools_major() -> int:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return 0


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The fresh venv's bin folder, with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:  # a copy, so the build leaves nothing in the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    # Build with this environment's setuptools when it is recent enough (no network needed),
    # else in pip's isolated build environment (a fresh venv's bundled setuptools is too old).
    isolation = [] if _setuptools_major() < 77 else ["--no-build-isolation"]
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(dist),
         str(src)],
        cwd=tmp,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("optuna_ohgw-*.whl")
    venv = tmp / "venv"
    assert (
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp).returncode == 0
    )
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp
    )
    # The dependencies (torch, optuna, ...) come from this environment, after the venv's own.
    pathlib.Path(site.stdout.strip(), "_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        cwd=tmp,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return venv / "bin"


def test_the_wheel_ships_studies_and_no_top_level_cli(installed: pathlib.Path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    where = _run(
        [str(installed / "python"), "-c",
         "import importlib.util as u, optuna_ohgw, optuna_ohgw_cli; "
         "print(optuna_ohgw.__file__); print(u.find_spec('cli'))"],
        cwd=tmp_path,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    package, cli_spec = where.stdout.split()
    assert str(installed.parent) in package and not package.startswith(str(ROOT))
    assert cli_spec == "None"  # no top-level "cli" package installed
    listed = _run([str(installed / "ohgw-optuna"), "studies"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert {"digits-asha", "mnist1d-pasha", "cifar10-dyhpo"} <= names


def test_the_wheel_runs_a_shipped_study_from_any_folder(installed: pathlib.Path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = _run(
        [str(installed / "ohgw-optuna"), "run", "--study", "digits-asha", "--budget",
         "n_trials=1", "--no-ohgw"],
        cwd=tmp_path,
        timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "1 complete" in run.stdout
    assert (tmp_path / "runs" / "digits-asha-vanilla.journal").exists()


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """pyproject lists the packages by hand (for the cli/ and studies/ mappings): a new
    subpackage left off the list would be missing from every non-editable install."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "optuna_ohgw").rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
