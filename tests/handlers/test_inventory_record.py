"""The issue path builds the inventory record from what it gave the certificate builder
(:class:`kmsca.records.CertificateParts`) instead of parsing the signed certificate: the record,
and so the stored item, is the one parsing would give, for every profile and key type."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, rsa
from kmsca.records import CertificateParts, CertificateRecord
from kmsca.store import DynamoDbCertificateStore
from kmsca.store.dynamodb.certificate_items import certificate_item

from tests.support.aws import CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr


@pytest.fixture
def written(
    bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> Any:
    """Issue through the real handler; ``records`` holds every certificate record written."""
    records: list[CertificateRecord] = []
    for name in ("put_certificate", "put_pending_import", "finish_import"):
        original = getattr(DynamoDbCertificateStore, name)

        def recording(self: Any, record: CertificateRecord, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            records.append(record)
            return _original(self, record, *args, **kwargs)

        monkeypatch.setattr(DynamoDbCertificateStore, name, recording)
    module = load_handler("issue", bootstrapped.env, monkeypatch)

    def issue(request: dict[str, Any]) -> dict[str, Any]:
        records.clear()
        return module.handler(request, lambda_context)

    issue.records = records  # type: ignore[attr-defined]
    return issue


def _parsed(record: CertificateRecord) -> CertificateRecord:
    return CertificateRecord.from_certificate(
        record.certificate,
        ca=record.ca,
        profile=record.profile,
        issued_at=record.issued_at,
        key_type=record.key_type,
        acm_certificate_arn=record.acm_certificate_arn,
        requested_by=record.requested_by,
        predecessor=record.predecessor,
        acm_target=record.acm_target,
        acm_account_id=record.acm_account_id,
    )


SANS = [
    {"type": "dns", "value": "api.example.com"},
    {"type": "ip", "value": "192.0.2.7"},
    {"type": "ip", "value": "2001:db8::1"},
    {"type": "uri", "value": "spiffe://example.org/api"},
    {"type": "email", "value": "ops@example.com"},
]


@pytest.mark.parametrize(
    "key",
    [
        ec.derive_private_key(0x5EED, ec.SECP256R1()),
        ec.derive_private_key(0x5EED, ec.SECP384R1()),
        rsa.generate_private_key(65537, 2048),
        mldsa.MLDSA44PrivateKey.generate(),
    ],
    ids=["p256", "p384", "rsa2048", "mldsa44"],
)
@pytest.mark.parametrize(
    "request_",
    [
        {"profile": "client"},
        {"profile": "client", "sans": [{"type": "email", "value": "device@example.com"}], "requested_by": "ops"},
        {"profile": "server", "sans": SANS, "subject": {"common_name": "api", "organization": "Exämple", "country": "DE"}},
        {"profile": "server", "sans": [{"type": "dns", "value": "only-san.example.com"}], "subject": {}},
    ],
    ids=["client", "client-email", "server-all-sans", "server-empty-subject"],
)
def test_the_record_is_the_one_parsing_gives(written: Any, key: Any, request_: dict[str, Any]) -> None:
    common_name = None if request_.get("subject") == {} else "device-1"
    csr = make_csr(key, common_name) if common_name else make_csr(key, common_name=None)
    request = {k: v for k, v in request_.items() if k != "subject" or v}
    written({"csr": csr_pem(csr), **request})
    (record,) = written.records
    assert record == _parsed(record)
    assert certificate_item(record) == certificate_item(
        _parsed(record)
    )


def test_the_origin_record_is_the_one_parsing_gives(written: Any) -> None:
    written({"profile": "cloudfront-origin", "sans": [{"type": "dns", "value": "origin.example.com"}],
             "subject": {"common_name": "origin.example.com"}})
    pending, finished = written.records
    assert finished.acm_certificate_arn and finished.key_type == "ec-p256"
    assert pending == _parsed(pending) and finished == _parsed(finished)
    # the local target's account is read from the ARN once ACM returned it
    assert replace(finished, acm_certificate_arn=None, acm_account_id=None) == pending


def test_parts_read_back_from_a_certificate_match_the_built_ones(written: Any) -> None:
    written({"csr": csr_pem(make_csr(ec.derive_private_key(7, ec.SECP256R1()))), "sans": SANS, "profile": "server"})
    (record,) = written.records
    parts = CertificateParts.of(record.certificate)
    assert parts.not_before.microsecond == 0 and parts.not_before == record.not_before
    assert list(parts.sans) == list(
        record.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )


def test_the_issue_path_does_not_parse_what_it_built(written: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(certificate: x509.Certificate) -> CertificateParts:
        raise AssertionError("the issue path parsed the signed certificate")

    monkeypatch.setattr(CertificateParts, "of", staticmethod(refuse))
    written({"csr": csr_pem(make_csr(ec.derive_private_key(9, ec.SECP256R1()))), "profile": "client"})
    assert len(written.records) == 1
