"""Prefixed, time-sortable, shard-carrying identifiers.

An id looks like ``pay_01JD5Q8W3K7M2N4P6R8T0V2X4Z``: a kind prefix (see
:class:`IdKind`), an underscore, and a 26-character body.

Body layout (128 bits, most significant first)::

    | 48 bits: Unix time in ms | 10 bits: shard 0..1023 | 70 bits: random |

The 128-bit integer is written as 26 characters of Crockford base32
(alphabet ``0123456789ABCDEFGHJKMNPQRSTVWXYZ``, uppercase, no padding). 26
characters hold 130 bits, so the two leading bits are always zero and the first
character is always ``0``-``7``. Because the encoding is fixed width and the
alphabet is in ASCII order, comparing two ids of one kind as strings compares
their integers, i.e. first by time, then by shard, then by the random part.
Parsing is strict: only the canonical uppercase alphabet is accepted (no
lowercase, no ``I``/``L``/``O``/``U`` substitutions), so that one id has exactly
one spelling and string equality is id equality.

Ordering guarantees:

* an id created in a later millisecond sorts after one created in an earlier
  millisecond (given a clock that does not go backwards between processes);
* within one process and one shard, successive ids are strictly increasing, even
  within the same millisecond and even if the wall clock steps backwards: when
  the time has not advanced past the previous id's, the previous random part is
  incremented by a random step of 1..2**32 (so the next id is not guessable)
  instead of drawing a new one. Generation is serialised by a lock and is
  thread-safe.

Random bits come from :mod:`secrets`.

Deterministic ids (:func:`deterministic_id`) share the prefix and the body
format but have **time bits = 0** and a random part taken from SHA-256 of the
natural key. They exist for deduplication (the same key always yields the same
id) and are *not* time-sortable; they all sort before generated ids and can be
recognised by ``ParsedId.is_deterministic``.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BODY_LENGTH",
    "MAX_SHARD",
    "IdGenerator",
    "IdKind",
    "InvalidIdError",
    "ParsedId",
    "deterministic_id",
    "is_valid_id",
    "new_id",
    "parse_id",
    "shard_of",
]

TIMESTAMP_BITS: Final[int] = 48
SHARD_BITS: Final[int] = 10
RANDOM_BITS: Final[int] = 70
MAX_SHARD: Final[int] = (1 << SHARD_BITS) - 1
MAX_TIMESTAMP_MS: Final[int] = (1 << TIMESTAMP_BITS) - 1
BODY_LENGTH: Final[int] = 26

_RANDOM_LIMIT: Final[int] = 1 << RANDOM_BITS
_RANDOM_STEP_BITS: Final[int] = 32
_SHARD_SHIFT: Final[int] = RANDOM_BITS
_TIMESTAMP_SHIFT: Final[int] = RANDOM_BITS + SHARD_BITS
_ALPHABET: Final[str] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE: Final[dict[str, int]] = {char: index for index, char in enumerate(_ALPHABET)}
_MAX_FIRST_CHAR: Final[str] = "7"  # 130 encoded bits - 128 id bits = 2 leading zero bits
_DETERMINISTIC_DOMAIN: Final[bytes] = b"paykit.ids/deterministic/v1\x00"
_SHOWN_TEXT: Final[int] = 60


class IdKind(enum.StrEnum):
    """What an id identifies; the value is the id's prefix."""

    ORDER = "ord"
    PAYMENT = "pay"
    REFUND = "rfd"
    EVENT = "evt"
    NOTIFICATION = "ntf"
    CHANNEL_REQUEST = "chr"
    DELIVERY = "dlv"
    JOURNAL_ENTRY = "jnl"
    IDEMPOTENCY = "idm"
    STATEMENT = "stm"
    DISCREPANCY = "dsc"
    SETTLEMENT = "stl"


class InvalidIdError(ValueError):
    """A string that is not a well-formed id (of the expected kind)."""


@dataclass(frozen=True, slots=True)
class ParsedId:
    """The decoded parts of an id."""

    kind: IdKind
    timestamp_ms: int
    shard: int
    raw: str

    @property
    def is_deterministic(self) -> bool:
        """True for ids made by :func:`deterministic_id` (time bits are zero)."""
        return self.timestamp_ms == 0


def _coerce_kind(kind: IdKind | str) -> IdKind:
    if isinstance(kind, IdKind):
        return kind
    try:
        return IdKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in IdKind)
        raise ValueError(f"unknown id kind {kind!r} (known prefixes: {known})") from None


def _check_shard(shard: int) -> None:
    if not isinstance(shard, int) or isinstance(shard, bool):
        raise TypeError(f"shard must be an int, got {type(shard).__name__}")
    if not 0 <= shard <= MAX_SHARD:
        raise ValueError(f"shard {shard} is outside 0..{MAX_SHARD}")


def _encode(value: int) -> str:
    chars = []
    for _ in range(BODY_LENGTH):
        chars.append(_ALPHABET[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def _format(kind: IdKind, timestamp_ms: int, shard: int, random_part: int) -> str:
    value = (timestamp_ms << _TIMESTAMP_SHIFT) | (shard << _SHARD_SHIFT) | random_part
    return f"{kind.value}_{_encode(value)}"


def _system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class IdGenerator:
    """Monotonic id source; the module-level :func:`new_id` uses a shared instance.

    ``clock_ms`` and ``random_bits`` are injectable for tests; the defaults are the
    system wall clock and :func:`secrets.randbits`.
    """

    def __init__(
        self,
        *,
        clock_ms: Callable[[], int] = _system_clock_ms,
        random_bits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock_ms = clock_ms
        self._random_bits = random_bits
        self._lock = threading.Lock()
        self._last: dict[int, tuple[int, int]] = {}  # shard -> (timestamp_ms, random part)

    def new_id(self, kind: IdKind | str, shard: int = 0) -> str:
        """A new id of ``kind`` on ``shard``; strictly greater than the previous one
        this generator made for the same shard."""
        id_kind = _coerce_kind(kind)
        _check_shard(shard)
        with self._lock:
            now = self._clock_ms()
            if not 0 <= now <= MAX_TIMESTAMP_MS:
                raise ValueError(f"clock returned {now} ms, outside the 48-bit id range")
            last = self._last.get(shard)
            if last is None or now > last[0]:
                timestamp_ms, random_part = now, self._random_bits(RANDOM_BITS)
            else:
                # Time did not advance (same ms, or the clock stepped back):
                # stay on the previous timestamp and move the random part forward.
                timestamp_ms = last[0]
                random_part = last[1] + 1 + self._random_bits(_RANDOM_STEP_BITS)
                if random_part >= _RANDOM_LIMIT:
                    # Random space of this ms exhausted: borrow the next millisecond.
                    timestamp_ms += 1
                    random_part = self._random_bits(RANDOM_BITS)
                    if timestamp_ms > MAX_TIMESTAMP_MS:
                        raise OverflowError("id timestamp space exhausted")
            self._last[shard] = (timestamp_ms, random_part)
        return _format(id_kind, timestamp_ms, shard, random_part)

    def _after_fork_in_child(self) -> None:
        # A lock held by another thread at fork time would never be released in the child.
        self._lock = threading.Lock()


_default_generator: Final[IdGenerator] = IdGenerator()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_default_generator._after_fork_in_child)


def new_id(kind: IdKind | str, shard: int = 0) -> str:
    """A new time-sortable id, e.g. ``new_id(IdKind.PAYMENT)`` -> ``"pay_01JD..."``.

    Raises:
        ValueError: unknown ``kind`` or ``shard`` outside ``0..1023``.
    """
    return _default_generator.new_id(kind, shard)


def deterministic_id(kind: IdKind | str, *parts: str, shard: int = 0) -> str:
    """A stable id derived from a natural key, e.g. a channel's notification id.

    The same ``kind``, ``parts`` and ``shard`` always give the same id. The layout
    is that of :func:`new_id` with the time bits set to 0 and the random bits
    taken from SHA-256 over the kind and the length-prefixed UTF-8 parts (so
    ``("ab", "c")`` and ``("a", "bc")`` differ). These ids are for deduplication
    only and are **not** time-sortable.

    Raises:
        ValueError: no parts, unknown ``kind`` or bad ``shard``.
        TypeError: a part is not a ``str``.
    """
    id_kind = _coerce_kind(kind)
    _check_shard(shard)
    if not parts:
        raise ValueError("deterministic_id needs at least one key part")
    digest = hashlib.sha256()
    digest.update(_DETERMINISTIC_DOMAIN)
    digest.update(id_kind.value.encode("ascii") + b"\x00")
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"deterministic_id key parts must be str, got {type(part).__name__}")
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    random_part = int.from_bytes(digest.digest()[:9], "big") >> (72 - RANDOM_BITS)
    return _format(id_kind, 0, shard, random_part)


def _show(value: str) -> str:
    if len(value) > _SHOWN_TEXT:
        return repr(value[:_SHOWN_TEXT]) + "..."
    return repr(value)


def parse_id(value: str, expected: IdKind | str | None = None) -> ParsedId:
    """Decode and validate an id; with ``expected``, also check its kind.

    Raises:
        InvalidIdError: not a str, no/unknown/unexpected prefix, wrong body length,
            characters outside uppercase Crockford base32, or a body over 128 bits.
        ValueError: ``expected`` itself is not a known kind.
    """
    expected_kind = None if expected is None else _coerce_kind(expected)
    if not isinstance(value, str):
        raise InvalidIdError(f"id must be a str, got {type(value).__name__}")
    prefix, separator, body = value.partition("_")
    if not separator:
        raise InvalidIdError(f"id {_show(value)} has no '<prefix>_' part")
    try:
        kind = IdKind(prefix)
    except ValueError:
        known = ", ".join(k.value for k in IdKind)
        raise InvalidIdError(
            f"id {_show(value)} has unknown prefix {_show(prefix)} (known: {known})"
        ) from None
    if expected_kind is not None and kind is not expected_kind:
        raise InvalidIdError(
            f"id {_show(value)} is a {kind.name} id ({kind.value!r}), "
            f"expected a {expected_kind.name} id ({expected_kind.value!r})"
        )
    if len(body) != BODY_LENGTH:
        raise InvalidIdError(
            f"id {_show(value)} has a body of {len(body)} characters, expected {BODY_LENGTH}"
        )
    number = 0
    for position, char in enumerate(body):
        digit = _DECODE.get(char)
        if digit is None:
            raise InvalidIdError(
                f"id {_show(value)} has invalid character {char!r} at body position "
                f"{position} (ids use uppercase Crockford base32: {_ALPHABET})"
            )
        number = (number << 5) | digit
    if body[0] > _MAX_FIRST_CHAR:
        raise InvalidIdError(
            f"id {_show(value)} does not fit in 128 bits (first body character must be 0-{_MAX_FIRST_CHAR})"
        )
    return ParsedId(
        kind=kind,
        timestamp_ms=number >> _TIMESTAMP_SHIFT,
        shard=(number >> _SHARD_SHIFT) & MAX_SHARD,
        raw=value,
    )


def shard_of(value: str) -> int:
    """The shard encoded in an id. Raises :class:`InvalidIdError` if malformed."""
    return parse_id(value).shard


def is_valid_id(value: object, kind: IdKind | str | None = None) -> bool:
    """True if ``value`` is a well-formed id (of ``kind``, when given)."""
    if not isinstance(value, str):
        return False
    try:
        parse_id(value, kind)
    except InvalidIdError:
        return False
    return True
