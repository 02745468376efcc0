"""The library (sampler, steps, probes, objective, schedulers) never imports the application
(tasks, the runner, the evidence code, the CLI)."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "optuna_ohgw"
LIBRARY = [
    PACKAGE / "sampler.py",
    PACKAGE / "steps.py",
    PACKAGE / "objective.py",
    *sorted((PACKAGE / "probes").glob("*.py")),
    *sorted((PACKAGE / "schedulers").glob("*.py")),
    *sorted((PACKAGE / "recipes").glob("*.py")),
]
APPLICATION = ("optuna_ohgw.tasks", "optuna_ohgw.runner", "optuna_ohgw.evidence", "cli")


def _imports(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_does_not_import_the_application(path: pathlib.Path) -> None:
    bad = [n for n in _imports(path) if any(n == a or n.startswith(f"{a}.") for a in APPLICATION)]
    assert not bad, f"{path.name} imports {bad}"


ROOT = PACKAGE.parent
PACKAGES = ("optuna_ohgw", "cli")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (never run, so not a run-time import)."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for stmt in node.body
        for inner in ast.walk(stmt)
    }


def _local_imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The modules of :data:`PACKAGES` that ``path`` imports when it runs, at module level or
    inside a function (``from pkg import mod`` counts as importing ``pkg.mod`` when that is a
    module); imports under ``if TYPE_CHECKING:`` do not count."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = _type_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {name for name in found if name in known and name != here}


def test_no_two_modules_import_each_other() -> None:
    """No module of ``optuna_ohgw`` or ``cli`` imports a module that imports it back."""
    paths = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    known = {_module_name(p) for p in paths}
    imports = {_module_name(p): _local_imports(p, known) for p in paths}
    cycles = sorted(
        f"{a} <-> {b}" for a, deps in imports.items() for b in deps if a < b and a in imports[b]
    )
    assert not cycles, f"modules that import each other: {cycles}"
