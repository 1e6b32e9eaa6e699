"""WeChat Pay API v3 (Native pay), played by the sandbox: what the gateway's wechatpay connector
talks to locally (its package docstring states the wire behaviour this follows).

Under /wechatpay (the api_path of the credentials), every request signed by the merchant
(WECHATPAY2-SHA256-RSA2048, checked with the merchant's public key), every answer to a
verified request signed with the platform key (Wechatpay-* headers); amounts in fen, CNY:

    POST /v3/pay/transactions/native                     {appid, mchid, description, out_trade_no,
                                                          notify_url, amount{total, currency}}
                                                          -> {code_url}; sim: directives in description
    GET  /v3/pay/transactions/out-trade-no/{no}?mchid=   -> the transaction (NOTPAY | SUCCESS |
                                                          REFUND | CLOSED) | 404 ORDER_NOT_EXIST
    POST /v3/pay/transactions/out-trade-no/{no}/close    {mchid} -> 204 | 400 ORDERPAID | 404 ORDER_NOT_EXIST
    POST /v3/refund/domestic/refunds                     {out_trade_no, out_refund_no, reason?,
                                                          notify_url?, amount{refund, total, currency}}
                                                          -> the refund (PROCESSING, then SUCCESS | CLOSED)
    GET  /v3/refund/domestic/refunds/{out_refund_no}     -> the refund | 404 RESOURCE_NOT_EXISTS
    GET  /v3/bill/tradebill?bill_date=&bill_type=ALL     -> {hash_type SHA1, hash_value, download_url}
    GET  /v3/billdownload/file?token=                    -> the trade bill (bills.py), unsigned

Front-door refusals are unsigned: 401 SIGN_ERROR (no, malformed or bad Authorization, wrong
serial_no, a timestamp 5 minutes off), 404 MCH_NOT_EXISTS, and 503 SYSTEM_ERROR while the
account's behaviour.unavailable is set. Lost answers (sim:timeout, sim:success_after_timeout
and their rates) hang and drop the connection.

Modules: signing (the message security), keys (the sandbox's keys and the published
credentials), wire (the HTTP edge), views (JSON bodies), trades, refunds, bills (the handlers
and the trade bill), protocol (the plugin: routes, callbacks, credentials, statement).
"""

from channel_simulator.protocols.wechatpay.protocol import WechatPayProtocol

__all__ = ["WechatPayProtocol"]
