"""The cloudfront-origin profile: key made in memory, certificate imported into ACM us-east-1,
rotated in place into the same ARN; failure paths notify and keep the old certificate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from kmsca.acm import ACM_REGION, AcmImporter
from kmsca.errors import CaError, InternalError
from kmsca.notify import Notifier
from kmsca.rotation import OriginCertificateRotation
from kmsca.store import DynamoDbCertificateStore
from kmsca.table_keys import CERT_PREFIX, certificate_key
from kmsca.wiring import build_issuer

from tests.support.aws import HIERARCHY_PROPERTIES, REGION, CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr
from tests.support.settings import issue_settings

DNS = [{"type": "dns", "value": "origin.example.com"}]


class Topic:
    """An SNS topic with an SQS queue subscribed, to read what was notified."""

    def __init__(self) -> None:
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.arn = self.sns.create_topic(Name="ca-notifications")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="notifications")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.arn, Protocol="sqs", Endpoint=queue_arn)

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for message in self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(json.loads(message["Body"])["Message"]))
        return found


@pytest.fixture
def origin(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    """An EC (P-256) issuing CA, as the template's defaults make it."""
    return _origin(bootstrapped, monkeypatch, lambda_context)


@pytest.fixture
def rsa_origin(aws: None, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    """An RSA-2048 issuing CA under a P-384 root."""
    from kmsca.bootstrap import CaHierarchyConfig, bootstrap_ca
    from kmsca.settings import BootstrapSettings

    resources = CaResources(root_spec="ECC_NIST_P384", issuing_spec="RSA_2048")
    bootstrap_ca(
        DynamoDbCertificateStore(resources.dynamodb, resources.table),
        resources.kms,
        resources.s3,
        BootstrapSettings.from_env(resources.env),
        CaHierarchyConfig.from_properties(HIERARCHY_PROPERTIES),
        datetime.now(UTC),
    )
    return _origin(resources, monkeypatch, lambda_context)


def _origin(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    topic = Topic()
    env = {**bootstrapped.env, "NOTIFICATION_TOPIC_ARN": topic.arn}
    issue_module = load_handler("issue", env, monkeypatch)
    imports: list[dict[str, Any]] = []
    issue_module.acm._local.client().meta.events.register(
        "provide-client-params.acm.ImportCertificate", lambda params, **_: imports.append(dict(params))
    )

    class Origin:
        resources = bootstrapped
        acm = boto3.client("acm", region_name=ACM_REGION)
        notifications = topic
        import_calls = imports
        module = issue_module

        def issue(self, **request: Any) -> dict[str, Any]:
            return issue_module.handler({"profile": "cloudfront-origin", **request}, lambda_context)

        def item(self, serial: str) -> dict[str, Any]:
            return bootstrapped.dynamodb.get_item(
                TableName=bootstrapped.table, Key={"pk": {"S": certificate_key(serial)}}
            )["Item"]

        def rotation(self, acm: AcmImporter | None = None, window_days: int = 30) -> OriginCertificateRotation:
            store = DynamoDbCertificateStore(bootstrapped.dynamodb, bootstrapped.table)
            importer = acm or AcmImporter(boto3.client("acm", region_name=ACM_REGION))
            issuer = build_issuer(issue_settings(bootstrapped.table, bootstrapped.issuing_key), store, bootstrapped.kms, importer)
            notifier = Notifier(boto3.client("sns", region_name=REGION), topic.arn)
            return OriginCertificateRotation(issuer, store, importer, notifier, timedelta(days=window_days))

    return Origin()


def _acm_certificate(origin: Any, arn: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    got = origin.acm.get_certificate(CertificateArn=arn)
    return (x509.load_pem_x509_certificate(got["Certificate"].encode()),
            x509.load_pem_x509_certificates(got["CertificateChain"].encode()))


def test_issue_imports_into_acm_us_east_1_and_returns_no_key(origin: Any) -> None:
    response = origin.issue(sans=DNS, subject={"common_name": "origin.example.com"})
    arn = response["acm_certificate_arn"]
    assert arn.startswith("arn:aws:acm:us-east-1:")
    assert not any("KEY" in str(v) for k, v in response.items() if k != "certificate_chain")
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90

    acm_leaf, acm_chain = _acm_certificate(origin, arn)
    assert acm_leaf == cert
    issuing, root = x509.load_pem_x509_certificates(response["certificate_chain"].encode())
    assert acm_chain[:2] == [issuing, root] and cert not in acm_chain  # moto appends a chain of its own
    tags = {t["Key"]: t["Value"] for t in origin.acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags == {"kmsca:serial-number": response["serial_number"], "kmsca:ca": "Test Issuing CA", "managed-by": "kmsca"}

    item = origin.item(response["serial_number"])
    assert item["acm_certificate_arn"]["S"] == arn and item["key_type"]["S"] == "ec-p256"
    assert item["acm_managed"]["S"] == "active"
    assert "PRIVATE KEY" not in json.dumps(item)


def test_import_arguments(rsa_origin: Any) -> None:
    origin = rsa_origin
    origin.issue(key_type="rsa-2048", sans=DNS, subject={"common_name": "rsa-origin"})
    (call,) = origin.import_calls
    assert "CertificateArn" not in call
    key_pem = call["PrivateKey"]
    assert b"BEGIN RSA PRIVATE KEY" in key_pem and b"ENCRYPTED" not in key_pem and len(key_pem) <= 5 * 1024
    chain = x509.load_pem_x509_certificates(call["CertificateChain"])
    leaf = x509.load_pem_x509_certificate(call["Certificate"])
    assert len(chain) == 2 and leaf not in chain and chain[0].subject == leaf.issuer
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey) and leaf.public_key().key_size == 2048
    assert {t["Key"] for t in call["Tags"]} == {"kmsca:serial-number", "kmsca:ca", "managed-by"}
    assert origin.module.acm._local.client().meta.region_name == "us-east-1"


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"csr": "CSR"}, "InvalidRequest"),
        ({"key_type": "rsa-4096"}, "KeyPolicyViolation"),
        ({"key_type": "ec-p384"}, "KeyPolicyViolation"),
        ({"key_type": 256}, "KeyPolicyViolation"),
        ({"key_type": "rsa-2048"}, "KeyPolicyViolation"),  # an RSA leaf under the EC issuing CA: ACM refuses it
        ({"lifetime_days": 366}, "LifetimeExceeded"),
        ({"sans": [{"type": "dns", "value": "*.com"}]}, "InvalidSubjectAlternativeName"),
        ({"sans": []}, "InvalidSubjectAlternativeName"),  # a common name only: ACM needs an FQDN
        ({"sans": [{"type": "ip", "value": "10.0.0.1"}]}, "InvalidSubjectAlternativeName"),  # no DNS name
        ({"sans": [], "subject": None}, "InvalidSubjectAlternativeName"),  # neither subject nor SAN
    ],
)
def test_bad_origin_requests_import_and_store_nothing(origin: Any, request_: dict[str, Any], code: str) -> None:
    if request_.get("csr") == "CSR":
        request_ = {**request_, "csr": csr_pem(make_csr(ec.generate_private_key(ec.SECP256R1())))}
    request_ = {"sans": DNS, "subject": {"common_name": "origin"}, **request_}
    request_ = {k: v for k, v in request_.items() if v is not None}
    with pytest.raises(CaError) as refused:
        origin.issue(**request_)
    assert refused.value.code == code
    assert origin.acm.list_certificates()["CertificateSummaryList"] == []
    assert origin.resources.certificate_count() == 0


@pytest.mark.parametrize(
    ("fixture", "key_type", "algorithms"), [("origin", "rsa-2048", ("RSA", "EC")), ("rsa_origin", "ec-p256", ("EC", "RSA"))]
)
def test_the_key_type_must_match_the_issuing_ca_and_nothing_is_signed(
    fixture: str, key_type: str, algorithms: tuple[str, str], request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = request.getfixturevalue(fixture)
    signed: list[Any] = []
    monkeypatch.setattr(ca.module.kms, "sign", lambda **kwargs: signed.append(kwargs))
    with pytest.raises(CaError) as refused:
        ca.issue(key_type=key_type, sans=DNS)
    assert refused.value.code == "KeyPolicyViolation"
    assert all(name in refused.value.message for name in (key_type, *algorithms)), refused.value.message
    assert signed == [] and ca.import_calls == []
    assert ca.acm.list_certificates()["CertificateSummaryList"] == []
    assert ca.resources.certificate_count() == 0


@pytest.mark.parametrize(("fixture", "expected"), [("origin", ec.EllipticCurvePublicKey), ("rsa_origin", rsa.RSAPublicKey)])
def test_the_default_key_type_is_the_issuing_cas_algorithm(
    fixture: str, expected: type, request: pytest.FixtureRequest
) -> None:
    ca = request.getfixturevalue(fixture)
    response = ca.issue(sans=DNS)
    cert = x509.load_pem_x509_certificate(response["certificate"].encode())
    assert isinstance(cert.public_key(), expected)
    size = cert.public_key().curve.key_size if expected is ec.EllipticCurvePublicKey else cert.public_key().key_size
    assert size == (256 if expected is ec.EllipticCurvePublicKey else 2048)
    item = ca.item(response["serial_number"])
    assert item["key_type"]["S"] == ("ec-p256" if expected is ec.EllipticCurvePublicKey else "rsa-2048")


def test_a_common_name_alone_is_refused_before_anything_is_signed(origin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    signed: list[Any] = []
    monkeypatch.setattr(origin.module.kms, "sign", lambda **kwargs: signed.append(kwargs))
    with pytest.raises(CaError) as refused:
        origin.issue(subject={"common_name": "origin.example.com"})
    assert refused.value.code == "InvalidSubjectAlternativeName" and "DNS" in refused.value.message
    assert signed == [] and origin.import_calls == [] and origin.resources.certificate_count() == 0


def test_key_type_is_refused_for_csr_profiles(origin: Any, lambda_context: FakeContext) -> None:
    csr = csr_pem(make_csr(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CaError) as refused:
        origin.module.handler({"csr": csr, "key_type": "ec-p256"}, lambda_context)
    assert refused.value.code == "InvalidRequest"


def test_failed_recording_removes_the_import(origin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "boom"}}, "PutItem")

    monkeypatch.setattr(origin.module.store, "finish_import", broken)
    with pytest.raises(InternalError, match="retry"):  # the documented code, not botocore's ClientError
        origin.issue(sans=DNS, subject={"common_name": "origin"})
    assert origin.acm.list_certificates()["CertificateSummaryList"] == []
    # the certificate was recorded before the import, so it stays known: revoked, never served
    (item,) = origin.resources.dynamodb.scan(TableName=origin.resources.table,
                                             FilterExpression="begins_with(pk, :p)",
                                             ExpressionAttributeValues={":p": {"S": CERT_PREFIX}})["Items"]
    assert item["status"]["S"] == "revoked" and item["revocation_reason"]["S"] == "cessationOfOperation"
    assert item["acm_state"]["S"] == "import_failed" and "acm_managed" not in item
    assert item["acm_certificate_arn"]["S"].startswith("arn:aws:acm:us-east-1:")


# Rotation ------------------------------------------------------------------------------------


def test_rotation_reimports_into_the_same_arn_and_supersedes(rsa_origin: Any) -> None:
    origin = rsa_origin
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=25, key_type="rsa-2048")
    arn = first["acm_certificate_arn"]
    origin.import_calls.clear()
    recorder: list[dict[str, Any]] = []
    rotation = origin.rotation()
    rotation._targets._local.client().meta.events.register(
        "provide-client-params.acm.ImportCertificate", lambda params, **_: recorder.append(dict(params))
    )

    report = rotation.run(datetime.now(UTC))  # 25 days left < 30-day window (ACM refuses future certificates)

    assert not report.failed, report.failed
    (rotated,) = report.rotated
    assert rotated["acm_certificate_arn"] == arn and not report.failed
    (call,) = recorder
    assert call["CertificateArn"] == arn and "Tags" not in call  # tags only on first import
    new_serial = rotated["new_serial_number"]
    acm_leaf, _ = _acm_certificate(origin, arn)
    assert format(acm_leaf.serial_number, "x").zfill(len(new_serial)) == new_serial
    assert isinstance(acm_leaf.public_key(), rsa.RSAPublicKey)  # same key type, fresh key
    old_cert = x509.load_pem_x509_certificate(first["certificate"].encode())
    assert acm_leaf.public_key() != old_cert.public_key() and acm_leaf.subject == old_cert.subject
    old, new = origin.item(first["serial_number"]), origin.item(new_serial)
    assert old["status"]["S"] == "revoked" and old["revocation_reason"]["S"] == "superseded"
    assert "acm_managed" not in old and old["superseded_by"]["S"] == new_serial
    assert new["acm_managed"]["S"] == "active" and new["acm_certificate_arn"]["S"] == arn
    tags = {t["Key"]: t["Value"] for t in origin.acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags["kmsca:serial-number"] == new_serial


def test_a_revoked_origin_certificate_is_replaced_at_the_next_run(
    origin: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=90)
    revoke = load_handler("revoke", origin.resources.env, monkeypatch)
    revoked = revoke.handler({"serial_number": first["serial_number"], "reason": "keyCompromise"}, lambda_context)
    assert revoked["acm_certificate_arn"] == first["acm_certificate_arn"]  # revoke-cert.py says ACM still serves it
    (rotated,) = origin.rotation().run(datetime.now(UTC)).rotated  # 90 days left, but revoked
    old = origin.item(first["serial_number"])
    assert old["revocation_reason"]["S"] == "keyCompromise"  # the first revocation stands
    assert old["superseded_by"]["S"] == rotated["new_serial_number"] and "acm_managed" not in old
    acm_leaf, _ = _acm_certificate(origin, first["acm_certificate_arn"])
    assert format(acm_leaf.serial_number, "x").zfill(len(rotated["new_serial_number"])) == rotated["new_serial_number"]


def test_nothing_due_means_no_calls(origin: Any) -> None:
    origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=90)
    report = origin.rotation().run(datetime.now(UTC))
    assert report.rotated == report.failed == report.skipped == []


def test_failed_reimport_keeps_the_old_certificate_notifies_and_retries(origin: Any) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=20)
    arn = first["acm_certificate_arn"]

    class FailingImporter(AcmImporter):
        def reimport(self, arn: str, bundle: Any) -> None:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "ACM said no"}}, "ImportCertificate")

    report = origin.rotation(FailingImporter(boto3.client("acm", region_name=ACM_REGION))).run(datetime.now(UTC))

    assert [f["error"] for f in report.failed] == ["ClientError"]
    acm_leaf, _ = _acm_certificate(origin, arn)
    assert acm_leaf == x509.load_pem_x509_certificate(first["certificate"].encode())
    old = origin.item(first["serial_number"])
    assert old["status"]["S"] == "issued" and old["acm_managed"]["S"] == "active" and "rotation_lease_until" not in old
    (message,) = origin.notifications.messages()
    assert message["event"] == "AcmRotationFailed" and message["acm_certificate_arn"] == arn
    assert "PRIVATE KEY" not in json.dumps(message)
    # the next run retries and succeeds
    assert len(origin.rotation().run(datetime.now(UTC)).rotated) == 1


def test_arn_deleted_outside_the_ca_is_recorded_and_notified(origin: Any) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=20)
    origin.acm.delete_certificate(CertificateArn=first["acm_certificate_arn"])
    report = origin.rotation().run(datetime.now(UTC))
    assert [m["serial_number"] for m in report.missing] == [first["serial_number"]]
    item = origin.item(first["serial_number"])
    assert item["acm_status"]["S"] == "missing" and "acm_managed" not in item
    assert [m["event"] for m in origin.notifications.messages()] == ["AcmCertificateMissing"]
    assert origin.rotation().run(datetime.now(UTC)).missing == []  # no longer managed


def test_overlapping_runs_rotate_once(origin: Any) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=20)
    store = DynamoDbCertificateStore(origin.resources.dynamodb, origin.resources.table)
    now = datetime.now(UTC)
    assert store.claim_rotation(first["serial_number"], now, timedelta(minutes=15))  # another run holds it
    report = origin.rotation().run(now)
    assert report.rotated == [] and [s["serial_number"] for s in report.skipped] == [first["serial_number"]]
    # a lease that has expired (taken 20 minutes ago, 15-minute lease) does not block a run
    store.release_rotation(first["serial_number"])
    assert store.claim_rotation(first["serial_number"], now - timedelta(minutes=20), timedelta(minutes=15))
    assert len(origin.rotation().run(now).rotated) == 1


def test_rotation_handler(origin: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> None:
    origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=10)
    env = {**origin.resources.env, "NOTIFICATION_TOPIC_ARN": origin.notifications.arn}
    rotate = load_handler("rotate_acm", env, monkeypatch)
    result = rotate.handler({"source": "schedule"}, lambda_context)
    assert len(result["rotated"]) == 1 and result["failed"] == []


def test_acm_client_factory_is_called_on_first_use_and_region_checked() -> None:
    """The issue function passes a factory: no ACM client at cold start, the same region rule."""

    made: list[str] = []

    def factory() -> Any:
        made.append("acm")
        return boto3.client("acm", region_name="eu-west-1")

    importer = AcmImporter(factory)
    assert made == []
    with pytest.raises(ValueError, match="us-east-1"):
        importer.delete("arn:aws:acm:us-east-1:123456789012:certificate/x")
    assert made == ["acm"]
