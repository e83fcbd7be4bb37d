"""Canonical text form of certificate serial numbers.

Everywhere (table keys, KeyValueStore keys, file names, the API) a serial number is written as
lowercase hexadecimal without colons, padded with a leading zero to an even number of digits,
as the DER INTEGER content would read without its sign octet. RFC 5280 section 4.1.2.2 limits
serial numbers to positive integers of at most 20 octets.
"""

from __future__ import annotations

import re

from .errors import InvalidRequest

MAX_SERIAL_OCTETS = 20
_HEX = re.compile(r"^[0-9a-f]+$")


def serial_to_hex(serial_number: int) -> str:
    """Render a positive serial number as canonical hex (``0x0a1b`` -> ``"0a1b"``).

    Raises:
        ValueError: the number is not positive.
    """
    if serial_number <= 0:
        raise ValueError("serial numbers are positive integers (RFC 5280 4.1.2.2)")
    text = format(serial_number, "x")
    return text if len(text) % 2 == 0 else "0" + text


def parse_serial(text: str) -> int:
    """Parse a serial number given as hex, in any case, with or without colons.

    Accepts ``"4A:3F:05"``, ``"4a3f05"`` and ``"0x4a3f05"``.

    Returns:
        The serial number as a positive int.

    Raises:
        InvalidRequest: not hex, zero, or longer than 20 octets.
    """
    if not isinstance(text, str):
        raise InvalidRequest("serial_number must be a string of hexadecimal digits")
    cleaned = text.strip().lower().replace(":", "")
    cleaned = cleaned.removeprefix("0x")
    if not cleaned or not _HEX.match(cleaned):
        raise InvalidRequest(f"serial_number {text[:64]!r} is not hexadecimal", serial_number=text[:64])
    value = int(cleaned, 16)
    if value <= 0:
        raise InvalidRequest("serial_number must be a positive integer (RFC 5280 4.1.2.2)")
    if (value.bit_length() + 7) // 8 > MAX_SERIAL_OCTETS:
        raise InvalidRequest(
            f"serial_number is longer than {MAX_SERIAL_OCTETS} octets (RFC 5280 4.1.2.2)", max_octets=MAX_SERIAL_OCTETS
        )
    return value


def canonical_serial(text: str) -> str:
    """Normalise any accepted serial text form to the canonical one (see :func:`parse_serial`)."""
    return serial_to_hex(parse_serial(text))
