"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from paykit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "paykit"

_CODES: tuple[tuple[type[DomainError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def status_code_of(error: DomainError) -> grpc.StatusCode:
    for error_type, code in _CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def status_details(error: DomainError, code: grpc.StatusCode) -> bytes:
    """A google.rpc.Status; INVALID_ARGUMENT, and ALREADY_EXISTS when it names a field,
    carry a BadRequest naming the field; an error with `info` carries an ErrorInfo."""
    status = status_pb2.Status(code=code.value[0], message=error.message)
    violation: error_details_pb2.BadRequest.FieldViolation | None = None
    if isinstance(error, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.reason)
    elif isinstance(error, AlreadyExists) and error.field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
    if violation is not None:
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    if error.info is not None:
        status.details.add().Pack(
            error_details_pb2.ErrorInfo(
                reason=error.info.reason, domain=ERROR_DOMAIN, metadata=dict(error.info.metadata)
            )
        )
    serialized: bytes = status.SerializeToString()
    return serialized


def internal_status(reference: str) -> tuple[grpc.StatusCode, str]:
    return grpc.StatusCode.INTERNAL, f"internal error (reference {reference}); nothing was changed"


__all__ = ["STATUS_DETAILS_KEY", "code_pb2", "internal_status", "status_code_of", "status_details"]
