"""What the demo prints about the ledger once the orders are paid."""

from __future__ import annotations

import time

import grpc
from paykit.accounting.v1 import accounting_pb2 as pb
from paykit.accounting.v1 import accounting_pb2_grpc
from paykit.money import Money

LEDGER_WAIT_S = 30.0
SETTLE_S = 1.0


def ledger_lines(target: str, merchant: str, currency: str, captures: int) -> list[str]:
    """Wait until the ledger holds `captures` entries, then report its trial balance and the merchant."""
    with grpc.insecure_channel(target) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + LEDGER_WAIT_S
        trial = stub.TrialBalance(pb.TrialBalanceRequest(), timeout=10)
        while trial.entries < captures and time.monotonic() < deadline:
            time.sleep(0.2)
            trial = stub.TrialBalance(pb.TrialBalanceRequest(), timeout=10)
        # Postings trail the payments by a consumer hop: read until the merchant's balance holds still.
        balance = stub.GetBalance(pb.GetBalanceRequest(merchant_id=merchant, currency=currency), timeout=10)
        while time.monotonic() < deadline:
            time.sleep(SETTLE_S)
            again = stub.GetBalance(pb.GetBalanceRequest(merchant_id=merchant, currency=currency), timeout=10)
            if again == balance:
                break
            balance = again
        trial = stub.TrialBalance(pb.TrialBalanceRequest(), timeout=10)
    differences = ", ".join(
        f"{c.currency} debits {Money(c.debits.minor, c.currency)} = credits, difference "
        f"{Money(c.difference.minor, c.currency)}"
        for c in trial.currencies
    )
    owed = Money(balance.pending.minor + balance.available.minor + balance.in_transit.minor, currency)
    return [
        f"ledger:                {trial.entries} entries, {'balanced' if trial.balanced else 'NOT BALANCED'} "
        f"({differences})",
        f"merchant {merchant} owed:  {owed} (pending {Money(balance.pending.minor, currency)}, "
        f"available {Money(balance.available.minor, currency)})",
    ]
