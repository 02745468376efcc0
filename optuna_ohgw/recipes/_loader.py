"""Loading a recipe from a study file's ``recipe = "..."``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pathlib
import sys
import traceback
from typing import Any

from optuna_ohgw.recipes._base import BaseRecipe, RecipeError
from optuna_ohgw.recipes._namespace import NamespaceRecipe


def resolve_spec(spec: str, base_dir: str | pathlib.Path | None = None) -> str:
    """``spec`` with a relative file made absolute against ``base_dir`` (a study file's folder);
    a ``package.module:NAME`` is returned as it is."""
    path, _, name = spec.partition(":")
    if not path.endswith(".py"):
        return spec
    file = pathlib.Path(path).expanduser()
    if not file.is_absolute():
        file = pathlib.Path(base_dir or ".") / file
    file = file.resolve()
    return f"{file}:{name}" if name else str(file)


def load_recipe(spec: str, base_dir: str | pathlib.Path | None = None) -> BaseRecipe:
    """The recipe ``spec`` names.

    Args:
        spec: ``"train.py"`` (the file's top-level names), ``"train.py:NAME"`` (an object with
            those names as attributes, or a :class:`BaseRecipe` subclass, instantiated without
            arguments), or an importable ``"package.module"`` / ``"package.module:NAME"``.
        base_dir: Where a relative file is looked up (the study file's folder).

    Raises:
        RecipeError: One line naming the file and the problem (not found, import error, a
            missing name, a function with the wrong arguments).
    """
    resolved = resolve_spec(spec, base_dir)
    target, _, name = resolved.partition(":")
    module = _load_file(target) if target.endswith(".py") else _import(target)
    where = f"{target}:{name}" if name else target
    obj: Any = module
    if name:
        if not hasattr(module, name):
            raise RecipeError(f"{where}: {target} has no name {name!r}")
        obj = getattr(module, name)
    if isinstance(obj, type) and issubclass(obj, BaseRecipe):
        try:
            obj = obj()
        except Exception as err:  # noqa: BLE001 - the user's constructor, any failure
            raise RecipeError(f"{where}: {name}() raised {type(err).__name__}: {err}") from None
    if isinstance(obj, BaseRecipe):
        obj.check()
        return obj
    return NamespaceRecipe(obj, where=where)


def _load_file(path: str) -> Any:
    file = pathlib.Path(path)
    if not file.is_file():
        raise RecipeError(f"{file}: no such recipe file")
    # One module per file and process: every worker's probe and objective share it.
    key = "ohgw_recipe_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    sys.path.insert(0, str(file.parent))  # the recipe may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - whatever the user's file raises
        del sys.modules[key]
        raise RecipeError(f"{file}: {_where_raised(err, file)}") from None
    finally:
        sys.path.remove(str(file.parent))
    return module


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - ModuleNotFoundError or the module's own error
        raise RecipeError(f"{name}: cannot import it ({type(err).__name__}: {err})") from None


def _where_raised(err: BaseException, file: pathlib.Path) -> str:
    """``ImportError: No module named 'x' (line 3)``: the error and its line in ``file``."""
    line = next(
        (
            f.lineno
            for f in reversed(traceback.extract_tb(err.__traceback__))
            if f.filename == str(file)
        ),
        None,
    )
    if isinstance(err, SyntaxError):
        line = err.lineno
    at = f" (line {line})" if line else ""
    message = str(err).splitlines()[0] if str(err) else ""
    return f"importing it raised {type(err).__name__}: {message}{at}"
