"""Channel statement files -> statement lines, strictly: one parser per channel format."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from reconciliation.statements import alipay, card, wechatpay
from reconciliation.statements.base import ParsedStatement, StatementError

Parser = Callable[[bytes, str, str, date], ParsedStatement]

PARSERS: dict[str, Parser] = {
    alipay.FORMAT: alipay.parse,
    wechatpay.FORMAT: wechatpay.parse,
    card.FORMAT: card.parse,
}


def parse_statement(format: str, content: bytes, filename: str, channel: str, day: date) -> ParsedStatement:
    parser = PARSERS.get(format)
    if parser is None:
        raise StatementError(
            filename, f"unknown statement format {format!r}; known: {', '.join(sorted(PARSERS))}"
        )
    return parser(content, filename, channel, day)


__all__ = ["PARSERS", "ParsedStatement", "StatementError", "parse_statement"]
