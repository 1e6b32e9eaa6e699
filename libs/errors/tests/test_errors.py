import pytest
from paykit.errors import InvalidArgument, InvariantViolation, invariant


def test_invalid_argument_names_the_field_in_its_message() -> None:
    err = InvalidArgument("amount.minor", "must be positive")
    assert err.field == "amount.minor"
    assert str(err) == "amount.minor: must be positive"


def test_invariant_raises_even_when_asserts_are_disabled() -> None:
    with pytest.raises(InvariantViolation, match="debits must equal credits"):
        invariant(False, "debits must equal credits")
    invariant(True, "never raised")
