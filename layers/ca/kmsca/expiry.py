"""The daily expiry job: notices before certificates expire, and the supersession sweep.

- End-entity certificates: one read of the index by notAfter (:class:`~kmsca.store.CertificateIndex`;
  on DynamoDB a Query of ``ByCaExpiry``, ``ca = issuing AND not_after BETWEEN now AND now + the
  largest threshold``, one per 1 MB page; never a Scan) finds the issued certificates
  expiring within the thresholds (days, default 30, 14, 7, 3, 1). Each is due the notice of the
  smallest threshold it has reached (13.5 days left: the 14-day notice; a missed day never sends
  the stale 30-day notice after the 14-day one).
- CA certificates: the root and issuing records (one BatchGetItem), thresholds 365, 180, 90, 30.
- Each notice is claimed once per certificate and threshold with a conditional PutItem of
  ``NOTICE#<serial>#<days>`` (TTL one day after notAfter): a second run, or two overlapping runs,
  send nothing twice. One EventBridge event per claimed notice (``Certificate Expiring`` /
  ``CA Certificate Expiring``), one SNS digest per run. A notice whose event could not be put is
  released (DeleteItem) so that the next run sends it, and counted as a failure.
- Renewals that asked for their predecessor's revocation: revoked as ``superseded`` when due
  (Query of ``ByCaExpiry`` under :data:`~kmsca.store.SUPERSEDE_DUE`), with a ``Certificate
  Superseded`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .errors import CertificateNotFound
from .events import (
    CA_CERTIFICATE_EXPIRING,
    CERTIFICATE_EXPIRING,
    CERTIFICATE_SUPERSEDED,
    Event,
    EventPublisher,
)
from .notify import Notifier
from .records import STATUS_ISSUED, iso
from .store import CertificateStore, IndexPosition
from .store.notices import NoticeMarkers
from .table_keys import notice_key

DEFAULT_THRESHOLDS = (30, 14, 7, 3, 1)
CA_THRESHOLDS = (365, 180, 90, 30)
#: Entries listed in one SNS digest (SNS messages are at most 256 KB); the rest are counted.
DIGEST_ENTRIES = 200


def due_threshold(not_after: datetime, now: datetime, thresholds: tuple[int, ...]) -> int | None:
    """The smallest threshold (days) that ``now`` has reached before ``not_after``; None when the
    certificate is further away than every threshold, or expired."""
    left = not_after - now
    if left <= timedelta(0):
        return None
    reached = [days for days in thresholds if left <= timedelta(days=days)]
    return min(reached) if reached else None


@dataclass
class ExpiryReport:
    """What one run did (JSON-serialisable; serial numbers and times only)."""

    notices: list[dict[str, Any]] = field(default_factory=list)
    already_sent: int = 0
    superseded: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    queries: int = 0
    #: entries of the index that could not be read: ``{"key", "problem"}`` (skipped, never stopping
    #: the others; the handler counts them in ``UnreadableRecords``).
    unreadable: list[dict[str, str]] = field(default_factory=list)


class ExpiryJob:
    """Finds what expires, notifies once per threshold, and sweeps due supersessions.

    Args:
        store: the index by notAfter (:class:`~kmsca.store.CertificateIndex`), the CA records,
            revocations and renewal links; on DynamoDB :class:`~kmsca.store.DynamoDbCertificateStore`.
        markers: the notice markers (:class:`~kmsca.store.notices.NoticeMarkers`; on DynamoDB
            :class:`~kmsca.store.dynamodb.notices.DynamoDbNoticeMarkers`).
        events: the EventBridge publisher; notifier: the SNS topic.
        thresholds: end-entity thresholds, days; ca_thresholds: CA certificate thresholds, days.
        ca: the issuing CA's name in the inventory.
    """

    def __init__(
        self,
        store: CertificateStore,
        markers: NoticeMarkers,
        events: EventPublisher,
        notifier: Notifier,
        thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS,
        ca_thresholds: tuple[int, ...] = CA_THRESHOLDS,
        ca: str = "issuing",
    ) -> None:
        self._store = store
        self._markers = markers
        self._events = events
        self._notifier = notifier
        self._thresholds = thresholds
        self._ca_thresholds = ca_thresholds
        self._ca = ca

    def run(self, now: datetime) -> ExpiryReport:
        report = ExpiryReport()
        candidates = [*self._expiring_certificates(now, report), *self._expiring_cas(now)]
        claimed = [notice for notice in candidates if self._claim(notice, report)]
        for event, code in self._events.publish([Event(n["detail_type"], n["detail"]) for n in claimed]):
            notice = next(n for n in claimed if n["detail"] == event.detail)
            self._release(notice)
            claimed.remove(notice)
            report.failed.append({"serial_number": event.detail["serial_number"], "error": code})
        report.notices = [n["detail"] for n in claimed]
        if claimed:
            self._digest(report.notices)
        self._sweep_supersessions(now, report)
        return report

    def _expiring_certificates(self, now: datetime, report: ExpiryReport) -> list[dict[str, Any]]:
        """Notices due for the issued certificates expiring within the largest threshold (every page
        of the index between ``now`` and the horizon, both inclusive; one read counted per page)."""
        horizon = now + timedelta(days=max(self._thresholds))
        notices = []
        start: IndexPosition | None = None
        while True:
            page = self._store.certificates_by_expiry(self._ca, now, horizon, start=start)
            report.queries += 1
            report.unreadable += [{"key": record.key, "problem": record.problem} for record in page.unreadable]
            for certificate in page.certificates:
                if certificate.status != STATUS_ISSUED:
                    continue
                days = due_threshold(certificate.not_after, now, self._thresholds)
                if days is None:
                    continue
                detail = {
                    "serial_number": certificate.serial_number,
                    "subject": certificate.subject,
                    "profile": certificate.profile,
                    "not_after": iso(certificate.not_after),
                    "threshold_days": days,
                    "requested_by": certificate.requested_by,
                    "acm_certificate_arn": certificate.acm_certificate_arn,
                }
                notices.append(
                    {"detail_type": CERTIFICATE_EXPIRING, "detail": detail, "not_after": certificate.not_after}
                )
            if page.resume is None:
                return notices
            start = page.resume

    def _expiring_cas(self, now: datetime) -> list[dict[str, Any]]:
        notices = []
        for name, record in sorted(self._store.get_cas(["root", self._ca]).items()):
            not_after = record.certificate.not_valid_after_utc
            days = due_threshold(not_after, now, self._ca_thresholds)
            if days is None:
                continue
            detail = {
                "ca": name,
                "serial_number": record.serial_number,
                "subject": record.certificate.subject.rfc4514_string(),
                "not_after": iso(not_after),
                "threshold_days": days,
            }
            notices.append({"detail_type": CA_CERTIFICATE_EXPIRING, "detail": detail, "not_after": not_after})
        return notices

    def _notice_key(self, notice: dict[str, Any]) -> str:
        detail = notice["detail"]
        return notice_key(detail["serial_number"], detail["threshold_days"], detail["ca"] if "ca" in detail else None)

    def _claim(self, notice: dict[str, Any], report: ExpiryReport) -> bool:
        """Claim the notice's marker; False when a run already sent it."""
        if self._markers.claim_notice(self._notice_key(notice), notice["not_after"] + timedelta(days=1)):
            return True
        report.already_sent += 1
        return False

    def _release(self, notice: dict[str, Any]) -> None:
        self._markers.release_notice(self._notice_key(notice))

    def _digest(self, notices: list[dict[str, Any]]) -> None:
        listed = notices[:DIGEST_ENTRIES]
        self._notifier.notify(
            "CertificatesExpiring",
            f"{len(notices)} certificate(s) expire soon",
            {"count": len(notices), "certificates": listed, "not_listed": len(notices) - len(listed)},
        )

    def _sweep_supersessions(self, now: datetime, report: ExpiryReport) -> None:
        superseded = []
        for serial_number in self._store.list_supersessions_due(now):
            try:
                self._store.revoke(serial_number, "superseded", now, None)
            except CertificateNotFound:
                report.failed.append({"serial_number": serial_number, "error": "CertificateNotFound"})
            self._store.finish_supersession(serial_number, now)
            superseded.append(serial_number)
        report.superseded = superseded
        events = [Event(CERTIFICATE_SUPERSEDED, {"serial_number": s, "revoked_at": iso(now)}) for s in superseded]
        for event, code in self._events.publish(events):
            report.failed.append({"serial_number": event.detail["serial_number"], "error": code})
