from __future__ import annotations

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st
from kmsca.errors import InvalidRequest
from kmsca.serial import canonical_serial, parse_serial, serial_to_hex


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4A:3F:05", "4a3f05"),
        ("4a3f05", "4a3f05"),
        ("0x4a3f05", "4a3f05"),
        ("a3f05", "0a3f05"),
        (" 0A3F05 ", "0a3f05"),
        ("00:ff", "ff"),
    ],
)
def test_canonical_forms(text: str, expected: str) -> None:
    assert canonical_serial(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("xyz", "not hexadecimal"),
        ("", "not hexadecimal"),
        ("00", "positive"),
        ("ff" * 21, "20 octets"),
        ("4a-3f", "not hexadecimal"),
    ],
)
def test_bad_serials_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_serial(text)


def test_non_string_serial_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_serial(1234)  # type: ignore[arg-type]


def test_zero_cannot_be_rendered() -> None:
    with pytest.raises(ValueError, match="positive"):
        serial_to_hex(0)


@given(st.integers(min_value=1, max_value=2**159 - 1))
def test_round_trip_and_even_length(value: int) -> None:
    text = serial_to_hex(value)
    assert len(text) % 2 == 0
    assert text == text.lower()
    assert parse_serial(text) == value
    colon_upper = ":".join(text[i : i + 2] for i in range(0, len(text), 2)).upper()
    assert canonical_serial(colon_upper) == text


def test_random_serials_fit_rfc5280() -> None:
    for _ in range(200):
        text = serial_to_hex(x509.random_serial_number())
        assert len(text) <= 40
