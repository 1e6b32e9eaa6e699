"""Domain errors with a meaning, free of any transport.

The domain raises these; the gRPC edge (paykit.grpckit) maps each class to
one status code in one place, so a caller always gets a status with a
field-level message and never a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ErrorInfo:
    """Why, in a word a program can match on (e.g. "CHANNEL_RATE_LIMITED"), with raw details
    (e.g. the channel's own code); the gRPC edge sends it as google.rpc.ErrorInfo."""

    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str, *, info: ErrorInfo | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.info = info


class InvalidArgument(DomainError):
    """A request field is malformed; `field` is its path, e.g. "amount.minor"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    """The thing exists with other content. `field`, when given, names the request
    field to blame (e.g. "idempotency_key"); the gRPC edge reports it as a field violation."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FailedPrecondition(DomainError):
    """The request is well formed but the current state refuses it (an illegal transition)."""


class Unavailable(DomainError):
    """A dependency (a channel, another service) did not answer; safe to retry later."""


class ResourceExhausted(DomainError):
    """A limit was reached (e.g. a channel's rate limit) and nothing was done; retry later."""


class InvariantViolation(Exception):
    """A condition that must always hold did not: a bug, never a user error."""


def invariant(condition: bool, message: str) -> None:
    """Check an invariant in production code (`assert` vanishes under -O)."""
    if not condition:
        raise InvariantViolation(message)
