"""How long keys live, read from the environment (paykit.settings)."""

from __future__ import annotations

from dataclasses import dataclass

from paykit.settings import SettingsError, env_field

DEFAULT_TTL_S = 24 * 60 * 60.0
DEFAULT_IN_PROGRESS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class IdempotencySettings:
    """Load with `paykit.settings.load_settings(IdempotencySettings)`, or give a service's
    own settings the same two variables and build the interceptor from those."""

    ttl_s: float = env_field(
        "IDEMPOTENCY_TTL_S",
        default=DEFAULT_TTL_S,
        help="seconds a completed idempotency key answers repeats of its request",
    )
    in_progress_timeout_s: float = env_field(
        "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S",
        default=DEFAULT_IN_PROGRESS_TIMEOUT_S,
        help="seconds a running call holds its key before a repeat may take it over",
    )

    def __post_init__(self) -> None:
        # Fail at start with the variable's name (STYLE rule 7), not at the first call.
        errors = [
            f"{name} must be positive, got {value}"
            for name, value in (
                ("IDEMPOTENCY_TTL_S", self.ttl_s),
                ("IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S", self.in_progress_timeout_s),
            )
            if not value > 0
        ]
        if errors:
            raise SettingsError(errors, type(self).__qualname__)
