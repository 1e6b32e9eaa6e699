"""Where a call's idempotency key comes from, and what makes two requests "the same".

Pure functions over the request and its metadata; no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from paykit.errors import InvalidArgument
from paykit.idempotency.schema import MAX_KEY_LENGTH

METADATA_KEY = "idempotency-key"
# The field name errors report when the key came from metadata: one name for
# the concept whatever carried it, so clients match on one string.
KEY_FIELD = "idempotency_key"


@dataclass(frozen=True)
class KeyRule:
    """How one method receives its key.

    `metadata_key` is a gRPC metadata name (lowercase; gRPC lowercases names on
    the wire); `request_field` a top-level string field of the request. Either
    or both may be given; when both carry a key they must agree. `required`
    refuses a call without a key (INVALID_ARGUMENT); otherwise such a call
    runs unprotected.
    """

    metadata_key: str | None = METADATA_KEY
    request_field: str | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.metadata_key is None and self.request_field is None:
            raise ValueError("KeyRule needs a metadata_key, a request_field, or both")
        if self.metadata_key is not None and (
            self.metadata_key != self.metadata_key.lower() or self.metadata_key.endswith("-bin")
        ):
            raise ValueError(f"metadata_key {self.metadata_key!r} must be a lowercase, non -bin name")

    @property
    def field(self) -> str:
        """The name errors point at."""
        return self.request_field or KEY_FIELD


def keyed_methods(methods: Iterable[str], rule: KeyRule) -> dict[str, KeyRule]:
    """One rule for several methods: `keyed_methods([create_order, pay_order], KeyRule())`."""
    return dict.fromkeys(methods, rule)


def full_method(service: ServiceDescriptor, method: str) -> str:
    """'/package.Service/Method', the name an interceptor sees; refuses a method the service lacks."""
    if method not in service.methods_by_name:
        raise ValueError(f"{service.full_name} has no method {method!r}")
    return f"/{service.full_name}/{method}"


def key_of(rule: KeyRule, request: Any, metadata: Iterable[tuple[str, Any]]) -> str | None:
    """The call's key, or None when it carries none and none is required.

    Raises InvalidArgument naming the key's field when the key is required
    but missing, too long, not printable, or given twice with two values.
    """
    found: set[str] = set()
    if rule.metadata_key is not None:
        found.update(v for k, v in metadata if k == rule.metadata_key and isinstance(v, str) and v)
    if rule.request_field is not None:
        value = _request_field(request, rule.request_field)
        if value:
            found.add(value)
    if len(found) > 1:
        raise InvalidArgument(rule.field, f"{_sources(rule, 'and')} carry different keys; send one key")
    if not found:
        if rule.required:
            raise InvalidArgument(
                rule.field, f"is required for this call (send it as {_sources(rule, 'or')})"
            )
        return None
    key = found.pop()
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument(rule.field, f"must be at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    # NUL cannot be stored in a Postgres text column; other control characters
    # are a client bug more likely than a deliberate key.
    if not key.isprintable():
        raise InvalidArgument(rule.field, "must contain printable characters only")
    return key


def request_hash(request: Any) -> bytes:
    """sha256 of the request's deterministic serialization.

    Hashing the parsed message rather than the bytes on the wire makes the
    hash depend on content only: two clients encoding the same request with
    fields in another order (legal protobuf) still match.
    """
    if isinstance(request, Message):
        payload = request.SerializeToString(deterministic=True)
    elif isinstance(request, bytes):  # a method registered without a deserializer
        payload = request
    else:
        raise TypeError(f"cannot hash a request of type {type(request).__name__}")
    return hashlib.sha256(payload).digest()


def _request_field(request: Any, name: str) -> str:
    if not isinstance(request, Message) or name not in request.DESCRIPTOR.fields_by_name:
        # A wiring mistake (rule for a field the message lacks), not a client error.
        raise TypeError(f"{type(request).__name__} has no field {name!r} to read an idempotency key from")
    value = getattr(request, name)
    if not isinstance(value, str):
        raise TypeError(f"{type(request).__name__}.{name} is not a string field")
    return value


def _sources(rule: KeyRule, joiner: str) -> str:
    names = []
    if rule.request_field is not None:
        names.append(f"the {rule.request_field} field")
    if rule.metadata_key is not None:
        names.append(f"the {rule.metadata_key} metadata")
    return f" {joiner} ".join(names)
