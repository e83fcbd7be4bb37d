"""Rotation in place of CloudFront origin client certificates held in ACM (us-east-1).

For each ACM ARN this CA manages whose current certificate ends within the rotation window, or
was revoked (so a compromised origin key is replaced at the next daily run):
take the rotation lease (two overlapping runs never rotate one ARN twice), issue a fresh
certificate with a fresh key like the old one (one ``kms:Sign``), re-import it into the **same
ARN**, then in one DynamoDB transaction record it and revoke the old one (``superseded``).

If the re-import fails, ACM still holds the old, valid certificate (ACM validates that key and
certificate match before replacing anything), the lease is released, a notification goes to
SNS, and the next run retries. If ACM says the ARN is gone, the certificate stops being managed
and a notification says so. The new key exists only in memory and in ACM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from .acm import AcmCertificateGone, AcmImporter
from .certificates import ISSUING
from .errors import CaError
from .issuance import Issuer
from .notify import Notifier
from .records import STATUS_REVOKED, CertificateRecord, iso
from .store import CertificateStore

ROTATION_LEASE = timedelta(minutes=15)


@dataclass
class RotationReport:
    """What one run did. Each list holds ``{"acm_certificate_arn", "serial_number", ...}`` dicts."""

    rotated: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


class OriginCertificateRotation:
    """Rotates ACM-imported certificates that expire within ``window``.

    Args:
        issuer: signs the new certificates (its CA is the issuing CA).
        store: inventory (the ``AcmByExpiry`` index, leases, the rotation transaction).
        acm: importer into ACM us-east-1.
        notifier: SNS notifications for failures and missing ARNs.
        window: rotate when notAfter is closer than this.
    """

    def __init__(
        self, issuer: Issuer, store: CertificateStore, acm: AcmImporter, notifier: Notifier, window: timedelta
    ) -> None:
        self._issuer = issuer
        self._store = store
        self._acm = acm
        self._notifier = notifier
        self._window = window

    def run(self, now: datetime) -> RotationReport:
        """Rotate everything due. Never raises for one certificate's failure: it is reported,
        notified and retried next run."""
        report = RotationReport()
        for serial_number, arn in self._store.list_acm_due(now + self._window):
            entry = {"acm_certificate_arn": arn, "serial_number": serial_number}
            if not self._store.claim_rotation(serial_number, now, ROTATION_LEASE):
                report.skipped.append(entry)
                continue
            self._rotate_one(serial_number, arn, now, report, entry)
        return report

    def _rotate_one(
        self, serial_number: str, arn: str, now: datetime, report: RotationReport, entry: dict[str, str]
    ) -> None:
        old = self._store.get_certificate(serial_number)
        try:
            if old is None:
                raise CaError(f"certificate {serial_number} is in the ACM index but not in the inventory")
            signed = self._issuer.reissue(old, now)
            self._acm.reimport(arn, self._issuer.origin_bundle(signed))
        except AcmCertificateGone:
            self._store.mark_acm_missing(serial_number, now)
            report.missing.append(entry)
            self._notifier.notify(
                "AcmCertificateMissing",
                "kmsca: an ACM origin certificate no longer exists",
                {**entry, "detail": "ACM has no certificate with this ARN; it is no longer rotated"},
            )
            return
        except (CaError, ClientError, BotoCoreError) as exc:
            self._store.release_rotation(serial_number)
            failure = {**entry, "error": type(exc).__name__, "message": str(exc)[:500]}
            report.failed.append(failure)
            self._notifier.notify(
                "AcmRotationFailed",
                "kmsca: ACM origin certificate rotation failed (old certificate kept)",
                {**failure, "detail": "the old certificate stays in place; the next run retries"},
            )
            return
        new = CertificateRecord.from_certificate(
            signed.certificate,
            ca=ISSUING,
            profile=old.profile,
            issued_at=now,
            key_type=signed.key_type,
            acm_certificate_arn=arn,
        )
        self._store.record_rotation(new, serial_number, now, old_revoked=old.status == STATUS_REVOKED)
        tagged = "true"
        try:
            self._acm.tag(arn, {"kmsca:serial-number": new.serial_number})
        except (ClientError, BotoCoreError):
            tagged = "false"  # the tag is informational; the inventory is the record
        report.rotated.append(
            {**entry, "new_serial_number": new.serial_number, "not_after": iso(new.not_after), "tag_updated": tagged}
        )
