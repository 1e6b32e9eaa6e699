"""gRPC bootstrap: aio servers with health, reflection, tracing and error mapping; clients with deadlines."""

from paykit.grpckit.client import DEFAULT_DEADLINE_S, open_channel
from paykit.grpckit.server import create_server

__all__ = ["DEFAULT_DEADLINE_S", "create_server", "open_channel"]
