"""The issuance pipeline at a fixed time, with the in-memory store and a local issuing key.

Each test runs ``Issuer`` end to end (checks, one signature, one write) without AWS: what is
signed is checked with cryptography, what is stored is read back from the store. The same pipeline
against moto and the handler is tests/handlers/test_issue.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kmsca.errors import (
    IdempotencyKeyReused,
    InvalidCsr,
    InvalidLifetime,
    LifetimeExceeded,
    RenewalRefused,
)
from kmsca.issuance import IssuancePolicy, Issuer
from kmsca.models import IssueRequest
from kmsca.records import STATUS_ISSUED, serial_to_hex

from tests.support.csr import csr_pem, make_csr
from tests.support.local_ca import BASE_URL, LocalHierarchy, local_hierarchy
from tests.support.memory_store import MemoryStore
from tests.support.records import NOW

POLICY = IssuancePolicy(max_lifetime_days=365, default_lifetime_days=90)
DEVICE_KEY = ec.derive_private_key(0xD1CE, ec.SECP256R1())
#: One CSR for the whole module (ECDSA signatures are randomised: a new CSR is a new request).
DEVICE_CSR = csr_pem(make_csr(DEVICE_KEY))


@pytest.fixture
def hierarchy() -> LocalHierarchy:
    return local_hierarchy()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def issuer(hierarchy: LocalHierarchy, store: MemoryStore) -> Issuer:
    return Issuer(hierarchy.ca, store, POLICY)


def _request(**fields: Any) -> IssueRequest:
    fields.setdefault("csr", DEVICE_CSR)
    return IssueRequest(**fields)


def _certificate(response: dict[str, str]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(response["certificate"].encode())


def test_a_client_certificate_is_signed_by_the_issuing_ca_and_recorded(
    issuer: Issuer, hierarchy: LocalHierarchy, store: MemoryStore
) -> None:
    outcome = issuer.issue(_request(requested_by="arn:aws:iam::123456789012:user/alice"), NOW)
    certificate = _certificate(outcome.response)
    issuing = hierarchy.issuing.certificate
    certificate.verify_directly_issued_by(issuing)
    assert certificate.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert certificate.not_valid_after_utc == NOW + timedelta(days=90)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "device-1"
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name is not None and points[0].full_name[0].value == f"{BASE_URL}/issuing.crl"
    assert outcome.replayed is False
    assert outcome.response["certificate_chain"] == hierarchy.ca.chain_pem
    assert "private_key" not in outcome.response

    record = store.get_certificate(serial_to_hex(certificate.serial_number))
    assert record is not None
    assert (record.status, record.profile, record.issued_at) == (STATUS_ISSUED, "client", NOW)
    assert record.requested_by == "arn:aws:iam::123456789012:user/alice"
    assert record.certificate_pem == outcome.response["certificate"]


@pytest.mark.parametrize(("days", "error"), [(366, LifetimeExceeded), (0, InvalidLifetime)])
def test_a_refused_lifetime_signs_and_stores_nothing(
    issuer: Issuer, store: MemoryStore, days: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        issuer.issue(_request(lifetime_days=days), NOW)
    assert store.certificates == {}


def test_a_certificate_never_outlives_its_issuing_ca(store: MemoryStore) -> None:
    short = local_hierarchy(issuing_lifetime=timedelta(days=30))
    with pytest.raises(LifetimeExceeded, match="would outlive the issuing CA, which expires 2026-12-21T08:00:00Z"):
        Issuer(short.ca, store, POLICY).issue(_request(lifetime_days=31), NOW)
    assert store.certificates == {}


def test_a_csr_whose_signature_does_not_verify_is_refused(issuer: Issuer, store: MemoryStore) -> None:
    lines = DEVICE_CSR.splitlines()
    body = "".join(lines[1:-1])
    tampered = body[:-8] + ("A" if body[-8] != "A" else "B") + body[-7:]
    forged = "\n".join([lines[0], *[tampered[i : i + 64] for i in range(0, len(tampered), 64)], lines[-1]])
    with pytest.raises(InvalidCsr):
        issuer.issue(_request(csr=forged), NOW)
    assert store.certificates == {}


def test_the_same_idempotency_key_and_request_get_the_first_certificate(issuer: Issuer, store: MemoryStore) -> None:
    first = issuer.issue(_request(idempotency_key="order-42"), NOW)
    again = issuer.issue(_request(idempotency_key="order-42"), NOW + timedelta(hours=1))
    assert again.replayed is True and again.response == first.response
    assert len(store.certificates) == 1


def test_an_idempotency_key_reused_for_another_request_is_refused(issuer: Issuer, store: MemoryStore) -> None:
    issuer.issue(_request(idempotency_key="order-42"), NOW)
    with pytest.raises(IdempotencyKeyReused, match="used in the last 24 hours for a different request"):
        issuer.issue(_request(idempotency_key="order-42", lifetime_days=30), NOW + timedelta(hours=1))
    assert len(store.certificates) == 1


def test_an_idempotency_key_may_be_used_again_after_its_window(issuer: Issuer, store: MemoryStore) -> None:
    first = issuer.issue(_request(idempotency_key="order-42"), NOW)
    later = issuer.issue(_request(idempotency_key="order-42"), NOW + timedelta(hours=25))
    assert later.replayed is False and later.response["serial_number"] != first.response["serial_number"]
    assert len(store.certificates) == 2


def test_a_renewal_keeps_the_subject_and_links_the_predecessor_once(issuer: Issuer, store: MemoryStore) -> None:
    first = issuer.issue(_request(), NOW)
    serial = first.response["serial_number"]
    renewed = issuer.issue(_request(renews=serial, revoke_renewed_after_hours=24), NOW + timedelta(days=60))
    successor = renewed.response["serial_number"]
    assert _certificate(renewed.response).subject == _certificate(first.response).subject
    record = store.get_certificate(successor)
    assert record is not None and record.predecessor == serial
    assert store.get_renewal(serial) == {
        "successor": successor,
        "renewed_at": "2027-01-20T08:00:00Z",
        "revoke_at": "2027-01-21T08:00:00Z",
    }
    with pytest.raises(RenewalRefused):
        issuer.issue(_request(renews=serial), NOW + timedelta(days=61))
    assert len(store.certificates) == 2
