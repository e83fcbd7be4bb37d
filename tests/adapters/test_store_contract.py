"""The store's contract, run against both implementations: the DynamoDB adapter (on moto, with the
table template.yaml declares) and the in-memory double the unit tests use (tests/support). What
passes here for one passes for the other, so a unit test on the double says something true about
the adapter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from kmsca.errors import CertificateNotFound, RenewalRefused, SerialNumberCollision
from kmsca.records import STATUS_REVOKED, IdempotencyRecord, iso
from kmsca.store import (
    CertificateIndex,
    CertificateStore,
    DynamoDbCertificateStore,
    IdempotencyKeyInUse,
    IndexedCertificate,
    IndexPosition,
    PendingImportGone,
    Renewal,
)
from kmsca.store.dynamodb.notices import DynamoDbNoticeMarkers
from kmsca.store.notices import NoticeMarkers
from kmsca.table_keys import notice_key

from tests.support.aws import REGION, create_ca_table
from tests.support.memory_store import MemoryNoticeMarkers, MemoryStore
from tests.support.records import NOW, certificate_record

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0300c707-df1d-45aa-bd8a-79432d57d803"


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[CertificateStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    request.getfixturevalue("aws")
    client: Any = boto3.client("dynamodb", region_name=REGION)
    create_ca_table(client, "ca-table")
    yield DynamoDbCertificateStore(client, "ca-table")


def _idempotency(key: str = "k1", expires_in: timedelta = timedelta(hours=24)) -> IdempotencyRecord:
    return IdempotencyRecord(key, "request-hash", {"serial_number": "01"}, NOW + expires_in)


def test_a_certificate_is_recorded_once_and_read_back(store: CertificateStore) -> None:
    record = certificate_record("0a")
    store.put_certificate(record)
    store.put_certificate(record)  # the same write again (a retry): success, nothing changes
    assert store.get_certificate("0a") == record
    assert store.get_certificate("0b") is None
    with pytest.raises(SerialNumberCollision, match="serial number 0a is already recorded"):
        store.put_certificate(certificate_record("0a", fingerprint="f" * 64))


def test_an_idempotency_key_is_used_once_within_its_window(store: CertificateStore) -> None:
    store.put_certificate(certificate_record("01"), _idempotency(), NOW)
    assert store.get_idempotency("k1") == _idempotency()
    with pytest.raises(IdempotencyKeyInUse):
        store.put_certificate(certificate_record("02"), _idempotency(), NOW)
    assert store.get_certificate("02") is None  # nothing written
    store.put_certificate(certificate_record("03"), _idempotency(), NOW + timedelta(hours=25))  # window passed


def test_revoke_is_idempotent_and_lists_the_entry(store: CertificateStore) -> None:
    store.put_certificate(certificate_record("0c", not_after=NOW + timedelta(days=2)))
    store.put_certificate(certificate_record("0d", not_after=NOW + timedelta(days=1)))
    record, already = store.revoke("0c", "keyCompromise", NOW, None)
    assert (record.status, record.revocation_reason, record.revoked_at, already) == (
        STATUS_REVOKED,
        "keyCompromise",
        NOW,
        False,
    )
    again, already = store.revoke("0c", "superseded", NOW + timedelta(hours=1), None)
    assert (again.revocation_reason, again.revoked_at, already) == ("keyCompromise", NOW, True)
    entries = list(store.list_revoked("issuing", NOW))
    assert [(e.serial_number, e.reason, e.revoked_at) for e in entries] == [("0c", "keyCompromise", NOW)]
    assert list(store.list_revoked("issuing", NOW + timedelta(days=3))) == []
    assert store.still_revoked(["0c", "0d", "0e"], NOW) == {"0c"}
    assert store.still_revoked(["0c"], NOW + timedelta(days=3)) == set()
    with pytest.raises(CertificateNotFound):
        store.revoke("0e", "keyCompromise", NOW, None)


def test_crl_numbers_strictly_increase_per_ca(store: CertificateStore) -> None:
    assert [store.next_crl_number("issuing") for _ in range(3)] == [1, 2, 3]
    assert store.next_crl_number("root") == 1


def test_a_renewal_needs_an_issued_never_renewed_predecessor(store: CertificateStore) -> None:
    store.put_certificate(certificate_record("10"))
    store.put_certificate(certificate_record("11"), renewal=Renewal("10", NOW + timedelta(days=1)))
    renewal = store.get_renewal("10")
    assert renewal is not None and renewal["successor"] == "11"
    with pytest.raises(RenewalRefused):
        store.put_certificate(certificate_record("12"), renewal=Renewal("10"))
    with pytest.raises(RenewalRefused):
        store.put_certificate(certificate_record("13"), renewal=Renewal("99"))
    assert store.get_certificate("12") is None and store.get_certificate("13") is None
    assert store.list_supersessions_due(NOW) == []
    assert store.list_supersessions_due(NOW + timedelta(days=1)) == ["10"]
    store.finish_supersession("10", NOW + timedelta(days=1))
    assert store.list_supersessions_due(NOW + timedelta(days=2)) == []


def test_a_first_import_moves_from_pending_to_active(store: CertificateStore) -> None:
    pending = certificate_record("20")
    store.put_pending_import(pending, NOW)
    assert store.list_pending_imports() == ["20"]
    found = store.get_pending_import("20")
    assert found is not None and (found.since, found.supersedes) == (NOW, None)
    imported = certificate_record("20", acm_certificate_arn=ARN)
    store.finish_import(imported, _idempotency("k2"), NOW)
    assert store.list_pending_imports() == [] and store.get_pending_import("20") is None
    assert store.get_certificate("20") == imported
    assert store.list_acm_due(NOW + timedelta(days=31)) == [("20", ARN)]
    assert store.list_acm_due(NOW) == []


def test_a_failed_import_is_revoked_and_leaves_the_pending_list(store: CertificateStore) -> None:
    record = certificate_record("21")
    store.put_pending_import(record, NOW)
    assert store.fail_pending_import(record, NOW) is True
    assert store.fail_pending_import(record, NOW) is False
    failed = store.get_certificate("21")
    assert failed is not None and (failed.status, failed.revocation_reason) == (STATUS_REVOKED, "cessationOfOperation")
    assert store.list_pending_imports() == []
    with pytest.raises(PendingImportGone):
        store.finish_import(certificate_record("21", acm_certificate_arn=ARN, fingerprint="e" * 64))
    with pytest.raises(PendingImportGone):
        store.adopt_import("21", ARN)


def test_a_rotation_lease_is_held_by_one_run(store: CertificateStore) -> None:
    store.put_certificate(certificate_record("30", acm_certificate_arn=ARN))
    assert store.claim_rotation("30", NOW, timedelta(minutes=15)) is True
    assert store.claim_rotation("30", NOW + timedelta(minutes=1), timedelta(minutes=15)) is False
    assert store.claim_rotation("30", NOW + timedelta(minutes=16), timedelta(minutes=15)) is True
    store.release_rotation("30")
    assert store.claim_rotation("30", NOW, timedelta(minutes=15)) is True
    assert store.claim_rotation("31", NOW, timedelta(minutes=15)) is False  # not managed


def test_a_rotation_puts_the_new_certificate_behind_the_arn_and_revokes_the_old(store: CertificateStore) -> None:
    store.put_certificate(certificate_record("40", acm_certificate_arn=ARN))
    new = certificate_record("41", acm_certificate_arn=ARN, not_after=NOW + timedelta(days=90))
    store.put_pending_import(new, NOW, supersedes="40")
    pending = store.get_pending_import("41")
    assert pending is not None and pending.supersedes == "40"
    store.record_rotation(new, "40", NOW)
    store.record_rotation(new, "40", NOW)  # recorded already: success
    old = store.get_certificate("40")
    assert old is not None and (old.status, old.revocation_reason) == (STATUS_REVOKED, "superseded")
    assert store.list_acm_due(NOW + timedelta(days=91)) == [("41", ARN)]
    store.mark_acm_missing("41", NOW)
    assert store.list_acm_due(NOW + timedelta(days=91)) == []


def test_an_adopted_import_gets_its_arn(store: CertificateStore) -> None:
    store.put_pending_import(certificate_record("50"), NOW)
    store.adopt_import("50", ARN)
    adopted = store.get_certificate("50")
    assert adopted is not None and adopted.acm_certificate_arn == ARN
    assert store.list_acm_due(NOW + timedelta(days=31)) == [("50", ARN)]
    store.put_pending_import(certificate_record("51"), NOW)
    store.revoke("51", "keyCompromise", NOW, None)
    store.abandon_pending_import("51")
    assert store.list_pending_imports() == []


@pytest.fixture(params=["memory", "dynamodb"])
def markers(request: pytest.FixtureRequest) -> Iterator[NoticeMarkers]:
    if request.param == "memory":
        yield MemoryNoticeMarkers()
        return
    request.getfixturevalue("aws")
    client: Any = boto3.client("dynamodb", region_name=REGION)
    create_ca_table(client, "ca-table")
    yield DynamoDbNoticeMarkers(client, "ca-table")


def test_a_notice_marker_is_claimed_once_until_released(markers: NoticeMarkers) -> None:
    key = notice_key("0a1b", 30)
    assert markers.claim_notice(key, NOW + timedelta(days=31)) is True
    assert markers.claim_notice(key, NOW + timedelta(days=31)) is False  # a second run: already sent
    assert markers.claim_notice(notice_key("0a1b", 14), NOW + timedelta(days=15)) is True  # another threshold
    markers.release_notice(key)  # the notice could not be sent: the next run sends it
    assert markers.claim_notice(key, NOW + timedelta(days=31)) is True
    markers.release_notice(notice_key("0c0d", 7))  # releasing an unknown marker changes nothing


def _read_all(index: CertificateIndex, ca: str, limit: int | None, **bounds: Any) -> tuple[list[str], int]:
    """Every serial number of the range, page after page, and the number of reads."""
    serials: list[str] = []
    start: IndexPosition | None = None
    reads = 0
    while True:
        page = index.certificates_by_expiry(ca, limit=limit, start=start, **bounds)
        reads += 1
        assert limit is None or len(page.certificates) <= limit
        serials += [c.serial_number for c in page.certificates]
        if page.resume is None:
            return serials, reads
        start = page.resume


def test_the_index_pages_through_a_cas_certificates_by_not_after(store: CertificateStore) -> None:
    for days, serial in [(5, "65"), (1, "61"), (3, "63"), (2, "62"), (4, "64")]:
        store.put_certificate(certificate_record(serial, not_after=NOW + timedelta(days=days)))
    store.put_certificate(certificate_record("70", ca="other", not_after=NOW + timedelta(days=1)))
    serials, reads = _read_all(store, "issuing", 2)
    assert serials == ["61", "62", "63", "64", "65"] and reads >= 3
    assert _read_all(store, "issuing", None)[0] == serials
    assert _read_all(store, "other", 2)[0] == ["70"]
    assert _read_all(store, "nobody", 2) == ([], 1)


def test_a_read_resumes_after_any_entrys_position(store: CertificateStore) -> None:
    for days, serial in [(1, "61"), (2, "62"), (3, "63")]:
        store.put_certificate(certificate_record(serial, not_after=NOW + timedelta(days=days)))
    first = store.certificates_by_expiry("issuing", limit=3).certificates
    assert first[0].position == IndexPosition("issuing", iso(NOW + timedelta(days=1)), "61")
    rest = store.certificates_by_expiry("issuing", start=first[0].position)
    assert [c.serial_number for c in rest.certificates] == ["62", "63"] and rest.resume is None


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"not_after_from": NOW + timedelta(days=1), "not_after_to": NOW + timedelta(days=3)}, ["61", "62", "63"]),
        ({"not_after_from": NOW + timedelta(days=2)}, ["62", "63", "64"]),
        ({"not_after_to": NOW + timedelta(days=2)}, ["61"]),
        ({"not_after_from": NOW + timedelta(days=2), "not_after_to": NOW + timedelta(days=2)}, ["62"]),
        ({"not_after_from": NOW + timedelta(days=3, seconds=1)}, ["64"]),
        ({"not_after_to": NOW + timedelta(days=1)}, []),
    ],
    ids=["between-inclusive", "from-inclusive", "to-exclusive", "between-one-instant", "from-next-second", "to-first"],
)
def test_the_index_range_edges(store: CertificateStore, bounds: dict[str, Any], expected: list[str]) -> None:
    for days in (1, 2, 3, 4):
        store.put_certificate(certificate_record(f"6{days}", not_after=NOW + timedelta(days=days)))
    assert _read_all(store, "issuing", 2, **bounds)[0] == expected


def test_an_index_entry_holds_the_listed_attributes(store: CertificateStore) -> None:
    record = replace(
        certificate_record("80", acm_certificate_arn=ARN, predecessor="7f"),
        sans=("dns:a.example.com", "ip:192.0.2.1"),
        requested_by="team-a",
    )
    store.put_certificate(record)
    store.put_certificate(certificate_record("81", not_after=NOW + timedelta(days=31)))
    store.revoke("81", "keyCompromise", NOW, None)
    entry, revoked = store.certificates_by_expiry("issuing").certificates
    assert entry == IndexedCertificate(
        serial_number="80",
        not_after=record.not_after,
        status="issued",
        subject="CN=device-80",
        profile="client",
        issued_at=NOW,
        position=IndexPosition("issuing", iso(record.not_after), "80"),
        sans=("dns:a.example.com", "ip:192.0.2.1"),
        requested_by="team-a",
        acm_certificate_arn=ARN,
        predecessor="7f",
    )
    assert (revoked.status, revoked.revocation_reason, revoked.sans, revoked.requested_by) == (
        STATUS_REVOKED,
        "keyCompromise",
        (),
        None,
    )
