"""Alipay (支付宝) through its OpenAPI gateway ("gateway.do", sign_type RSA2): face-to-face QR
payment (alipay.trade.precreate), query, refund, refund query, close, and the daily trade bill.

Modules: signing.py (RSA2 sign/verify, the exact sign content), transformers.py (biz_content,
answers, notifications; the only place money converts), errors.py (the error table and its
sources), connector.py (HTTP), sandbox.py (config for the channel simulator's Alipay protocol).

Account config (stored encrypted)::

    {"gateway_url": "https://openapi.alipay.com/gateway.do", "app_id": "2021...",
     "app_private_key_pem": "...", "alipay_public_key_pem": "...", "seller_id": "2088..."}

Keys as PEM or as Alipay's tools give them (base64 DER without headers: PKCS#1 or PKCS#8
private key, X.509 SubjectPublicKeyInfo public key), RSA >= 2048 bits. seller_id is optional.

Wire behaviour this connector expects (what a sandbox, e.g. services/channel_simulator's
Alipay protocol, must do to be taken for Alipay)
-----------------------------------------------------------------------------------------

Requests. ``POST {gateway_url}?{query}`` with ``Content-Type:
application/x-www-form-urlencoded;charset=utf-8``. The query string carries app_id, method,
format=JSON, charset=utf-8, sign_type=RSA2, timestamp ("yyyy-MM-dd HH:mm:ss", Beijing time),
version=1.0, notify_url (charge and refund, when we have one) and sign; the body carries
``biz_content=<JSON>``. A gateway must read the union of query and body parameters.
``sign`` = base64(SHA256withRSA(app private key, content)), content = every non-empty
parameter except sign, sorted by name, as ``k=v`` joined by ``&``, values URL-decoded, utf-8
(alipay-sdk-python's SignatureUtils.get_sign_content + sign_with_rsa2). The gateway verifies
it with the app's public key and checks app_id.

Answers. HTTP 200, body utf-8 JSON ``{"<method, "." -> "_">_response": {...}, "sign": "..."}``
(e.g. ``alipay_trade_precreate_response``), or ``{"error_response": {...}, "sign": "..."}``
for a call refused before the method ran (bad app_id, bad signature). ``sign`` =
base64(SHA256withRSA(Alipay private key, the exact bytes of the response node's JSON text,
from its ``{`` to its matching ``}``)), verified with alipay_public_key_pem. EVERY answer must
be signed, error answers included: an unsigned, differently signed or tampered answer is
not trusted (the outcome is unknown, the raw answer is kept), and so is a non-200 status.
The node has ``code`` ("10000" success) and, on failure, ``msg``, ``sub_code``, ``sub_msg``;
errors.py maps the codes (20000 and ACQ.SYSTEM_ERROR: outcome unknown; 40002 isv.invalid-*:
authentication; aop.ACQ.SYSTEM_BUSY: rate limited; ...). Amounts are JSON strings, yuan with
exactly two decimals ("19.99"); times "yyyy-MM-dd HH:mm:ss" Beijing time.

- charge: alipay.trade.precreate, biz {out_trade_no: our payment id, total_amount, subject,
  product_code: FACE_TO_FACE_PAYMENT, seller_id?}. Success node {code, msg, out_trade_no,
  qr_code} -> PENDING with qr_code as pay_url. Same out_trade_no and same request again:
  the same success (idempotent); a different request: ACQ.CONTEXT_INCONSISTENT (conflict).
  ACQ.TRADE_HAS_CLOSE -> CLOSED; a buyer/amount refusal (ACQ.TOTAL_FEE_EXCEED, ...) ->
  DECLINED; ACQ.TRADE_HAS_SUCCESS -> outcome unknown (the query says it is paid).
- query: alipay.trade.query, biz {out_trade_no}. Success node {out_trade_no, trade_no,
  trade_status, total_amount, send_pay_date (once paid)}; WAIT_BUYER_PAY -> PENDING,
  TRADE_SUCCESS / TRADE_FINISHED -> SUCCEEDED (total_amount and trade_no required),
  TRADE_CLOSED -> CLOSED, unless send_pay_date is present (paid, then refunded in full) ->
  SUCCEEDED. 40004 ACQ.TRADE_NOT_EXIST -> NOT_FOUND.
- refund: alipay.trade.refund, biz {out_trade_no, refund_amount, out_request_no: our refund
  id, refund_reason?, query_options: ["gmt_refund_pay"]}. Success node {out_trade_no,
  trade_no, fund_change, refund_fee: the trade's refunded TOTAL, gmt_refund_pay?}:
  fund_change "Y" -> SUCCEEDED (refund_fee must be >= this refund); "N" or absent ->
  PROCESSING (e.g. a repeat of a refund already made: Alipay moved no money this time), to
  be confirmed by the refund query. Repeating an out_request_no with another amount:
  ACQ.DISCORDANT_REPEAT_REQUEST (conflict). Business refusals (ACQ.TRADE_NOT_EXIST,
  ACQ.REFUND_AMT_NOT_EQUAL_TOTAL, ACQ.SELLER_BALANCE_NOT_ENOUGH, ACQ.TRADE_STATUS_ERROR, ...)
  -> FAILED with the code.
- query_refund: alipay.trade.fastpay.refund.query, biz {out_trade_no, out_request_no,
  query_options: ["gmt_refund_pay"]}. Success node {out_trade_no, out_request_no, trade_no,
  refund_amount: THIS refund's amount, total_amount, refund_status: "REFUND_SUCCESS",
  gmt_refund_pay?} -> SUCCEEDED; success without refund_status (Alipay: "not received or
  failed; refund again with the same out_request_no") -> NOT_FOUND; ACQ.TRADE_NOT_EXIST ->
  NOT_FOUND.
- close: alipay.trade.close, biz {out_trade_no}. Success -> CLOSED; ACQ.TRADE_NOT_EXIST
  (never created) and ACQ.TRADE_HAS_CLOSE -> CLOSED; ACQ.TRADE_STATUS_ERROR (the trade no
  longer awaits payment, e.g. paid) -> ALREADY_PAID.
- download_statement: alipay.data.dataservice.bill.downloadurl.query, biz {bill_type:
  "trade", bill_date: "yyyy-MM-dd"}. Success node {bill_download_url: http(s) URL}; then
  ``GET bill_download_url`` (no signature) answers 200 with the file (Alipay: a zip of GBK
  CSVs), kept as bytes, format "alipay-trade-bill", filename from Content-Disposition.
  BILL_NOT_EXIST / isp.bill_not_exist -> refused as CHANNEL_UNAVAILABLE (not generated yet).
- payout: not implemented (refused INVALID_REQUEST "UNSUPPORTED", nothing sent).

Notifications. ``POST {notify_url}`` (the gateway's /webhooks/{channel}), body
``application/x-www-form-urlencoded`` utf-8: notify_id, notify_time ("yyyy-MM-dd HH:mm:ss"
Beijing time, at most 25 h old and 5 min ahead), notify_type=trade_status_sync, app_id
(ours), charset=utf-8, version=1.0, sign_type=RSA2, sign, out_trade_no, trade_no,
trade_status, total_amount, gmt_payment (paid) / gmt_close (closed), seller_id?, and for a
refund also out_biz_no (our refund id), refund_fee, gmt_refund ("yyyy-MM-dd HH:mm:ss[.SSS]").
``sign`` = base64(SHA256withRSA(Alipay private key, content)), content = every non-empty
parameter except sign AND sign_type, sorted, ``k=v`` joined by ``&``, URL-decoded values.
Each parameter appears once. A payment notification with trade_status TRADE_SUCCESS /
TRADE_FINISHED is a payment (gmt_payment required); WAIT_BUYER_PAY (created) and
TRADE_CLOSED (closed unpaid) are genuine but carry no outcome: acknowledged, stored, never
published (AcknowledgedOnly; a close is settled by its own answer or by the query). A
refund notification (any of out_biz_no, refund_fee, gmt_refund present; then all three
required; trade_status TRADE_CLOSED when it refunded the trade in full) means the refund
succeeded; as at Alipay, refund_fee is the trade's refunded total, so it equals the
refund's amount only for a trade's first refund: after an earlier partial refund
payment-core sees a different amount and flags it instead of recording it (the refund is
settled by its answer or the refund query instead).
We answer ``200 success`` once the notification is stored and published, ``400 failure``
when we reject it (Alipay, and the sandbox, must treat any body but exactly "success" as not
acknowledged and retry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from channel_gateway.adapters.connectors.alipay import signing
from channel_gateway.adapters.connectors.alipay.connector import AlipayConnector

REQUIRED_KEYS: Final = ("gateway_url", "app_id", "app_private_key_pem", "alipay_public_key_pem")

__all__ = ["REQUIRED_KEYS", "AlipayConnector", "build"]


def build(channel: str, config: Mapping[str, Any]) -> AlipayConnector:
    """A connector for one Alipay app; ValueError naming the missing or bad key (never its value)."""
    missing = [k for k in REQUIRED_KEYS if not isinstance(config.get(k), str) or not config[k]]
    if missing:
        raise ValueError(f"config needs {', '.join(missing)} (non-empty text)")
    seller_id = config.get("seller_id", "")
    if not isinstance(seller_id, str):
        raise ValueError("seller_id must be text when given")
    url = urlsplit(config["gateway_url"])
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("gateway_url must be an http(s) URL")
    return AlipayConnector(
        config["gateway_url"],
        config["app_id"],
        signing.load_private_key(config["app_private_key_pem"], "app_private_key_pem"),
        signing.load_public_key(config["alipay_public_key_pem"], "alipay_public_key_pem"),
        seller_id=seller_id,
        name=channel,
    )
