"""The matcher's knobs, each with its limit (checked at construction, not discovered mid-run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from paykit.errors import invariant
from paykit.money import BPS_PER_UNIT

MAX_TIME_TOLERANCE_S: Final[int] = 7 * 86_400
MAX_SUSPENSE_WINDOW_S: Final[int] = 6 * 3_600
MAX_SUSPENSE_DAYS: Final[int] = 30
MIN_MEMORY_LIMIT_MB: Final[int] = 256
MAX_THREADS: Final[int] = 256
SECONDS_PER_DAY: Final[int] = 86_400


@dataclass(frozen=True)
class MatchConfig:
    """Tolerances, the cut-off and suspense rules, and the engine's resource limits.

    amount_tolerance_minor / amount_tolerance_bps: a matched pair or group whose amounts
        differ by at most max(amount_tolerance_minor, |our amount| * bps / 10_000, rounded
        down) is MATCHED_WITH_TOLERANCE rather than AMOUNT_MISMATCH (either rule suffices).
    time_tolerance_s: in the passes that do not match on the channel's own transaction id
        (our id echoed, reference), the pair or group is formed only if all its records'
        occurred_at lie within this span. Not applied to the transaction-id pass (the
        channel's id is authoritative) nor to settlement batches (a batch spans its
        settlement period by definition).
    cutoff_offset_s: the cut-off of business day D is D+1 00:00 UTC plus this offset (Alipay
        and WeChat Pay close their bills at Beijing midnight: -28_800).
    suspense_window_s: an unmatched record whose occurred_at lies within this many seconds of
        its business day's cut-off, either side, goes to suspense instead of becoming
        CHANNEL_ONLY / INTERNAL_ONLY.
    suspense_max_days: a record still unmatched this many days after its business day is a
        discrepancy (1: it gets exactly one more day's run).
    memory_limit_mb / threads: DuckDB's memory_limit (it spills to the work directory
        beyond it) and worker threads (0: one per core).
    """

    amount_tolerance_minor: int = 1
    amount_tolerance_bps: int = 0
    time_tolerance_s: int = 3_600
    cutoff_offset_s: int = 0
    suspense_window_s: int = 1_800
    suspense_max_days: int = 1
    memory_limit_mb: int = 3_072
    threads: int = 0

    def __post_init__(self) -> None:
        invariant(self.amount_tolerance_minor >= 0, "amount_tolerance_minor must be >= 0")
        invariant(0 <= self.amount_tolerance_bps <= BPS_PER_UNIT, "amount_tolerance_bps must be 0..10000")
        invariant(
            0 <= self.time_tolerance_s <= MAX_TIME_TOLERANCE_S,
            f"time_tolerance_s must be 0..{MAX_TIME_TOLERANCE_S}",
        )
        invariant(
            abs(self.cutoff_offset_s) < SECONDS_PER_DAY, "cutoff_offset_s must be within one day of midnight"
        )
        invariant(
            0 <= self.suspense_window_s <= MAX_SUSPENSE_WINDOW_S,
            f"suspense_window_s must be 0..{MAX_SUSPENSE_WINDOW_S}",
        )
        invariant(
            1 <= self.suspense_max_days <= MAX_SUSPENSE_DAYS,
            f"suspense_max_days must be 1..{MAX_SUSPENSE_DAYS}",
        )
        invariant(
            self.memory_limit_mb >= MIN_MEMORY_LIMIT_MB, f"memory_limit_mb must be >= {MIN_MEMORY_LIMIT_MB}"
        )
        invariant(0 <= self.threads <= MAX_THREADS, f"threads must be 0..{MAX_THREADS}")

    def cutoff(self, business_day: date) -> datetime:
        """The instant business_day's statement closes."""
        midnight = datetime.combine(business_day + timedelta(days=1), time(0), tzinfo=UTC)
        return midnight + timedelta(seconds=self.cutoff_offset_s)

    def amount_tolerance(self, our_amount_minor: int) -> int:
        """The largest amount difference still MATCHED_WITH_TOLERANCE against our amount."""
        by_ratio = abs(our_amount_minor) * self.amount_tolerance_bps // BPS_PER_UNIT
        return max(self.amount_tolerance_minor, by_ratio)
