"""Storage of certificates imported into ACM (CloudFront origin certificates): recorded *before* the
import (``pending``), then finished, failed (revoked) or adopted, so a crash never leaves an ACM
certificate the CA does not know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..records import CertificateRecord, IdempotencyRecord

#: Reason recorded for a certificate whose ACM import failed (it was never served; its key is gone).
IMPORT_FAILED_REASON = "cessationOfOperation"


@dataclass(frozen=True)
class PendingImport:
    """A certificate recorded before its ACM import, not yet recorded as imported.

    Attributes:
        record: the certificate; ``acm_certificate_arn`` is the target of a rotation, or None for a
            first import (its ARN is known only once ACM answers).
        since: when it was recorded.
        supersedes: serial number of the certificate it replaces behind the ARN (rotation), or None.
    """

    record: CertificateRecord
    since: datetime
    supersedes: str | None


class AcmImports(Protocol):
    """Certificates pending, finishing or failing their ACM import."""

    def put_pending_import(self, record: CertificateRecord, now: datetime, supersedes: str | None = None) -> None:
        """Record a certificate before importing it into ACM (revocable from now on; no private key is
        stored). ``supersedes``: the certificate it replaces behind ``record.acm_certificate_arn``.

        Raises:
            SerialNumberCollision: another certificate has this serial number.
        """
        ...

    def finish_import(
        self, record: CertificateRecord, idempotency: IdempotencyRecord | None = None, now: datetime | None = None
    ) -> None:
        """A first import succeeded: record its ARN (``record.acm_certificate_arn``); the certificate
        becomes the active one behind it; the idempotency record is written with it.

        Raises:
            PendingImportGone: it is no longer pending (failed or revoked meanwhile).
            IdempotencyKeyInUse, WriteConflict: as :meth:`Certificates.put_certificate`.
        """
        ...

    def fail_pending_import(self, record: CertificateRecord, now: datetime) -> bool:
        """The import did not happen: revoke the pending certificate (:data:`IMPORT_FAILED_REASON`).

        Returns:
            False when it was no longer pending and not revoked (nothing changed).
        """
        ...

    def list_pending_imports(self) -> list[str]:
        """Serial numbers of the certificates whose import is not recorded as done."""
        ...

    def get_pending_import(self, serial_number: str) -> PendingImport | None:
        """The pending import of a certificate; None when it is not pending (any more)."""
        ...

    def adopt_import(self, serial_number: str, arn: str) -> None:
        """A first import whose recording was lost was found in ACM at ``arn``: record it.

        Raises:
            PendingImportGone: it is no longer pending.
        """
        ...

    def abandon_pending_import(self, serial_number: str) -> None:
        """A pending certificate that is revoked already and not served by ACM: stop tracking it."""
        ...
