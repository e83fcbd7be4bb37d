"""Every storage protocol of :mod:`kmsca.store` in memory, for unit tests of the CA's rules.

:class:`MemoryStore` keeps the DynamoDB adapter's contract (``kmsca.store.dynamodb``): the same
conditions (a serial number is recorded once; an idempotency key is used once within its window; a
renewal needs an ``issued``, never-renewed predecessor; imports move pending -> active / failed; the
index by notAfter reads a CA's certificates in the same order and range), the same domain errors, and times stored to the whole second, as the table stores them. It makes no
AWS call and needs no moto: a test builds one, hands it to the code under test and reads it back.

What it does not model: index lag, lost replies and transaction conflicts (those are the adapter's
and are tested against moto and botocore's Stubber).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kmsca.errors import CertificateNotFound, RenewalRefused, SerialNumberCollision
from kmsca.records import (
    STATUS_ISSUED,
    STATUS_REVOKED,
    CaRecord,
    CertificateRecord,
    IdempotencyRecord,
    RevokedEntry,
    UnreadableRecord,
    iso,
    parse_iso,
)
from kmsca.store import (
    IMPORT_FAILED_REASON,
    CertificateStore,
    IdempotencyKeyInUse,
    IndexedCertificate,
    IndexPage,
    IndexPosition,
    PendingImport,
    PendingImportGone,
    Renewal,
)

ACTIVE, PENDING = "active", "pending"


def _stored(moment: datetime) -> datetime:
    """``moment`` as the table gives it back: UTC, to the whole second."""
    return parse_iso(iso(moment))


def _stored_record(record: CertificateRecord) -> CertificateRecord:
    return replace(
        record,
        not_before=_stored(record.not_before),
        not_after=_stored(record.not_after),
        issued_at=_stored(record.issued_at),
        revoked_at=_stored(record.revoked_at) if record.revoked_at else None,
        invalidity_date=_stored(record.invalidity_date) if record.invalidity_date else None,
    )


@dataclass
class _Certificate:
    """One certificate item: the record and the ACM bookkeeping the table keeps beside it."""

    record: CertificateRecord
    acm: str | None = None  # "active" (current certificate behind an ARN), "pending" (before import), None
    pending_since: datetime | None = None
    supersedes: str | None = None
    lease_until: datetime | None = None
    superseded_by: str | None = None
    acm_state: str | None = None


@dataclass
class _RenewalLink:
    successor: str
    renewed_at: datetime
    revoke_at: datetime | None
    superseded_at: datetime | None = None


class MemoryStore:
    """:class:`kmsca.store.CertificateStore` in memory (see the module docstring).

    Attributes:
        cas, certificates, idempotency, renewals, crl_numbers: the stored items, by name / serial
            number / key hash / predecessor / CA, for tests that look inside.
    """

    def __init__(self) -> None:
        self.cas: dict[str, CaRecord] = {}
        self.certificates: dict[str, _Certificate] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.renewals: dict[str, _RenewalLink] = {}
        self.crl_numbers: dict[str, int] = {}

    # CA records ----------------------------------------------------------------------------

    def get_cas(self, names: list[str]) -> dict[str, CaRecord]:
        return {name: self.cas[name] for name in names if name in self.cas}

    def put_ca(self, record: CaRecord) -> CaRecord:
        return self.cas.setdefault(record.name, replace(record, created_at=_stored(record.created_at)))

    def replace_ca(self, record: CaRecord, previous_serial: str) -> CaRecord:
        if self.cas[record.name].serial_number == previous_serial:
            self.cas[record.name] = replace(record, created_at=_stored(record.created_at))
        return self.cas[record.name]

    # Certificates --------------------------------------------------------------------------

    def put_certificate(
        self,
        record: CertificateRecord,
        idempotency: IdempotencyRecord | None = None,
        now: datetime | None = None,
        renewal: Renewal | None = None,
    ) -> None:
        if renewal is not None:
            predecessor = self.certificates.get(renewal.predecessor)
            if (
                predecessor is None
                or predecessor.record.status != STATUS_ISSUED
                or renewal.predecessor in self.renewals
            ):
                raise RenewalRefused(
                    "the certificate to renew is revoked, unknown or already renewed (show it to see its successor); "
                    "nothing was issued"
                )
        existing = self.certificates.get(record.serial_number)
        if existing is not None:
            if existing.record.fingerprint_sha256 == record.fingerprint_sha256 and existing.acm != PENDING:
                return  # this very write, recorded already
            raise SerialNumberCollision(f"serial number {record.serial_number} is already recorded; nothing was issued")
        self._check_idempotency(idempotency, now)
        self.certificates[record.serial_number] = _Certificate(
            _stored_record(record), ACTIVE if record.acm_certificate_arn else None
        )
        self._put_idempotency(idempotency)
        if renewal is not None:
            self.renewals[renewal.predecessor] = _RenewalLink(
                record.serial_number,
                _stored(record.issued_at),
                _stored(renewal.revoke_at) if renewal.revoke_at else None,
            )

    def _check_idempotency(self, idempotency: IdempotencyRecord | None, now: datetime | None) -> None:
        if idempotency is None:
            return
        first = self.idempotency.get(idempotency.key_hash)
        if first is not None and (now is None or first.expires_at > now):
            raise IdempotencyKeyInUse("the idempotency key was used by another request")

    def _put_idempotency(self, idempotency: IdempotencyRecord | None) -> None:
        if idempotency is not None:
            self.idempotency[idempotency.key_hash] = replace(idempotency, expires_at=_stored(idempotency.expires_at))

    def get_certificate(self, serial_number: str) -> CertificateRecord | None:
        item = self.certificates.get(serial_number)
        return item.record if item else None

    # Revocations ---------------------------------------------------------------------------

    def revoke(
        self, serial_number: str, reason: str, revoked_at: datetime, invalidity_date: datetime | None
    ) -> tuple[CertificateRecord, bool]:
        item = self.certificates.get(serial_number)
        if item is None:
            raise CertificateNotFound(f"no certificate with serial number {serial_number} was issued by this CA")
        if item.record.status != STATUS_ISSUED:
            return item.record, True
        item.record = _stored_record(
            replace(
                item.record,
                status=STATUS_REVOKED,
                revoked_at=revoked_at,
                revocation_reason=reason,
                invalidity_date=invalidity_date,
            )
        )
        return item.record, False

    def list_revoked(
        self, ca: str, not_after_from: datetime, problems: list[UnreadableRecord] | None = None
    ) -> Iterator[RevokedEntry]:
        revoked = [
            i.record
            for i in self.certificates.values()
            if i.record.status == STATUS_REVOKED and i.record.ca == ca and i.record.not_after >= not_after_from
        ]
        for record in sorted(revoked, key=lambda r: r.not_after):
            assert record.revoked_at is not None and record.revocation_reason is not None
            yield RevokedEntry(
                record.serial_number,
                record.revoked_at,
                record.revocation_reason,
                record.invalidity_date,
                record.not_after,
            )

    def still_revoked(self, serial_numbers: list[str], now: datetime) -> set[str]:
        return {
            s
            for s in serial_numbers
            if (item := self.certificates.get(s)) is not None
            and item.record.status == STATUS_REVOKED
            and item.record.not_after >= now
        }

    # Renewal links -------------------------------------------------------------------------

    def get_renewal(self, serial_number: str) -> dict[str, str] | None:
        link = self.renewals.get(serial_number)
        if link is None:
            return None
        values = {
            "successor": link.successor,
            "renewed_at": iso(link.renewed_at),
            "revoke_at": iso(link.revoke_at) if link.revoke_at else None,
            "superseded_at": iso(link.superseded_at) if link.superseded_at else None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def list_supersessions_due(self, now: datetime) -> list[str]:
        due = [
            (link.revoke_at, predecessor)
            for predecessor, link in self.renewals.items()
            if link.revoke_at is not None and link.superseded_at is None and link.revoke_at <= now
        ]
        return [predecessor for _, predecessor in sorted(due)]

    def finish_supersession(self, predecessor: str, now: datetime) -> None:
        self.renewals[predecessor].superseded_at = _stored(now)

    # CRL numbers and idempotency -----------------------------------------------------------

    def next_crl_number(self, ca: str) -> int:
        self.crl_numbers[ca] = self.crl_numbers.get(ca, 0) + 1
        return self.crl_numbers[ca]

    def get_idempotency(self, key_hash: str) -> IdempotencyRecord | None:
        return self.idempotency.get(key_hash)

    # ACM imports ---------------------------------------------------------------------------

    def put_pending_import(self, record: CertificateRecord, now: datetime, supersedes: str | None = None) -> None:
        existing = self.certificates.get(record.serial_number)
        if existing is not None:
            if existing.record.fingerprint_sha256 == record.fingerprint_sha256 and existing.acm == PENDING:
                return
            raise SerialNumberCollision(f"serial number {record.serial_number} is already recorded; nothing was issued")
        self.certificates[record.serial_number] = _Certificate(
            _stored_record(record), PENDING, _stored(now), supersedes, acm_state="pending_import"
        )

    def finish_import(
        self, record: CertificateRecord, idempotency: IdempotencyRecord | None = None, now: datetime | None = None
    ) -> None:
        existing = self.certificates.get(record.serial_number)
        if existing is None or existing.acm != PENDING or existing.record.status != STATUS_ISSUED:
            if existing is not None and existing.record.fingerprint_sha256 == record.fingerprint_sha256:
                if existing.acm != PENDING:
                    return  # finished already
            raise PendingImportGone(f"certificate {record.serial_number} is no longer pending its ACM import")
        self._check_idempotency(idempotency, now)
        self.certificates[record.serial_number] = _Certificate(
            _stored_record(record), ACTIVE if record.acm_certificate_arn else None
        )
        self._put_idempotency(idempotency)

    def fail_pending_import(self, record: CertificateRecord, now: datetime) -> bool:
        item = self.certificates.get(record.serial_number)
        if item is None or item.acm != PENDING or item.record.status != STATUS_ISSUED:
            return False
        item.record = _stored_record(
            replace(record, status=STATUS_REVOKED, revoked_at=now, revocation_reason=IMPORT_FAILED_REASON)
        )
        item.acm, item.acm_state = None, "import_failed"
        return True

    def list_pending_imports(self) -> list[str]:
        return [s for s, item in self.certificates.items() if item.acm == PENDING]

    def get_pending_import(self, serial_number: str) -> PendingImport | None:
        item = self.certificates.get(serial_number)
        if item is None or item.acm != PENDING or item.pending_since is None:
            return None
        return PendingImport(item.record, item.pending_since, item.supersedes)

    def adopt_import(self, serial_number: str, arn: str) -> None:
        item = self.certificates.get(serial_number)
        if item is None or item.acm != PENDING:
            raise PendingImportGone(f"certificate {serial_number} is no longer pending its ACM import")
        item.record = replace(item.record, acm_certificate_arn=arn)
        item.acm, item.acm_state, item.pending_since = ACTIVE, None, None

    def abandon_pending_import(self, serial_number: str) -> None:
        item = self.certificates.get(serial_number)
        if item is not None and item.acm == PENDING:
            item.acm, item.acm_state, item.pending_since = None, "import_failed", None

    # ACM rotations -------------------------------------------------------------------------

    def list_acm_due(self, not_after_before: datetime) -> list[tuple[str, str]]:
        due = [
            item.record
            for item in self.certificates.values()
            if item.acm == ACTIVE
            and (item.record.not_after < _stored(not_after_before) or item.record.status == STATUS_REVOKED)
        ]
        return [(r.serial_number, r.acm_certificate_arn or "") for r in sorted(due, key=lambda r: r.not_after)]

    def claim_rotation(self, serial_number: str, now: datetime, lease: timedelta) -> bool:
        item = self.certificates.get(serial_number)
        if item is None or item.acm != ACTIVE or (item.lease_until is not None and item.lease_until >= now):
            return False
        item.lease_until = _stored(now + lease)
        return True

    def release_rotation(self, serial_number: str) -> None:
        if serial_number in self.certificates:
            self.certificates[serial_number].lease_until = None

    def record_rotation(
        self, new: CertificateRecord, old_serial_number: str, now: datetime, old_revoked: bool = False
    ) -> None:
        fresh, old = self.certificates.get(new.serial_number), self.certificates.get(old_serial_number)
        wanted = STATUS_REVOKED if old_revoked else STATUS_ISSUED
        if fresh is None or fresh.acm != PENDING or old is None or old.record.status != wanted:
            if fresh is not None and fresh.acm == ACTIVE:
                return  # recorded already
            raise RuntimeError("the rotation transaction was cancelled (TransactionCanceledException)")
        fresh.acm, fresh.acm_state, fresh.pending_since = ACTIVE, None, None
        if not old_revoked:
            old.record = _stored_record(
                replace(old.record, status=STATUS_REVOKED, revoked_at=now, revocation_reason="superseded")
            )
        old.superseded_by, old.acm, old.lease_until = new.serial_number, None, None

    def mark_acm_missing(self, serial_number: str, now: datetime) -> None:
        item = self.certificates[serial_number]
        item.acm, item.lease_until = None, None

    # The index by notAfter -----------------------------------------------------------------

    def certificates_by_expiry(
        self,
        ca: str,
        not_after_from: datetime | None = None,
        not_after_to: datetime | None = None,
        limit: int | None = None,
        start: IndexPosition | None = None,
    ) -> IndexPage:
        low = iso(not_after_from) if not_after_from else None
        high = iso(not_after_to) if not_after_to else None

        def in_range(not_after: str) -> bool:
            if low and high:
                return low <= not_after <= high  # BETWEEN: both ends inclusive
            return (low is None or not_after >= low) and (high is None or not_after < high)

        entries = sorted(
            (_indexed(item.record) for item in self.certificates.values() if item.record.ca == ca),
            key=lambda e: (e.position.not_after, e.serial_number),
        )
        entries = [e for e in entries if in_range(e.position.not_after)]
        if start is not None:
            after = (start.not_after, start.serial_number)
            entries = [e for e in entries if (e.position.not_after, e.serial_number) > after]
        page = entries if limit is None else entries[:limit]
        more = len(page) < len(entries)
        return IndexPage(page, page[-1].position if more else None)


def _indexed(record: CertificateRecord) -> IndexedCertificate:
    """What the index holds of a stored record."""
    return IndexedCertificate(
        serial_number=record.serial_number,
        not_after=record.not_after,
        status=record.status,
        subject=record.subject,
        profile=record.profile,
        issued_at=record.issued_at,
        position=IndexPosition(record.ca, iso(record.not_after), record.serial_number),
        sans=tuple(record.sans),
        requested_by=record.requested_by,
        acm_certificate_arn=record.acm_certificate_arn,
        revocation_reason=record.revocation_reason,
        predecessor=record.predecessor,
    )



class MemoryNoticeMarkers:
    """:class:`kmsca.store.notices.NoticeMarkers` in memory: key -> expires_at."""

    def __init__(self) -> None:
        self.markers: dict[str, datetime] = {}

    def claim_notice(self, key: str, expires_at: datetime) -> bool:
        if key in self.markers:
            return False
        self.markers[key] = expires_at
        return True

    def release_notice(self, key: str) -> None:
        self.markers.pop(key, None)


if TYPE_CHECKING:
    from kmsca.store.notices import NoticeMarkers

    _check: CertificateStore = MemoryStore()  # mypy: every protocol is implemented
    _check_notices: NoticeMarkers = MemoryNoticeMarkers()
