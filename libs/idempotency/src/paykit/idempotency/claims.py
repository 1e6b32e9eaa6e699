"""What a call does when its key is already in the table: a pure decision, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import assert_never

from paykit.idempotency.schema import KeyState


class Decision(enum.Enum):
    TAKE_OVER = "take_over"  # claim the row and run the handler
    REPLAY = "replay"  # answer with the stored response bytes
    CONFLICT = "conflict"  # the key belongs to another request: ALREADY_EXISTS
    BUSY = "busy"  # the same request is running elsewhere: wait for it


def decide(state: KeyState, same_request: bool, expired: bool, stale: bool) -> Decision:
    """The rule for an existing row.

    `expired`: expires_at has passed, so the key may be used again for any
    request. `stale`: an IN_PROGRESS claim's claimed_until has passed, so its
    claimant is taken to be dead. Expiry alone never ends a live claim: with a
    TTL shorter than the in-progress timeout that would run the handler twice
    at once.
    """
    match state:
        case KeyState.COMPLETED:
            if expired:
                return Decision.TAKE_OVER
            return Decision.REPLAY if same_request else Decision.CONFLICT
        case KeyState.IN_PROGRESS:
            if stale and (same_request or expired):
                return Decision.TAKE_OVER
            return Decision.BUSY if same_request else Decision.CONFLICT
        case _:
            assert_never(state)


# Outcomes of one claim attempt, as the interceptor sees them.


@dataclass(frozen=True)
class Claimed:
    """This call holds the key; `token` proves it when completing or releasing."""

    token: str
    taken_over: bool


@dataclass(frozen=True)
class Replay:
    response: bytes


@dataclass(frozen=True)
class Conflict:
    pass


@dataclass(frozen=True)
class Busy:
    pass


ClaimOutcome = Claimed | Replay | Conflict | Busy
