"""Reading `sim:` directives from a charge's subject: every mode, and refusal of anything else."""

from __future__ import annotations

import pytest
from channel_simulator.directives import KNOWN, NONE, DirectiveError, Directives, parse_directives
from hypothesis import given
from hypothesis import strategies as st


def test_subject_without_directives_asks_for_nothing() -> None:
    assert parse_directives("Coffee, large") is NONE
    assert parse_directives("") is NONE


def test_every_mode_is_read() -> None:
    subject = (
        "Order 7 sim:timeout sim:success_after_timeout sim:decline sim:drop_notify sim:out_of_order "
        "sim:no_pay sim:delay_notify=250 sim:duplicate_notify=3 sim:pay_delay=0"
    )
    assert parse_directives(subject) == Directives(
        timeout=True,
        success_after_timeout=True,
        decline=True,
        drop_notify=True,
        out_of_order=True,
        no_pay=True,
        delay_notify_ms=250,
        duplicate_notify=3,
        pay_delay_ms=0,
    )
    assert len(KNOWN) == 9


@pytest.mark.parametrize(
    "subject",
    [
        "sim:Timeout",
        "sim:",
        "sim:delay_notify",
        "sim:delay_notify=",
        "sim:delay_notify=1.5",
        "sim:delay_notify=+5",
        "sim:delay_notify=600001",
        "sim:duplicate_notify=11",
        "sim:decline=yes",
        "sim:pay_delay=1 sim:pay_delay=2",
    ],
)
def test_malformed_directives_are_refused(subject: str) -> None:
    with pytest.raises(DirectiveError):
        parse_directives(subject)


@given(st.text(alphabet=st.characters(blacklist_characters=":"), max_size=40))
def test_text_without_the_prefix_is_never_a_directive(subject: str) -> None:
    assert parse_directives(subject) is NONE


def test_tokens_give_back_what_was_written() -> None:
    directives = parse_directives("x sim:no_pay sim:duplicate_notify=2")
    assert directives.tokens() == ["no_pay", "duplicate_notify=2"]
    assert parse_directives(" ".join(f"sim:{t}" for t in directives.tokens())) == directives
