"""Registries of small named components (combiners, forget objectives, lr rules, metrics).

Components are chosen by registered name only, never by import path. An unknown name
says "did you mean …?" and lists every valid one; registering a name twice is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or duplicate component name, or bad parameters for a component."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def did_you_mean(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            setattr(obj, "registered_name", name)
            return obj

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, self.names())} "
                f"Available: {', '.join(self.names())}"
            ) from None

    def build(self, name: str, **params: Any) -> Any:
        """Instantiate a registered dataclass component, naming any bad parameter."""
        cls = self.get(name)
        if dataclasses.is_dataclass(cls):
            fields = {f.name for f in dataclasses.fields(cls) if f.init}
            unknown = sorted(set(params) - fields)
            if unknown:
                hints = "".join(did_you_mean(u, sorted(fields)) for u in unknown)
                raise RegistryError(
                    f"{self.kind} {name!r} has no parameter {', '.join(map(repr, unknown))}.{hints} "
                    f"Its parameters: {', '.join(sorted(fields)) or '(none)'}"
                )
        try:
            return cls(**params)  # type: ignore[operator]
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{self.kind} {name!r}: {exc}") from None

    def param_names(self, name: str) -> list[str]:
        cls = self.get(name)
        if dataclasses.is_dataclass(cls):
            return [f.name for f in dataclasses.fields(cls) if f.init]
        return []
