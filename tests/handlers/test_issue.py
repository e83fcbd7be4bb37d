"""The issue function, through its real handler, against moto: every check and every refusal."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store
from kmsca.errors import CaError

from tests.support.aws import CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr


@pytest.fixture
def issue(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    module = load_handler("issue", bootstrapped.env, monkeypatch)

    def call(event: Any) -> dict[str, str]:
        return module.handler(event, lambda_context)

    call.module = module  # type: ignore[attr-defined]
    return call


def _ca_certificates(resources: CaResources) -> tuple[x509.Certificate, x509.Certificate]:
    def load(key: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(resources.s3.get_object(Bucket=resources.bucket, Key=key)["Body"].read())

    return load("root.pem"), load("issuing.pem")


def _ext(cert: x509.Certificate, cls: type) -> Any:
    return cert.extensions.get_extension_for_class(cls)


# Good requests -------------------------------------------------------------------------------


def test_client_certificate_has_the_client_profile(issue: Any, bootstrapped: CaResources, ec_key: Any) -> None:
    csr = make_csr(ec_key, "device-1", sans=[x509.DNSName("device-1.example.com")])
    response = issue({"csr": csr_pem(csr)})
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    root, issuing = _ca_certificates(bootstrapped)

    assert response["profile"] == "client" and response["subject"] == "CN=device-1"
    assert response["serial_number"] == format(cert.serial_number, "x").zfill(len(response["serial_number"]))
    assert len(response["serial_number"]) % 2 == 0
    assert response["certificate_chain"] == (
        issuing.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    ).decode()
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    basic = _ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_encipherment
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == \
        _ext(issuing, x509.SubjectKeyIdentifier).value.digest
    assert _ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(ec_key.public_key())
    cdp = _ext(cert, x509.CRLDistributionPoints).value[0].full_name[0].value
    assert cdp == "https://pki.example.com/issuing.crl"
    assert _ext(cert, x509.AuthorityInformationAccess).value[0].access_location.value == \
        "https://pki.example.com/issuing.crt"
    # pyca's RFC 5280 path validation as a client certificate (it needs a SAN, hence the CSR's)
    verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
    verifier.verify(cert, [issuing])


def test_inventory_item(issue: Any, bootstrapped: CaResources, ec_key: Any) -> None:
    response = issue({"csr": csr_pem(make_csr(ec_key)), "sans": [{"type": "email", "value": "a@example.com"}]})
    item = bootstrapped.dynamodb.get_item(
        TableName=bootstrapped.table, Key={"pk": {"S": f"CERT#{response['serial_number']}"}}
    )["Item"]
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    assert item["status"]["S"] == "issued"
    assert item["serial_number"]["S"] == response["serial_number"]
    assert item["subject"]["S"] == "CN=device-1"
    assert item["issuer"]["S"] == cert.issuer.rfc4514_string()
    assert item["sans"]["L"] == [{"S": "email:a@example.com"}]
    assert item["fingerprint_sha256"]["S"] == cert.fingerprint(hashes.SHA256()).hex()
    assert item["not_after"]["S"] == response["not_after"] and response["not_after"].endswith("Z")
    assert item["certificate"]["S"] == response["certificate"]
    assert len(item["spki_sha256"]["S"]) == 64
    assert "revoked_ca" not in item  # not in the sparse revoked index
    assert "PRIVATE KEY" not in str(item)


def test_server_certificate(issue: Any, bootstrapped: CaResources, ec_key: Any) -> None:
    response = issue({
        "csr": csr_pem(make_csr(ec_key, "api")), "profile": "server",
        "sans": [{"type": "dns", "value": "api.example.com"}, {"type": "ip", "value": "127.0.0.1"}],
    })
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    root, issuing = _ca_certificates(bootstrapped)
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName("api.example.com"))
    verifier.verify(cert, [issuing])


def test_rsa_subject_key_gets_key_encipherment(issue: Any) -> None:
    key = rsa.generate_private_key(65537, 2048)
    cert = x509.load_pem_x509_certificate(issue({"csr": csr_pem(make_csr(key))})["certificate"].encode())
    assert _ext(cert, x509.KeyUsage).value.key_encipherment


def test_ml_dsa_subject_key_is_certified(issue: Any) -> None:
    key = mldsa.MLDSA65PrivateKey.generate()
    cert = x509.load_pem_x509_certificate(issue({"csr": csr_pem(make_csr(key))})["certificate"].encode())
    assert isinstance(cert.public_key(), mldsa.MLDSA65PublicKey)


def test_csr_extensions_other_than_san_are_never_copied(issue: Any, ec_key: Any) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sneaky")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("from-csr.example.com")]), critical=False)
        .sign(ec_key, hashes.SHA256())
    )
    cert = x509.load_pem_x509_certificate(issue({"csr": csr_pem(csr)})["certificate"].encode())
    assert _ext(cert, x509.BasicConstraints).value.ca is False
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["from-csr.example.com"]


def test_request_sans_and_subject_override_the_csr(issue: Any, ec_key: Any) -> None:
    csr = make_csr(ec_key, "csr-name", sans=[x509.DNSName("csr.example.com")])
    response = issue({
        "csr": csr_pem(csr),
        "subject": {"common_name": "override", "organization": "Example", "country": "DE"},
        "sans": [{"type": "uri", "value": "spiffe://example.org/device/1"}],
        "lifetime_days": 30,
    })
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    assert response["subject"] == "CN=override,O=Example,C=DE"
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example.org/device/1"]
    assert san.get_values_for_type(x509.DNSName) == []
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30


def test_empty_subject_makes_the_san_critical(issue: Any, ec_key: Any) -> None:
    csr = make_csr(ec_key, common_name=None)
    response = issue({"csr": csr_pem(csr), "sans": [{"type": "dns", "value": "only-san.example.com"}]})
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    assert _ext(cert, x509.SubjectAlternativeName).critical


def test_idempotent_retry_returns_the_same_certificate(issue: Any, bootstrapped: CaResources, ec_key: Any) -> None:
    request = {"csr": csr_pem(make_csr(ec_key)), "idempotency_key": "order-42"}
    first = issue(request)
    second = issue(dict(request))
    assert first == second
    assert bootstrapped.certificate_count() == 1
    with pytest.raises(CaError) as refused:
        issue({**request, "lifetime_days": 10})
    assert refused.value.code == "IdempotencyKeyReused"
    assert bootstrapped.certificate_count() == 1


def test_warm_issuance_makes_two_aws_calls_three_with_idempotency(issue: Any, ec_key: Any) -> None:
    issue({"csr": csr_pem(make_csr(ec_key))})  # cold: loads CA records and the public key
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.split(".", 1)[1]] += 1

    for client in (issue.module.kms, issue.module.store._client):
        client.meta.events.register("before-call.*.*", count)
    issue({"csr": csr_pem(make_csr(ec_key))})
    assert calls == Counter({"kms.Sign": 1, "dynamodb.PutItem": 1})
    calls.clear()
    issue({"csr": csr_pem(make_csr(ec_key)), "idempotency_key": "k-1"})
    assert calls == Counter({"dynamodb.GetItem": 1, "kms.Sign": 1, "dynamodb.TransactWriteItems": 1})


# Refusals: the error code, and nothing issued or stored ------------------------------------------

def _truncated(pem: str) -> str:
    return pem[: len(pem) // 2]


def _bad_signature(pem: str) -> str:
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()


EC = ec.derive_private_key(0x5EED, ec.SECP256R1())
GOOD = csr_pem(make_csr(EC))
BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("not-an-object", ["csr"], "InvalidRequest"),
    ("unknown-field", {"csr": GOOD, "lifetime": 30}, "InvalidRequest"),
    ("missing-csr", {}, "InvalidCsr"),
    ("non-string-csr", {"csr": 12345}, "InvalidCsr"),
    ("garbage-csr", {"csr": "hello"}, "InvalidCsr"),
    ("truncated-pem", {"csr": _truncated(GOOD)}, "InvalidCsr"),
    ("certificate-not-csr", {"csr": GOOD.replace("CERTIFICATE REQUEST", "CERTIFICATE")}, "InvalidCsr"),
    ("bad-signature", {"csr": _bad_signature(GOOD)}, "InvalidCsr"),
    ("one-megabyte-csr", {"csr": "A" * 1024 * 1024}, "InvalidCsr"),
    ("rsa-1024", {"csr": csr_pem(make_csr(rsa.generate_private_key(65537, 1024)))}, "KeyPolicyViolation"),
    ("secp256k1", {"csr": csr_pem(make_csr(ec.generate_private_key(ec.SECP256K1())))}, "KeyPolicyViolation"),
    ("lifetime-0", {"csr": GOOD, "lifetime_days": 0}, "InvalidLifetime"),
    ("lifetime-negative", {"csr": GOOD, "lifetime_days": -1}, "InvalidLifetime"),
    ("lifetime-max-plus-1", {"csr": GOOD, "lifetime_days": 366}, "LifetimeExceeded"),
    ("lifetime-abc", {"csr": GOOD, "lifetime_days": "abc"}, "InvalidLifetime"),
    ("lifetime-string-number", {"csr": GOOD, "lifetime_days": "30"}, "InvalidLifetime"),
    ("lifetime-bool", {"csr": GOOD, "lifetime_days": True}, "InvalidLifetime"),
    ("san-star-com", {"csr": GOOD, "sans": [{"type": "dns", "value": "*.com"}]}, "InvalidSubjectAlternativeName"),
    ("san-double-dot", {"csr": GOOD, "sans": [{"type": "dns", "value": "a..b.com"}]}, "InvalidSubjectAlternativeName"),
    ("san-two-wildcards", {"csr": GOOD, "sans": [{"type": "dns", "value": "*.*.example.com"}]},
     "InvalidSubjectAlternativeName"),
    ("san-bad-ip", {"csr": GOOD, "sans": [{"type": "ip", "value": "999.1.1.1"}]}, "InvalidSubjectAlternativeName"),
    ("san-email-no-at", {"csr": GOOD, "sans": [{"type": "email", "value": "nobody"}]},
     "InvalidSubjectAlternativeName"),
    ("san-unknown-type", {"csr": GOOD, "sans": [{"type": "x400", "value": "x"}]}, "InvalidSubjectAlternativeName"),
    ("san-not-a-list", {"csr": GOOD, "sans": "dns:a.example.com"}, "InvalidSubjectAlternativeName"),
    ("csr-san-star-com", {"csr": csr_pem(make_csr(EC, sans=[x509.DNSName("*.com")]))},
     "InvalidSubjectAlternativeName"),
    ("profile-admin", {"csr": GOOD, "profile": "admin"}, "UnknownProfile"),
    ("profile-not-string", {"csr": GOOD, "profile": 7}, "UnknownProfile"),
    ("server-without-san", {"csr": GOOD, "profile": "server"}, "InvalidSubjectAlternativeName"),
    ("no-subject-no-san", {"csr": csr_pem(make_csr(EC, common_name=None))}, "InvalidSubjectAlternativeName"),
    ("subject-unknown-field", {"csr": GOOD, "subject": {"title": "boss"}}, "InvalidSubject"),
    ("subject-bad-country", {"csr": GOOD, "subject": {"country": "Germany"}}, "InvalidSubject"),
    ("idempotency-key-empty", {"csr": GOOD, "idempotency_key": ""}, "InvalidRequest"),
]


@pytest.mark.parametrize(("event", "code"), [(e, c) for _, e, c in BAD_REQUESTS], ids=[i for i, _, _ in BAD_REQUESTS])
def test_bad_requests_are_refused_and_nothing_is_stored(
    issue: Any, bootstrapped: CaResources, event: Any, code: str
) -> None:
    before = bootstrapped.item_count()
    with pytest.raises(CaError) as refused:
        issue(event)
    assert type(refused.value).__name__ == code == refused.value.code
    assert refused.value.message and len(refused.value.message) < 400
    assert bootstrapped.item_count() == before


def test_lifetime_beyond_the_issuing_ca_is_refused(
    bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    module = load_handler("issue", {**bootstrapped.env, "MAX_LIFETIME_DAYS": "3650"}, monkeypatch)
    with pytest.raises(CaError, match="outlive the issuing CA") as refused:
        module.handler({"csr": GOOD, "lifetime_days": 3000}, lambda_context)
    assert refused.value.code == "LifetimeExceeded"
    assert bootstrapped.certificate_count() == 0


def test_before_bootstrap_the_ca_is_not_ready(
    ca_resources: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    module = load_handler("issue", ca_resources.env, monkeypatch)
    with pytest.raises(CaError) as refused:
        module.handler({"csr": GOOD}, lambda_context)
    assert refused.value.code == "CaNotReady"
    assert ca_resources.item_count() == 0


def test_missing_setting_fails_at_cold_start_with_its_name(
    ca_resources: CaResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(ca_resources.env)
    monkeypatch.delenv("ISSUING_CA_KEY_ID", raising=False)
    del env["ISSUING_CA_KEY_ID"]
    with pytest.raises(Exception, match="ISSUING_CA_KEY_ID"):
        load_handler("issue", env, monkeypatch)
