"""Named registries of classes (pipeline steps, proxy-model evaluators): one mechanism for every kind.

A name is what users write in YAML files, so an unknown one must fail with the closest known name and the
list of all of them; a name taken twice by two different classes is a programming error.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class UnknownNameError(KeyError):
    """A name nothing is registered under; the message suggests the closest known name."""

    kind = "name"

    def __init__(self, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {self.kind} {name!r}{hint} (available: {', '.join(sorted(known))})")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """Classes by name. `load` imports the built-ins the first time the registry is read."""

    def __init__(self, kind: str, base: type, name_attribute: str, error: type[UnknownNameError],
                 load: Callable[[], None]):
        self.kind = kind
        self.base = base
        self.name_attribute = name_attribute
        self.error = error
        self._load = load
        self._loaded = False
        self._classes: dict[str, T] = {}

    def register(self, name: str, cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{self.kind} {name!r} must be a {self.base.__name__} subclass, got {cls!r}")
        existing = self._classes.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"{self.kind} name {name!r} is taken by {existing.__module__}.{existing.__qualname__}")
        setattr(cls, self.name_attribute, name)
        self._classes[name] = cls
        return cls

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._load()

    def get(self, name: str) -> T:
        self._ensure_loaded()
        try:
            return self._classes[name]
        except KeyError:
            raise self.error(name, list(self._classes)) from None

    def all(self) -> dict[str, T]:
        self._ensure_loaded()
        return dict(sorted(self._classes.items()))
