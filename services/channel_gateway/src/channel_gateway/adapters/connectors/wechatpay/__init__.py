"""WeChat Pay API v3 (Native pay: the payer scans a QR code), one merchant account per channel.

Modules: config (the stored account config, checked), signing (request signatures, answer and
callback verification, callback decryption), transformers (JSON bodies; fen <-> Money), errors
(the error-code table), connector (HTTP), sandbox (a config for the channel simulator).

Expected wire behaviour (what the channel simulator's "wechatpay" protocol must do; all of it
is WeChat Pay's own API v3 behaviour, cited in signing.py, errors.py and transformers.py)
=========================================================================================

Base URL. config["api_base_url"] may carry a path prefix (the simulator's "/wechatpay"): every
API path below is appended to it, and the prefix is part of the signed URL line.

Requests. JSON bodies in UTF-8 ("Content-Type: application/json" when there is a body), with
"Accept: application/json", a User-Agent and
  Authorization: WECHATPAY2-SHA256-RSA2048 mchid="<mchid>",nonce_str="<32 hex>",
                 signature="<b64>",timestamp="<unix s>",serial_no="<merchant_serial_no>"
signature = Base64(RSASSA-PKCS1-v1_5 SHA-256 by the merchant private key) over
  "<METHOD>\\n<path?query exactly as sent, prefix included>\\n<timestamp>\\n<nonce_str>\\n<body>\\n"
(body empty for GET). The channel checks it with the merchant's public key named by serial_no;
a bad one is answered 401 {"code": "SIGN_ERROR", ...}, unsigned.

Answers. Every 2xx answer, and every 4xx that says something about a trade or refund, carries
  Wechatpay-Timestamp (unix s, within 300 s of now), Wechatpay-Nonce, Wechatpay-Serial
  (= platform_serial_no), Wechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048,
  Wechatpay-Signature = Base64(SHA256withRSA by the platform private key) over
  "<timestamp>\\n<nonce>\\n<body>\\n"  (a 204's body is empty: "<timestamp>\\n<nonce>\\n\\n").
Refusals are {"code", "message", "detail"?} with a 4xx status; 5xx means "maybe done".
Amounts are integers of fen, currency "CNY".

  POST /v3/pay/transactions/native  {appid, mchid, description, out_trade_no (our payment id),
       notify_url, amount: {total, currency}}
       -> 200 {"code_url": "weixin://wxpay/bizpayurl?pr=..."}       (read as PENDING)
       -> 4xx ORDER_CLOSED (CLOSED) | ORDERPAID (PENDING, a query tells) | OUT_TRADE_NO_USED
          (same number, other parameters: a conflict) | NOTENOUGH, RULE_LIMIT, ... (DECLINED)
  GET  /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mchid}
       -> 200 {appid, mchid, out_trade_no, transaction_id (once paid), trade_state
          (SUCCESS | REFUND | NOTPAY | USERPAYING | CLOSED | REVOKED | PAYERROR | ACCEPT),
          trade_state_desc, success_time (RFC 3339 with offset, once paid),
          amount: {total, payer_total, currency, payer_currency}}
       -> 404 ORDER_NOT_EXIST                                      (NOT_FOUND)
  POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close  {mchid}
       -> 204 (closed) | 400 ORDERPAID (ALREADY_PAID) | 404 ORDER_NOT_EXIST (CLOSED: never had
          it) | 400 ORDER_CLOSED (CLOSED)
  POST /v3/refund/domestic/refunds  {out_trade_no, out_refund_no (our refund id, the
       idempotency key: the same number again answers the same refund), reason?, notify_url,
       amount: {refund, total, currency}}
       -> 200 {refund_id, out_refund_no, transaction_id, out_trade_no, channel,
          user_received_account, create_time, success_time?, status (PROCESSING | SUCCESS |
          ABNORMAL | CLOSED), amount: {total, refund, payer_total, payer_refund, currency}}
       -> 4xx NOT_ENOUGH | USER_ACCOUNT_ABNORMAL | TRADE_OVERDUE (FAILED),
          RESOURCE_NOT_EXISTS (no such trade: FAILED), RESOURCE_ALREADY_EXISTS (conflict)
  GET  /v3/refund/domestic/refunds/{out_refund_no}
       -> 200 the same object as above | 404 RESOURCE_NOT_EXISTS (NOT_FOUND)
  GET  /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL
       -> 200 {"hash_type": "SHA1", "hash_value": "<hex sha1 of the file>",
          "download_url": "<same scheme://host:port>/...?token=..."}
       -> 400 NO_STATEMENT_EXIST | STATEMENT_CREATING
  GET  <download_url>  (signed like any request; the URL line is its path?query)
       -> 200 the bill file (uncompressed, WeChat Pay's CSV trade bill), NOT signed
  Common refusals: 400 PARAM_ERROR | INVALID_REQUEST, 401 SIGN_ERROR, 403 NO_AUTH |
  APPID_MCHID_NOT_MATCH, 404 MCH_NOT_EXISTS, 429 FREQUENCY_LIMITED, 500 SYSTEM_ERROR.

Callbacks (to the notify_url of the charge or refund: POST /webhooks/<channel>), signed like
an answer (Wechatpay-* headers, platform key), body:
  {"id": "<notify id, the same on every retry>", "create_time": "<RFC 3339>",
   "event_type": "TRANSACTION.SUCCESS" | "REFUND.SUCCESS" | "REFUND.CLOSED" | "REFUND.ABNORMAL",
   "resource_type": "encrypt-resource", "summary": "...",
   "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": "transaction" | "refund",
                "ciphertext": Base64(AES-256-GCM ciphertext || 16-byte tag),
                "nonce": "<12 characters>", "associated_data": "<text, may be empty>"}}
encrypted with key = apiv3_key (32 bytes), nonce and associated_data as UTF-8 bytes. Decrypted:
  transaction: the query's 200 object (trade_state "SUCCESS", transaction_id, success_time,
               amount.total and currency "CNY", appid and mchid ours)
  refund:      {mchid, out_trade_no, transaction_id, out_refund_no, refund_id, refund_status
               (SUCCESS | CLOSED | ABNORMAL, matching event_type), success_time (SUCCESS),
               user_received_account, amount: {total, refund, payer_total, payer_refund}}
Our answer: 200 with an empty body when taken; 400 {"code": "FAIL", "message": "..."} when
refused, after which WeChat Pay sends it again. A genuine REFUND.ABNORMAL is taken (200) but
only stored: it is not a final state (the refund stays PROCESSING, see transformers.py).
There is no payout: payout() is refused UNSUPPORTED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channel_gateway.adapters.connectors.wechatpay import config as account_config
from channel_gateway.adapters.connectors.wechatpay.connector import WechatPayConnector


def build(channel: str, config: Mapping[str, Any]) -> WechatPayConnector:
    """config: api_base_url, mchid, appid, merchant_serial_no, merchant_private_key_pem,
    platform_serial_no, platform_public_key_pem (or platform_certificate_pem), apiv3_key."""
    return WechatPayConnector(account_config.load(config), name=channel)
