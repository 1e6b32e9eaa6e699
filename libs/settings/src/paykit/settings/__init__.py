"""Typed settings loaded from environment variables, failing fast by variable name.

Declare a frozen dataclass whose fields use :func:`env_field`, then load it::

    @dataclass(frozen=True)
    class OrderSettings:
        database_url: str = env_field(
            "ORDER_DATABASE_URL", help="the order service's PostgreSQL URL", secret=True
        )
        grpc_port: int = env_field("ORDER_GRPC_PORT", default=50051)
        kafka_brokers: tuple[str, ...] = env_field("KAFKA_BROKERS", default=("localhost:9092",))

    settings = load_settings(OrderSettings)

Supported field types and how a variable's text is read:

* ``str``: taken verbatim.
* ``int``: optional sign and ASCII digits (``"8080"``, ``"-1"``); nothing else.
* ``float``: a finite decimal/scientific number (for timeouts and the like;
  never for money). ``nan``/``inf`` are rejected.
* ``bool``: ``1/true/yes/on`` or ``0/false/no/off``, case-insensitive.
* ``pathlib.Path``.
* ``tuple[X, ...]`` with ``X`` one of the scalar types above: comma-separated,
  items stripped of surrounding whitespace, empty items dropped.
* ``X | None`` (or ``Optional[X]``): optional; unset means the field's default,
  or ``None`` if it has none.

Surrounding whitespace is ignored for ``int``, ``float`` and ``bool``. A variable
that is set to the empty string counts as **unset** (so it falls back to the
default, or is reported as required): deployment templates often render an
absent value as ``""``.

All problems are collected and raised together as one :class:`SettingsError`.
Values of ``secret`` fields never appear in error messages or in :func:`describe`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = [
    "MISSING",
    "SettingsError",
    "describe",
    "env_field",
    "load_settings",
]

T = TypeVar("T")

MISSING: Final = dataclasses.MISSING
"""Sentinel: the field has no default, so its variable is required."""

_META_KEY: Final[str] = "paykit.settings"
_MASK: Final[str] = "***"
_TRUE: Final[frozenset[str]] = frozenset({"1", "true", "yes", "on"})
_FALSE: Final[frozenset[str]] = frozenset({"0", "false", "no", "off"})
_INT_SHAPE: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_SHAPE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SHOWN_TEXT: Final[int] = 60


class SettingsError(Exception):
    """One or more environment variables are missing or malformed.

    ``errors`` holds one message per problem, each starting with the variable name.
    """

    def __init__(self, errors: list[str] | tuple[str, ...], settings_name: str = "") -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        where = f" for {settings_name}" if settings_name else ""
        if len(self.errors) == 1:
            message = self.errors[0]
        else:
            listed = "\n".join(f"  - {error}" for error in self.errors)
            message = f"{len(self.errors)} invalid settings{where}:\n{listed}"
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class _EnvMeta:
    name: str
    help: str
    secret: bool


def env_field(
    name: str,
    *,
    default: Any = MISSING,
    help: str = "",
    secret: bool = False,
) -> Any:
    """A dataclass field read from the environment variable ``name``.

    Without ``default`` the variable is required (unless the type is ``X | None``).
    ``help`` is quoted in the "is required" message. ``secret`` masks the value
    in :func:`describe` and keeps it out of error messages. Fields are keyword-only,
    so required and defaulted fields can be declared in any order.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("env_field needs a non-empty environment variable name")
    metadata = {_META_KEY: _EnvMeta(name=name, help=help, secret=secret)}
    if default is MISSING:
        return dataclasses.field(metadata=metadata, kw_only=True)
    return dataclasses.field(default=default, metadata=metadata, kw_only=True)


# -- parsing of single values --------------------------------------------------------


class _BadValue(Exception):
    """Raised by converters; the message completes "NAME <message>"."""


def _parse_str(raw: str) -> str:
    return raw


def _parse_int(raw: str) -> int:
    text = raw.strip()
    if not _INT_SHAPE.fullmatch(text):
        raise _BadValue("must be an integer")
    return int(text)


def _parse_float(raw: str) -> float:
    text = raw.strip()
    if not _FLOAT_SHAPE.fullmatch(text):
        raise _BadValue("must be a number")
    value = float(text)
    if not math.isfinite(value):
        raise _BadValue("must be a finite number")
    return value


def _parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _BadValue("must be a boolean (1/true/yes/on or 0/false/no/off)")


def _parse_path(raw: str) -> Path:
    return Path(raw)


_SCALARS: Final[dict[type, Callable[[str], Any]]] = {
    str: _parse_str,
    int: _parse_int,
    float: _parse_float,
    bool: _parse_bool,
    Path: _parse_path,
}


@dataclasses.dataclass(frozen=True)
class _Converter:
    parse: Callable[[str], Any]
    optional: bool


def _tuple_parser(item: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(raw: str) -> tuple[Any, ...]:
        values = []
        for position, piece in enumerate(p.strip() for p in raw.split(",")):
            if not piece:
                continue
            try:
                values.append(item(piece))
            except _BadValue as error:
                raise _BadValue(f"item {position + 1}: {error}") from None
        return tuple(values)

    return parse


def _converter_for(annotation: Any, where: str) -> _Converter:
    optional = False
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            raise TypeError(f"{where}: only 'X | None' unions are supported, got {annotation!r}")
        optional = True
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if annotation in _SCALARS:
        return _Converter(parse=_SCALARS[annotation], optional=optional)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS:
            return _Converter(parse=_tuple_parser(_SCALARS[args[0]]), optional=optional)
    supported = "str, int, float, bool, Path, tuple[X, ...] and X | None"
    raise TypeError(f"{where}: unsupported settings type {annotation!r} (supported: {supported})")


def _show(raw: str) -> str:
    if len(raw) > _SHOWN_TEXT:
        return repr(raw[:_SHOWN_TEXT]) + "..."
    return repr(raw)


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not MISSING or field.default_factory is not MISSING


# -- public entry points --------------------------------------------------------------


def load_settings(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from ``environ`` (default: ``os.environ``).

    Raises:
        SettingsError: listing every missing or malformed variable at once.
        TypeError: ``cls`` is not a dataclass, uses an unsupported field type, has a
            required field that does not use :func:`env_field`, or reuses a variable.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"load_settings needs a dataclass type, got {cls!r}")
    env: Mapping[str, str] = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)

    values: dict[str, Any] = {}
    errors: list[str] = []
    seen: dict[str, str] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        meta = field.metadata.get(_META_KEY)
        where = f"{cls.__qualname__}.{field.name}"
        if not isinstance(meta, _EnvMeta):
            if _has_default(field):
                continue
            raise TypeError(f"{where} has no default and does not use env_field()")
        if meta.name in seen:
            raise TypeError(f"{where} reuses variable {meta.name} (also {seen[meta.name]})")
        seen[meta.name] = where
        converter = _converter_for(hints[field.name], where)

        raw = env.get(meta.name)
        if raw is None or raw == "":
            if _has_default(field):
                continue
            if converter.optional:
                values[field.name] = None
                continue
            detail = f" ({meta.help})" if meta.help else ""
            errors.append(f"{meta.name} is required{detail}")
            continue
        try:
            values[field.name] = converter.parse(raw)
        except _BadValue as problem:
            shown = "" if meta.secret else f", got {_show(raw)}"
            errors.append(f"{meta.name} {problem}{shown}")

    if errors:
        raise SettingsError(errors, cls.__qualname__)
    return cls(**values)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_render(item) for item in value)
    return str(value)


def describe(settings: object) -> dict[str, str]:
    """Loggable view of loaded settings: ``{VARIABLE_NAME: value}``.

    Keys are the environment variable names (field names for fields not bound to a
    variable); ``secret`` fields are shown as ``"***"``; booleans as ``true``/``false``,
    tuples comma-joined, ``None`` as ``"None"``.
    """
    if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
        raise TypeError(f"describe needs a dataclass instance, got {settings!r}")
    described: dict[str, str] = {}
    for field in dataclasses.fields(settings):
        meta = field.metadata.get(_META_KEY)
        value = getattr(settings, field.name)
        if isinstance(meta, _EnvMeta):
            described[meta.name] = _MASK if meta.secret else _render(value)
        else:
            described[field.name] = _render(value)
    return described
