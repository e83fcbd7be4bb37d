"""CloudFront origin certificates at a fixed time: the CA generates the key, records the
certificate as pending, imports it into ACM (a stand-in) and records the ARN; a refused import
leaves a revoked record and nothing served. In-memory store, local issuing key, no AWS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from kmsca.errors import AwsCallFailed, CaNotReady, InvalidRequest, InvalidSubjectAlternativeName, KeyPolicyViolation
from kmsca.issuance import IssuancePolicy, Issuer
from kmsca.models import IssueRequest, SanModel
from kmsca.records import STATUS_ISSUED, STATUS_REVOKED

from tests.support.fake_acm import FakeAcm
from tests.support.local_ca import LocalHierarchy, local_hierarchy
from tests.support.memory_store import MemoryStore
from tests.support.records import NOW

POLICY = IssuancePolicy(max_lifetime_days=365, default_lifetime_days=90)
ORIGIN = "origin.example.com"


@pytest.fixture
def hierarchy() -> LocalHierarchy:
    return local_hierarchy()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def acm() -> FakeAcm:
    return FakeAcm()


@pytest.fixture
def issuer(hierarchy: LocalHierarchy, store: MemoryStore, acm: FakeAcm) -> Issuer:
    return Issuer(hierarchy.ca, store, POLICY, acm)  # type: ignore[arg-type]


def _origin(**fields: object) -> IssueRequest:
    fields.setdefault("sans", [SanModel(type="dns", value=ORIGIN)])
    return IssueRequest(profile="cloudfront-origin", **fields)  # type: ignore[arg-type]


def test_the_certificate_and_its_generated_key_go_to_acm_and_the_arn_is_recorded(
    issuer: Issuer, store: MemoryStore, acm: FakeAcm, hierarchy: LocalHierarchy
) -> None:
    response = issuer.issue(_origin(), NOW).response
    arn = response["acm_certificate_arn"]
    served = acm.imported[arn]
    certificate = x509.load_pem_x509_certificate(served.certificate_pem.encode())
    assert served.certificate_pem == response["certificate"]
    assert served.chain_pem == hierarchy.ca.chain_pem  # issuing + root, never the leaf
    assert served.private_key.public_key() == certificate.public_key()
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)  # the EC issuing CA's algorithm
    assert served.tags["kmsca:serial-number"] == response["serial_number"]
    assert served.tags["managed-by"] == "kmsca"
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert "PRIVATE KEY" not in str(response)

    record = store.get_certificate(response["serial_number"])
    assert record is not None and (record.status, record.acm_certificate_arn) == (STATUS_ISSUED, arn)
    assert record.key_type == "ec-p256"
    assert store.list_pending_imports() == []
    assert store.list_acm_due(NOW + timedelta(days=91)) == [(response["serial_number"], arn)]
    assert record.fingerprint_sha256 == certificate.fingerprint(hashes.SHA256()).hex()


def test_a_refused_import_leaves_a_revoked_record_and_nothing_served(
    issuer: Issuer, store: MemoryStore, acm: FakeAcm
) -> None:
    acm.refuse_next = "ValidationException"
    with pytest.raises(AwsCallFailed, match="ValidationException"):
        issuer.issue(_origin(), NOW)
    assert acm.imported == {}
    (item,) = store.certificates.values()
    assert (item.record.status, item.record.revocation_reason) == (STATUS_REVOKED, "cessationOfOperation")
    assert store.list_pending_imports() == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, InvalidRequest),
        ({"key_type": "rsa-2048"}, KeyPolicyViolation),  # the issuing CA is EC: ACM would refuse RSA
        ({"key_type": "ec-p384"}, KeyPolicyViolation),
        ({"sans": [SanModel(type="ip", value="192.0.2.1")]}, InvalidSubjectAlternativeName),  # no DNS name
    ],
)
def test_a_refused_request_generates_signs_and_imports_nothing(
    issuer: Issuer, store: MemoryStore, acm: FakeAcm, fields: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        issuer.issue(_origin(**fields), NOW)
    assert store.certificates == {} and acm.imported == {}


def test_without_acm_access_the_profile_is_not_ready(hierarchy: LocalHierarchy, store: MemoryStore) -> None:
    with pytest.raises(CaNotReady, match="needs ACM access"):
        Issuer(hierarchy.ca, store, POLICY).issue(_origin(), NOW)
    assert store.certificates == {}
