"""Storage of the CA records (``CA#<name>``): the root and issuing CA certificates and their KMS keys."""

from __future__ import annotations

from typing import Protocol

from ..records import CaRecord


class CaRecords(Protocol):
    """The CA records: written once by bootstrap, replaced only by a re-issue with the same key."""

    def get_cas(self, names: list[str]) -> dict[str, CaRecord]:
        """The records of ``names`` (consistent read); a name with no record is absent from the result."""
        ...

    def put_ca(self, record: CaRecord) -> CaRecord:
        """Store ``record`` unless a record of its name exists (never replaced).

        Returns:
            The stored record: ``record``, or the one that was there first.
        """
        ...

    def replace_ca(self, record: CaRecord, previous_serial: str) -> CaRecord:
        """Replace a CA record's certificate (a re-issue with the same key) if it still holds the
        certificate ``previous_serial`` (canonical lowercase hex).

        Returns:
            The stored record: ``record``, or the one a concurrent re-issue wrote first.
        """
        ...
