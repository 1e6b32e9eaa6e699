"""The Paykit-Signature header: what we sign, and what the merchant's verify() accepts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from notification.domain.signature import sign
from notification.domain.verify import parse_header, verify

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
BODY = b'{"id":"evt_1","type":"order.paid"}'
NOW = 1_767_225_600


def test_good_signature_verifies() -> None:
    assert verify(sign([SECRET], BODY, NOW), BODY, [SECRET], NOW + 1)


def test_body_as_text_verifies_like_its_bytes() -> None:
    assert verify(sign([SECRET], BODY, NOW), BODY.decode(), [SECRET], NOW)


def test_tampered_body_is_rejected() -> None:
    assert not verify(sign([SECRET], BODY, NOW), BODY.replace(b"paid", b"closed"), [SECRET], NOW)


def test_wrong_secret_is_rejected() -> None:
    assert not verify(sign([SECRET], BODY, NOW), BODY, ["whsec_someone_else"], NOW)


def test_during_rotation_both_secrets_verify() -> None:
    header = sign([SECRET, OLD_SECRET], BODY, NOW)
    assert header.count("v1=") == 2
    assert verify(header, BODY, [SECRET], NOW)
    assert verify(header, BODY, [OLD_SECRET], NOW)


def test_stale_timestamp_is_rejected_even_with_a_good_signature() -> None:
    header = sign([SECRET], BODY, NOW)
    assert verify(header, BODY, [SECRET], NOW + 300)
    assert not verify(header, BODY, [SECRET], NOW + 301)
    assert not verify(header, BODY, [SECRET], NOW - 301)


def test_changed_timestamp_breaks_the_signature() -> None:
    header = sign([SECRET], BODY, NOW).replace(f"t={NOW}", f"t={NOW + 10}")
    assert not verify(header, BODY, [SECRET], NOW + 10)


def test_malformed_headers_are_rejected() -> None:
    good = sign([SECRET], BODY, NOW)
    v1 = good.split(",")[1]
    for header in ["", "garbage", f"t=abc,{v1}", v1, f"t={NOW}", f"t={NOW},t={NOW},{v1}", "t" * 5000]:
        assert parse_header(header) is None
        assert not verify(header, BODY, [SECRET], NOW)


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40), t=st.integers(0, 2**40))
def test_any_signed_body_verifies_and_any_flipped_byte_does_not(body: bytes, secret: str, t: int) -> None:
    header = sign([secret], body, t)
    assert verify(header, body, [secret], t)
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert not verify(header, flipped, [secret], t)
