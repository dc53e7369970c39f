"""Checks a step's parameters against its constructor signature before any cluster work starts."""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from tamis.steps.base import Step


class ParameterError(ValueError):
    """A parameter of a step is wrong; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def matches(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a type hint (the subset of typing that step signatures use)."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    if annotation is type(None) or annotation is None:
        return value is None
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(matches(value, arg) for arg in get_args(annotation))
    if origin is Literal:
        return value in get_args(annotation)
    if origin in (list, tuple, set, frozenset, typing.Sequence, typing.Collection):
        if not isinstance(value, (list, tuple)):
            return False
        args = get_args(annotation)
        item = args[0] if args else Any
        return all(matches(v, item) for v in value)
    if origin is dict or origin is typing.Mapping:
        if not isinstance(value, dict):
            return False
        key_type, value_type = get_args(annotation) or (Any, Any)
        return all(matches(k, key_type) and matches(v, value_type) for k, v in value.items())
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def validate_params(step_class: type[Step], params: dict[str, Any]) -> dict[str, Any]:
    """All constructor arguments (given ones checked, defaults filled in), or ParameterError."""
    signature = inspect.signature(step_class.__init__)
    try:
        hints = typing.get_type_hints(step_class.__init__)
    except Exception:  # noqa: BLE001 - unresolvable hints: fall back to no type checks
        hints = {}
    accepted = {name: p for name, p in signature.parameters.items() if name != "self"}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    resolved: dict[str, Any] = {}
    for name, value in params.items():
        parameter = accepted.get(name)
        if parameter is None or parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            if takes_any:
                resolved[name] = value
                continue
            names = [n for n, p in accepted.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(name, f"unknown parameter.{hint} Accepted: {', '.join(names) or 'none'}")
        annotation = hints.get(name, parameter.annotation)
        if not matches(value, annotation):
            raise ParameterError(name, f"expected {_type_name(annotation)}, got {value!r} ({type(value).__name__})")
        resolved[name] = value
    for name, parameter in accepted.items():
        if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if name in resolved:
            continue
        if parameter.default is inspect.Parameter.empty:
            raise ParameterError(name, "required parameter is missing")
        resolved[name] = parameter.default
    return resolved


def describe_params(step_class: type[Step]) -> list[tuple[str, str, str]]:
    """(name, type, default) of each parameter, for `tamis steps`."""
    signature = inspect.signature(step_class.__init__)
    try:
        hints = typing.get_type_hints(step_class.__init__)
    except Exception:  # noqa: BLE001
        hints = {}
    rows = []
    for name, parameter in signature.parameters.items():
        if name == "self" or parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        annotation = hints.get(name, parameter.annotation)
        type_text = "" if annotation is inspect.Parameter.empty else _type_name(annotation)
        default = "(required)" if parameter.default is inspect.Parameter.empty else repr(parameter.default)
        rows.append((name, type_text, default))
    return rows
