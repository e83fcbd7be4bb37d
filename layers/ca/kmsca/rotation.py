"""Rotation in place of CloudFront origin client certificates held in ACM (us-east-1), and the
repair of ACM imports that a crash left half done.

Every import is a small recorded state machine, so that ACM never serves a certificate the
inventory does not know (and cannot revoke)::

    pending_import --(ACM import)--> imported --(record)--> recorded (acm_managed = active)
          +-(import refused or not found in ACM)--> import_failed (revoked, cessationOfOperation)

Rotation, for each ACM ARN whose current certificate ends within the window or was revoked: take
the rotation lease (two overlapping runs never rotate one ARN twice), issue a fresh certificate
with a fresh key like the old one (one ``kms:Sign``), **record it as pending** (target ARN, the
certificate it supersedes; never its key), re-import it into the same ARN, then in one DynamoDB
transaction make it the active one and revoke the old one (``superseded``).

Repair, first in every run, for each certificate pending for longer than the lease (Query of the
``AcmByExpiry`` index under ``acm_managed = pending``): if ACM serves it (``DescribeCertificate``
of the target ARN; for a first import whose ARN was never recorded, the imported certificate with
its serial number), the record is completed; if not, it is revoked as never served, and the old
certificate, still due, is rotated again in the same run with a fresh key and certificate.

Every failure, and every repair (an earlier run failed), is reported (the handler turns the report
into the ``AcmRotationFailures`` metric and its alarm) and notified to SNS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .acm import AcmCertificateGone, AcmImporter
from .acm_targets import AcmTargets
from .certificates import ISSUING
from .errors import AwsCallFailed, CaError, InventoryInconsistent, error_name
from .issuance import Issuer
from .notify import Notifier
from .records import STATUS_REVOKED, CertificateRecord, iso
from .store import CertificateStore, PendingImport

ROTATION_LEASE = timedelta(minutes=15)
#: What one ARN's failure may raise; anything else is a bug, reported the same way.
EXPECTED_FAILURES = (CaError, InventoryInconsistent, AwsCallFailed)


@dataclass
class RotationReport:
    """What one run did. Each list holds ``{"acm_certificate_arn", "serial_number", ...}`` dicts;
    ``failed`` entries also ``error`` (a type name: :func:`~kmsca.errors.error_name`) and ``reason``
    (a sentence), ``repaired`` entries ``action`` (``completed``, ``adopted`` or ``abandoned``)."""

    rotated: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    repaired: list[dict[str, str]] = field(default_factory=list)


class OriginCertificateRotation:
    """Rotates ACM-imported certificates that expire within ``window``; repairs unfinished imports.

    Args:
        issuer: signs the new certificates (its CA is the issuing CA).
        store: inventory (the ``AcmByExpiry`` index, leases, the rotation transaction).
        acm: ACM us-east-1 of each edge target (an :class:`AcmImporter` alone: the CA account's own);
            a certificate is re-imported into the ACM of the target its record names.
        notifier: SNS notifications for failures, repairs and missing ARNs.
        window: rotate when notAfter is closer than this.
    """

    def __init__(
        self,
        issuer: Issuer,
        store: CertificateStore,
        acm: AcmTargets | AcmImporter,
        notifier: Notifier,
        window: timedelta,
    ) -> None:
        self._issuer = issuer
        self._store = store
        self._targets = acm if isinstance(acm, AcmTargets) else AcmTargets(acm)
        self._notifier = notifier
        self._window = window

    def run(self, now: datetime) -> RotationReport:
        """Repair unfinished imports, then rotate everything due. Never raises for one
        certificate's failure: it is reported, notified and retried next run."""
        report = RotationReport()
        for serial_number in self._store.list_pending_imports():
            try:
                pending = self._store.get_pending_import(serial_number)
                if pending is None or pending.since > now - ROTATION_LEASE:
                    continue  # finished meanwhile, or an import in flight
                self._repair(pending, now, report)
            except Exception as exc:  # one record's failure must not stop the run
                self._failed(report, {"acm_certificate_arn": "", "serial_number": serial_number}, exc,
                             "an unfinished ACM import could not be repaired; the next run retries")
        for serial_number, arn in self._store.list_acm_due(now + self._window):
            entry = {"acm_certificate_arn": arn, "serial_number": serial_number}
            try:
                if not self._store.claim_rotation(serial_number, now, ROTATION_LEASE):
                    report.skipped.append(entry)
                    continue
                self._rotate_one(serial_number, arn, now, report, entry)
            except Exception as exc:  # one ARN's failure must not stop the run
                self._failed(report, entry, exc, "the rotation stopped unexpectedly; the next run retries")
        return report

    # Rotation ---------------------------------------------------------------------------------

    def _rotate_one(
        self, serial_number: str, arn: str, now: datetime, report: RotationReport, entry: dict[str, str]
    ) -> None:
        old = self._store.get_certificate(serial_number)
        try:
            if old is None:
                raise InventoryInconsistent(
                    f"certificate {serial_number} is in the ACM index but not in the inventory",
                    serial_number=serial_number,
                    acm_certificate_arn=arn,
                )
            destination = self._targets.resolve(old.acm_target)  # the same target's ACM, through its role
            self._targets.prepare(destination)
            acm = destination.importer
            signed = self._issuer.reissue(old, now)
            new = CertificateRecord.from_certificate(
                signed.certificate,
                ca=ISSUING,
                profile=old.profile,
                issued_at=now,
                key_type=signed.key_type,
                acm_certificate_arn=arn,
                acm_target=old.acm_target,
                acm_account_id=old.acm_account_id,
            )
            self._store.put_pending_import(new, now, supersedes=serial_number)  # before ACM sees it
        except EXPECTED_FAILURES as exc:
            self._store.release_rotation(serial_number)
            self._failed(report, entry, exc, "the old certificate stays in place; the next run retries")
            return
        entry = {**entry, "new_serial_number": new.serial_number}
        try:
            acm.reimport(arn, self._issuer.origin_bundle(signed))
        except AcmCertificateGone:
            self._store.fail_pending_import(new, now)
            self._store.mark_acm_missing(serial_number, now)
            report.missing.append(entry)
            self._notify(
                "AcmCertificateMissing",
                "kmsca: an ACM origin certificate no longer exists",
                {**entry, "detail": "ACM has no certificate with this ARN; it is no longer rotated"},
            )
            return
        except EXPECTED_FAILURES as exc:
            if not self._serves(acm, arn, new.serial_number):  # a lost reply may hide a done import
                self._store.fail_pending_import(new, now)
                self._store.release_rotation(serial_number)
                self._failed(report, entry, exc, "the old certificate stays in place; the next run retries")
                return
        try:
            self._store.record_rotation(new, serial_number, now, old_revoked=old.status == STATUS_REVOKED)
        except EXPECTED_FAILURES as exc:
            self._failed(
                report, entry, exc,
                "ACM serves the new certificate, which is in the inventory as pending (revocable); "
                "the next run completes its record",
            )
            return
        report.rotated.append(
            {**entry, "not_after": iso(new.not_after), "tag_updated": self._tag(acm, arn, new.serial_number)}
        )

    # Repair -----------------------------------------------------------------------------------

    def _repair(self, pending: PendingImport, now: datetime, report: RotationReport) -> None:
        record = pending.record
        arn = record.acm_certificate_arn
        acm = self._targets.resolve(record.acm_target).importer
        if arn is None:  # a first import (issue function) whose ARN was never recorded
            found = acm.find_import(record.serial_number, record.not_after)
            if found is not None:
                self._store.adopt_import(record.serial_number, found)
                self._repaired(report, record, found, "adopted",
                               "an issuance imported this certificate into ACM but died before recording it; "
                               "it is now recorded and rotated (revoke it if nobody uses the ARN)")
                return
        elif self._serves(acm, arn, record.serial_number):
            old_revoked = False
            if pending.supersedes is not None:
                old = self._store.get_certificate(pending.supersedes)
                old_revoked = old is not None and old.status == STATUS_REVOKED
                self._store.record_rotation(record, pending.supersedes, now, old_revoked=old_revoked)
            else:
                self._store.adopt_import(record.serial_number, arn)
            self._tag(acm, arn, record.serial_number)
            self._repaired(report, record, arn, "completed",
                           "a rotation re-imported this certificate but died before recording it; the record "
                           "is completed and the certificate it replaced is revoked (superseded)")
            return
        if record.status == STATUS_REVOKED:
            self._store.abandon_pending_import(record.serial_number)
        else:
            self._store.fail_pending_import(record, now)
        self._repaired(report, record, arn or "", "abandoned",
                       "the import of this certificate never reached ACM; it is revoked (cessationOfOperation) "
                       "and a due certificate is rotated again with a fresh key")

    # Helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _serves(acm: AcmImporter, arn: str, serial_number: str) -> bool:
        try:
            return acm.served_serial(arn) == serial_number
        except (AcmCertificateGone, AwsCallFailed):
            return False

    @staticmethod
    def _tag(acm: AcmImporter, arn: str, serial_number: str) -> str:
        try:
            acm.tag(arn, {"kmsca:serial-number": serial_number})
        except AwsCallFailed:
            return "false"  # the tag is informational; the inventory is the record
        return "true"

    def _failed(self, report: RotationReport, entry: dict[str, str], exc: BaseException, detail: str) -> None:
        failure = {**entry, "error": error_name(exc), "reason": str(exc)[:500]}
        report.failed.append(failure)
        self._notify(
            "AcmRotationFailed",
            "kmsca: ACM origin certificate rotation failed",
            {**failure, "detail": detail},
        )

    def _repaired(self, report: RotationReport, record: CertificateRecord, arn: str, action: str, detail: str) -> None:
        entry = {"acm_certificate_arn": arn, "serial_number": record.serial_number, "action": action}
        report.repaired.append(entry)
        self._notify("AcmImportRepaired", "kmsca: an unfinished ACM import was repaired", {**entry, "detail": detail})

    def _notify(self, event: str, subject: str, details: dict[str, str]) -> None:
        try:
            self._notifier.notify(event, subject, details)
        except AwsCallFailed:
            pass  # the report (metric, logs) still carries it
