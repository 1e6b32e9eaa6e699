"""Every bound the sandbox keeps, named once (TigerStyle: a limit on everything)."""

from __future__ import annotations

from typing import Final

# Request bodies: a charge or refund is a few hundred bytes.
MAX_BODY_BYTES: Final[int] = 64 * 1024
# Per merchant account; the sandbox lives in memory and must not grow without end.
MAX_TRADES: Final[int] = 1_000_000
MAX_REFUNDS: Final[int] = 1_000_000
MAX_PAYOUTS: Final[int] = 1_000_000
# Payer, refund and notification tasks alive at once across all merchants.
MAX_BACKGROUND_TASKS: Final[int] = 100_000
# Longest delay a directive or the runtime config may ask for (10 minutes).
MAX_DELAY_MS: Final[int] = 600_000
# Most copies of one notification the channel may send.
MAX_NOTIFY_COPIES: Final[int] = 10
# Longest a "lost" request may hold its connection.
MAX_HANG_S: Final[float] = 600.0
# Delivery of one notification copy: attempts, first back-off (doubling), per-attempt timeout.
NOTIFY_MAX_ATTEMPTS: Final[int] = 6
NOTIFY_FIRST_RETRY_S: Final[float] = 0.5
NOTIFY_TIMEOUT_S: Final[float] = 5.0
# Ids and text fields a caller sends.
MAX_ID_CHARS: Final[int] = 64
MAX_TEXT_CHARS: Final[int] = 256
MAX_URL_CHARS: Final[int] = 2_048
# Merchant identifiers one protocol may map to the sandbox's accounts (app ids, mchids, keys).
MAX_MERCHANT_IDS_PER_PROTOCOL: Final[int] = 10_000
# Protocols one sandbox may enable at once.
MAX_PROTOCOLS: Final[int] = 16
# Statement lines the operator may plant per merchant account (POST /v1/admin/statement-extras).
MAX_STATEMENT_EXTRAS: Final[int] = 10_000
