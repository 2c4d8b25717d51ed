"""Options of a model: the readings where the paper is silent, recorded in every checkpoint.

Each model file declares its own frozen dataclass of options on top of :class:`ModelOptions`,
which checks the values, turns them into plain values for a checkpoint and back, and resolves
what a model's constructor was given.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

O = TypeVar("O", bound="ModelOptions")


@dataclass(frozen=True)
class ModelOptions:
    """Base of every model's options: named choices checked against ``ALLOWED``, switches as bools."""

    ALLOWED: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.ALLOWED and value not in self.ALLOWED[f.name]:
                raise ValueError(f"option {f.name}={value!r} is not allowed: choose one of {self.ALLOWED[f.name]}")
            if isinstance(f.default, bool) and not isinstance(value, bool):
                raise ValueError(f"option {f.name} must be True or False, got {value!r}")
            if isinstance(f.default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                 or not math.isfinite(value)):
                raise ValueError(f"option {f.name} must be a finite number, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls: type[O], values: dict[str, Any]) -> O:
        """Inverse of :meth:`to_dict`; unknown names raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)} for {cls.__name__}: allowed are {sorted(known)}")
        return cls(**values)

    @classmethod
    def resolve(cls: type[O], options: "ModelOptions | dict[str, Any] | None", model: str) -> O:
        """The options a constructor of ``model`` was given: these, from plain values, or the defaults.

        Options of another class (a subclass included) raise ``ValueError``: a checkpoint's
        options must be read by the model that wrote them.
        """
        if isinstance(options, dict):
            options = cls.from_dict(options)
        resolved = options if options is not None else cls()
        if type(resolved) is not cls:
            raise ValueError(f"{model} takes {cls.__name__}, got {type(resolved).__name__}")
        return resolved


def switch_off(available: Any, names: tuple[str, ...]) -> set[str]:
    """The set of nets ``names`` to switch off, checked against the ``available`` ones."""
    unknown = set(names) - set(available)
    if unknown:
        raise ValueError(f"unknown nets {sorted(unknown)}: allowed are {sorted(available)}")
    return set(names)
