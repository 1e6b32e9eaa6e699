"""Reading what runs found: a run's report, and pages of discrepancies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from paykit.errors import InvalidArgument, NotFound

from reconciliation.adapters.repository import DiscrepancyFilter, DiscrepancyRecord, RunRecord
from reconciliation.service_layer.unit_of_work import UowFactory

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
MAX_ID_CHARS: Final = 128


def parse_day(text: str, field: str) -> date:
    """yyyy-mm-dd, strictly (a business day in the channel's time zone)."""
    try:
        if len(text) != len("2026-01-31"):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(field, f"{text!r} is not a date as yyyy-mm-dd") from None


def _short(value: str, field: str) -> str:
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"is longer than {MAX_ID_CHARS} characters")
    return value


def report(uow_factory: UowFactory, run_id: str, channel: str, business_day: str) -> RunRecord:
    """By run_id, or the latest run of a channel's business day."""
    if run_id and (channel or business_day):
        raise InvalidArgument("run_id", "give either run_id, or channel and business_day, not both")
    if not run_id:
        if not channel:
            raise InvalidArgument("run_id", "give run_id, or channel and business_day")
        if not business_day:
            raise InvalidArgument("business_day", "is required with channel")
    with uow_factory() as uow:
        if run_id:
            found = uow.reports.run(_short(run_id, "run_id"))
            if found is None:
                raise NotFound(f"reconciliation run {run_id!r} not found")
            return found
        day = parse_day(business_day, "business_day")
        found = uow.reports.latest_run(_short(channel, "channel"), day)
    if found is None:
        raise NotFound(f"no reconciliation run for channel {channel!r} on {day.isoformat()}")
    return found


@dataclass(frozen=True)
class DiscrepancyPage:
    discrepancies: list[DiscrepancyRecord]
    next_page_token: str


def discrepancies(
    uow_factory: UowFactory, where: DiscrepancyFilter, page_size: int, page_token: str
) -> DiscrepancyPage:
    """A page in discrepancy_id order; the token is the last id of the previous page."""
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be 1..{MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
    size = page_size or DEFAULT_PAGE_SIZE
    after = _short(page_token, "page_token")
    with uow_factory() as uow:
        found = uow.reports.discrepancies(where, after, size)
    next_token = found[-1].discrepancy_id if len(found) == size else ""
    return DiscrepancyPage(found, next_token)
