"""Storage of CRL numbers (``CRLNUMBER#<ca>``): one counter per CA (RFC 5280 section 5.2.3)."""

from __future__ import annotations

from typing import Protocol


class CrlNumbers(Protocol):
    """CRL number counters."""

    def next_crl_number(self, ca: str) -> int:
        """Reserve the next CRL number of CA ``ca``: strictly increasing, never handed out twice, even
        to concurrent callers (a number whose CRL is never published leaves a gap, which RFC 5280
        allows)."""
        ...
