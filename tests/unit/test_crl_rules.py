"""The CRL's content at a fixed time (RFC 5280 section 5), from revocations in the in-memory store,
signed with the local issuing key: entries, reasons, invalidity dates, numbers and which
revocations a CRL keeps."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from kmsca.ca import CaSigner
from kmsca.crl import build_crl, merge_revocations
from kmsca.records import RevokedEntry

from tests.support.local_ca import local_hierarchy
from tests.support.memory_store import MemoryStore
from tests.support.records import NOW, certificate_record


def _signer() -> CaSigner:
    hierarchy = local_hierarchy()
    return CaSigner(hierarchy.issuing, hierarchy.ca.private_key, hierarchy.ca.scheme)


def _store_with_revocations() -> MemoryStore:
    store = MemoryStore()
    for serial, days in (("0a", 10), ("0b", 20), ("0c", 30)):
        store.put_certificate(certificate_record(serial, not_after=NOW + timedelta(days=days)))
    store.revoke("0a", "keyCompromise", NOW, NOW - timedelta(days=2))
    store.revoke("0b", "unspecified", NOW + timedelta(hours=1), None)
    return store


def test_a_crl_lists_each_revocation_with_its_reason_and_invalidity_date() -> None:
    signer = _signer()
    entries = list(_store_with_revocations().list_revoked("issuing", NOW))
    crl = build_crl(signer, entries, 7, NOW + timedelta(hours=2), NOW + timedelta(days=1))
    assert crl.is_signature_valid(signer.record.certificate.public_key())  # type: ignore[arg-type]
    assert crl.issuer.public_bytes() == signer.record.certificate.subject.public_bytes()
    assert crl.last_update_utc == NOW + timedelta(hours=2)
    assert crl.next_update_utc == NOW + timedelta(days=1)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    compromised = crl.get_revoked_certificate_by_serial_number(0x0A)
    assert compromised is not None and compromised.revocation_date_utc == NOW
    assert (
        compromised.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    )
    invalidity = compromised.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == NOW - timedelta(days=2)
    unspecified = crl.get_revoked_certificate_by_serial_number(0x0B)
    assert unspecified is not None and len(unspecified.extensions) == 0  # no reasonCode for unspecified (5.3.1)
    assert crl.get_revoked_certificate_by_serial_number(0x0C) is None  # not revoked


def test_expired_revocations_leave_the_crl_after_one_validity_period() -> None:
    store = _store_with_revocations()
    assert [e.serial_number for e in store.list_revoked("issuing", NOW + timedelta(days=15))] == ["0b"]
    assert list(store.list_revoked("issuing", NOW + timedelta(days=21))) == []


def test_a_revocation_carried_by_the_stream_replaces_the_stale_index_entry() -> None:
    indexed = [RevokedEntry("0a", NOW, "unspecified", None, NOW + timedelta(days=10))]
    carried = [
        RevokedEntry("0a", NOW, "keyCompromise", None, NOW + timedelta(days=10)),
        RevokedEntry("0d", NOW, "superseded", None, NOW - timedelta(days=1)),  # expired: not kept
    ]
    merged = merge_revocations(indexed, carried, NOW)
    assert [(e.serial_number, e.reason) for e in merged] == [("0a", "keyCompromise")]


def test_crl_numbers_are_never_handed_out_twice() -> None:
    store = MemoryStore()
    assert [store.next_crl_number("issuing") for _ in range(3)] == [1, 2, 3]
