"""Strict request models without pydantic: a small declarative base for the wire models.

Importing pydantic and building its validators was the largest removable part of the issue
function's cold start (issue 13). The requests need little of it: JSON objects of strings,
integers, one nested object, a list of objects and a literal. This module validates exactly
those, strictly, with pydantic's semantics and messages, so that the error codes and messages the
handlers derive from them are unchanged (``tests/test_wire.py`` compares both on a corpus):

- ``extra="forbid"``: an unknown key is an ``extra_forbidden`` error (after the fields' errors).
- strict types: a string must be ``str``, an integer ``int`` and not ``bool``; no coercion.
- per field, the first failing check only: type, then length (``min_length``/``max_length``, in
  characters), then ``pattern`` (the whole string must match, like pydantic's Rust regex), then
  ``ge``/``le``.
- instances are frozen; :meth:`WireModel.model_dump` gives plain dicts and lists.

Declare a model like a pydantic one (annotations are read with :func:`typing.get_type_hints`)::

    class SanModel(WireModel):
        type: StrictStr
        value: StrictStr = Field(max_length=2048)
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

StrictStr = str
StrictInt = int
_MISSING: Any = object()


def Field(
    default: Any = _MISSING,
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    ge: int | None = None,
    le: int | None = None,
) -> Any:
    """A field's default and constraints (the subset of ``pydantic.Field`` the models use); typed
    ``Any`` so that ``name: StrictStr = Field(...)`` type-checks as in pydantic."""
    return FieldInfo(default, min_length=min_length, max_length=max_length, pattern=pattern, ge=ge, le=le)


class FieldInfo:
    """What :func:`Field` declares."""

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        ge: int | None = None,
        le: int | None = None,
    ) -> None:
        self.default = default
        self.min_length, self.max_length, self.pattern, self.ge, self.le = min_length, max_length, pattern, ge, le
        self._compiled = re.compile(pattern) if pattern is not None else None

    def check(self, value: Any) -> tuple[str, str] | None:
        """The first constraint ``value`` breaks, as (pydantic error type, message), or None."""
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                plural = "" if self.min_length == 1 else "s"
                return "string_too_short", f"String should have at least {self.min_length} character{plural}"
            if self.max_length is not None and len(value) > self.max_length:
                plural = "" if self.max_length == 1 else "s"
                return "string_too_long", f"String should have at most {self.max_length} character{plural}"
            if self._compiled is not None and not self._compiled.fullmatch(value):
                return "string_pattern_mismatch", f"String should match pattern '{self.pattern}'"
        elif isinstance(value, int):
            if self.ge is not None and value < self.ge:
                return "greater_than_equal", f"Input should be greater than or equal to {self.ge}"
            if self.le is not None and value > self.le:
                return "less_than_equal", f"Input should be less than or equal to {self.le}"
        return None


class WireError(ValueError):
    """A request that does not validate; :meth:`errors` lists ``{"type", "loc", "msg"}`` dicts in
    pydantic's order (each field in declaration order, then unknown keys in input order)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return list(self._errors)


class WireModel:
    """Base of the strict, frozen wire models. ``Model.model_validate(mapping)`` or
    ``Model(**fields)`` validates; :class:`WireError` lists what is wrong."""

    _fields: ClassVar[list[tuple[str, Any, FieldInfo]] | None] = None

    def __init__(self, **data: Any) -> None:
        errors: list[dict[str, Any]] = []
        values = self._validate_into(data, (), errors)
        if errors:
            raise WireError(errors)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """Validate a mapping (a parsed JSON object); raises :class:`WireError`."""
        if not isinstance(data, Mapping):
            raise WireError([{"type": "model_type", "loc": (), "msg": cls._type_message()}])
        return cls(**data)

    @classmethod
    def _type_message(cls) -> str:
        return f"Input should be a valid dictionary or instance of {cls.__name__}"

    @classmethod
    def _declared(cls) -> list[tuple[str, Any, FieldInfo]]:
        fields = cls.__dict__.get("_fields")
        if fields is None:
            hints = typing.get_type_hints(cls)  # each class's annotations in its own module
            fields = []
            for name, hint in hints.items():
                if name.startswith("_") or get_origin(hint) is ClassVar:
                    continue
                raw = cls.__dict__.get(name, _MISSING)
                fields.append((name, hint, raw if isinstance(raw, FieldInfo) else FieldInfo(raw)))
            cls._fields = fields
        return fields

    @classmethod
    def _validate_into(
        cls, data: Mapping[str, Any], loc: tuple[Any, ...], errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        fields = cls._declared()
        for name, hint, field in fields:
            if name not in data:
                if field.default is _MISSING:
                    errors.append({"type": "missing", "loc": (*loc, name), "msg": "Field required"})
                else:
                    values[name] = field.default
                continue
            values[name] = _validate(hint, field, data[name], (*loc, name), errors)
        known = {name for name, _, _ in fields}
        for key in data:
            if key not in known:
                errors.append({"type": "extra_forbidden", "loc": (*loc, key), "msg": "Extra inputs are not permitted"})
        return values

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.model_dump() == other.model_dump()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name, _, _ in self._declared())
        return f"{type(self).__name__}({shown})"

    def model_dump(self, *, exclude: set[str] | None = None, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as plain values (nested models as dicts), in declaration order."""
        dumped = {}
        for name, _, _ in self._declared():
            if exclude and name in exclude:
                continue
            value = _dump(getattr(self, name), exclude_none)
            if exclude_none and value is None:
                continue
            dumped[name] = value
        return dumped


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, WireModel):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, list):
        return [_dump(item, exclude_none) for item in value]
    return value


def _literal_message(options: tuple[Any, ...]) -> str:
    shown = [repr(option) for option in options]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return f"Input should be {listed}"


def _validate(hint: Any, field: FieldInfo, value: Any, loc: tuple[Any, ...], errors: list[dict[str, Any]]) -> Any:
    """Validate ``value`` against a field's type ``hint`` and constraints; append errors, return the value."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if value is None and len(options) < len(get_args(hint)):
            return None
        (hint,) = options  # the models use "X | None" only
        origin = get_origin(hint)
    problem: tuple[str, str] | None = None
    if origin is Literal:
        if not any(value == option and type(value) is type(option) for option in get_args(hint)):
            problem = ("literal_error", _literal_message(get_args(hint)))
    elif origin is list:
        if not isinstance(value, list):
            problem = ("list_type", "Input should be a valid list")
        else:
            (item_hint,) = get_args(hint)
            return [_validate(item_hint, FieldInfo(), item, (*loc, index), errors) for index, item in enumerate(value)]
    elif isinstance(hint, type) and issubclass(hint, WireModel):
        if not isinstance(value, Mapping):
            problem = ("model_type", hint._type_message())
        else:
            before = len(errors)
            values = hint._validate_into(value, loc, errors)
            if len(errors) > before:
                return None
            instance = object.__new__(hint)
            for name, item in values.items():
                object.__setattr__(instance, name, item)
            return instance
    elif hint is str:
        problem = None if isinstance(value, str) else ("string_type", "Input should be a valid string")
    elif hint is int:
        valid = isinstance(value, int) and not isinstance(value, bool)
        problem = None if valid else ("int_type", "Input should be a valid integer")
    else:  # pragma: no cover - a declaration this module does not support
        raise TypeError(f"unsupported wire field type {hint!r} at {'.'.join(map(str, loc))}")
    if problem is None:
        problem = field.check(value)
    if problem is not None:
        errors.append({"type": problem[0], "loc": loc, "msg": problem[1]})
    return value
