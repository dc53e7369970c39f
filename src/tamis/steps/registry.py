"""Steps by name: built-ins, classes registered with @register_step, and plugins.

Plugins come from the `tamis.steps` entry-point group (an installed package) or from `*.py` files in a
plugin directory (the repository's `filters/` by default). Every source ends in the same table, so a
pipeline file can name any of them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ray import cloudpickle

from tamis.registry import Registry, UnknownNameError
from tamis.steps.base import Filter, Step


@dataclass(frozen=True)
class PluginFile:
    """A plugin source file this process imported, and the sha256 of the exact bytes it executed."""

    path: Path
    module: str
    sha256: str

    def shown(self) -> str:
        """The path relative to the working directory when it is under it (as `filters/x.py`), else absolute."""
        try:
            return os.path.relpath(self.path) if self.path.is_relative_to(Path.cwd()) else str(self.path)
        except ValueError:
            return str(self.path)

    def to_dict(self) -> dict[str, str]:
        return {"path": self.shown(), "module": self.module, "sha256": self.sha256}


#: resolved path -> the plugin file imported from it, in import order
_LOADED_PLUGIN_FILES: dict[Path, PluginFile] = {}

S = TypeVar("S", bound=type[Step])


class PluginImportError(ValueError):
    """A plugin file raised while it was imported: the file, the line and the exception, without a traceback.

    Why: the pipeline cannot be built, so nothing is started (exit 2, like any bad pipeline), and the user
    needs where it broke in their own file, not the loader's frames around it.
    """

    def __init__(self, path: Path, error: BaseException):
        line = error.lineno if isinstance(error, SyntaxError) else _innermost_line_in(error, path)
        where = f"{path}, line {line}" if line else str(path)
        super().__init__(f"plugin {where}: importing it raised {type(error).__name__}: {error}")
        self.path = path


def _innermost_line_in(error: BaseException, path: Path) -> int | None:
    """The line of the deepest frame of `error`'s traceback that runs in `path`."""
    line = None
    frame = error.__traceback__
    while frame is not None:
        if Path(frame.tb_frame.f_code.co_filename) == path:
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


class UnknownStepError(UnknownNameError):
    kind = "step"


def _load_builtins() -> None:
    importlib.import_module("tamis.steps.builtin")
    for entry_point in importlib.metadata.entry_points(group="tamis.steps"):
        loaded = entry_point.load()
        if isinstance(loaded, type) and issubclass(loaded, Step) and not loaded.step_name:
            register_step(entry_point.name)(loaded)


_STEPS: Registry[type[Step]] = Registry("step", Step, "step_name", UnknownStepError, _load_builtins)


def register_step(name: str):
    """Class decorator: make a Step subclass available under `name` in pipeline files."""

    def decorate(cls: S) -> S:
        return _STEPS.register(name, cls)

    return decorate


def register_filter(name: str, reason: str | None = None):
    """Function decorator: `fn(text, metadata, **params) -> bool | (False, reason)` becomes a filter step.

    The parameters after `text` and `metadata` (with their type hints and defaults) become the step's
    parameters in pipeline files, validated like any class's.
    """

    def decorate(function):
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())
        if len(parameters) < 2:
            raise TypeError(f"@register_filter({name!r}): {function.__name__} must take (text, metadata, ...)")
        step_params = parameters[2:]
        param_names = [p.name for p in step_params]

        def __init__(self, **kwargs):
            for param in step_params:
                setattr(self, param.name, kwargs.get(param.name, param.default))

        __init__.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *step_params]
        )
        __init__.__annotations__ = {
            k: v for k, v in getattr(function, "__annotations__", {}).items() if k in param_names
        }

        def filter(self, text, metadata):
            return function(text, metadata, **{n: getattr(self, n) for n in param_names})

        attributes = {
            "__init__": __init__,
            "filter": filter,
            "__doc__": function.__doc__,
            "__module__": function.__module__,
            "__qualname__": function.__qualname__,
            "default_reason": reason or name,
        }
        step_class = type(function.__name__, (Filter,), attributes)
        register_step(name)(step_class)
        function.step_class = step_class
        return function

    return decorate


def load_plugin_dir(directory: str | Path) -> list[str]:
    """Import every `*.py` in `directory` (not starting with `_`) so its @register_step classes register.

    Plugin modules are pickled by value to Ray workers (Ray's own cloudpickle), so they need not be
    importable on the cluster's nodes.
    """
    _STEPS.all()  # built-ins first, so that a plugin cannot take a built-in's name unnoticed
    directory = Path(directory)
    modules = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        resolved = path.resolve()
        if resolved in _LOADED_PLUGIN_FILES:
            continue
        module_name = f"tamis_plugins.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, resolved)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        # run the very bytes that are hashed, so the recorded hash is the code that ran
        source = resolved.read_bytes()
        try:
            exec(compile(source, str(resolved), "exec"), module.__dict__)  # noqa: S102 - importing the plugin
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise PluginImportError(resolved, exc) from exc
        cloudpickle.register_pickle_by_value(module)
        _LOADED_PLUGIN_FILES[resolved] = PluginFile(resolved, module_name, hashlib.sha256(source).hexdigest())
        modules.append(module_name)
    return modules


def record_plugin_module(name: str) -> None:
    """Note a plugin imported by module name (`plugins: [package.module]`) among the imported plugin files."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None)
    if not origin or not Path(origin).is_file():
        return
    resolved = Path(origin).resolve()
    if resolved not in _LOADED_PLUGIN_FILES:
        digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
        _LOADED_PLUGIN_FILES[resolved] = PluginFile(resolved, name, digest)


def loaded_plugin_files() -> list[PluginFile]:
    """Every plugin file this process imported (plugin directories, ./filters, `plugins:` modules)."""
    return list(_LOADED_PLUGIN_FILES.values())


def plugin_file_of(step_class: type) -> PluginFile | None:
    """The imported plugin file that defines `step_class`, if it comes from one."""
    module = step_class.__module__
    return next((p for p in _LOADED_PLUGIN_FILES.values() if p.module == module), None)


def get_step_class(name: str) -> type[Step]:
    return _STEPS.get(name)


def available_steps() -> dict[str, type[Step]]:
    return _STEPS.all()
