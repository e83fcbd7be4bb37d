"""Revocation through the real revoke handler, and CRLs built from it: RFC 5280 contents,
signatures, numbering under concurrency, reason codes, bad input."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kmsca.crl import CrlPublisher
from kmsca.errors import CaError
from kmsca.revocation import REASONS
from kmsca.store import DynamoDbCertificateStore
from kmsca.table_keys import certificate_key
from kmsca.wiring import issuing_signer

from tests.support.aws import CaResources, FakeContext, load_handler, put_revoked
from tests.support.csr import csr_pem, make_csr
from tests.support.settings import issue_settings


@pytest.fixture
def handlers(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    issue = load_handler("issue", bootstrapped.env, monkeypatch)
    revoke = load_handler("revoke", bootstrapped.env, monkeypatch)
    publish = load_handler("publish_crl", bootstrapped.env, monkeypatch)

    class Calls:
        resources = bootstrapped

        def issue(self, **request: Any) -> dict[str, Any]:
            key = ec.generate_private_key(ec.SECP256R1())
            return issue.handler({"csr": csr_pem(make_csr(key)), **request}, lambda_context)

        def revoke(self, **request: Any) -> dict[str, Any]:
            return revoke.handler(request, lambda_context)

        def publish(self, event: dict[str, Any] | None = None) -> dict[str, str]:
            return publish.handler(event or {"source": "schedule"}, lambda_context)

        def crl(self, ca: str = "issuing") -> x509.CertificateRevocationList:
            body = bootstrapped.s3.get_object(Bucket=bootstrapped.bucket, Key=f"{ca}.crl")["Body"].read()
            return x509.load_der_x509_crl(body)

        def ca_certificate(self, ca: str) -> x509.Certificate:
            body = bootstrapped.s3.get_object(Bucket=bootstrapped.bucket, Key=f"{ca}.pem")["Body"].read()
            return x509.load_pem_x509_certificate(body)

    return Calls()


# Revoke --------------------------------------------------------------------------------------


def test_revoke_then_revoke_again_returns_the_first_revocation(handlers: Any) -> None:
    serial = handlers.issue()["serial_number"]
    first = handlers.revoke(serial_number=serial.upper(), reason="keyCompromise",
                            invalidity_date="2026-11-01T00:00:00Z")
    assert first["serial_number"] == serial and first["reason"] == "keyCompromise"
    assert first["already_revoked"] is False and first["invalidity_date"] == "2026-11-01T00:00:00Z"
    colon_form = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2))
    again = handlers.revoke(serial_number=colon_form, reason="superseded")
    assert again == {**first, "already_revoked": True}


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"serial_number": "not-hex"}, "InvalidRequest"),
        ({"serial_number": "ab" * 41}, "InvalidRequest"),
        ({"serial_number": "ab" * 21}, "InvalidRequest"),
        ({"serial_number": 1234}, "InvalidRequest"),
        ({}, "InvalidRequest"),
        ({"serial_number": "0a1b2c3d"}, "CertificateNotFound"),
        ({"serial_number": "SERIAL", "reason": "banana"}, "InvalidRevocationReason"),
        ({"serial_number": "SERIAL", "reason": "cACompromise"}, "InvalidRevocationReason"),
        ({"serial_number": "SERIAL", "reason": "aACompromise"}, "InvalidRevocationReason"),
        ({"serial_number": "SERIAL", "reason": "removeFromCRL"}, "InvalidRevocationReason"),
        ({"serial_number": "SERIAL", "invalidity_date": "2099-01-01T00:00:00Z"}, "InvalidRequest"),
        ({"serial_number": "SERIAL", "invalidity_date": "yesterday"}, "InvalidRequest"),
        ({"serial_number": "SERIAL", "invalidity_date": "2026-11-01T00:00:00"}, "InvalidRequest"),
        ({"serial_number": "SERIAL", "extra": 1}, "InvalidRequest"),
    ],
)
def test_bad_revocations_are_refused_and_change_nothing(handlers: Any, request_: dict[str, Any], code: str) -> None:
    serial = handlers.issue()["serial_number"]
    request_ = {k: (serial if v == "SERIAL" else v) for k, v in request_.items()}
    with pytest.raises(CaError) as refused:
        handlers.revoke(**request_)
    assert refused.value.code == code
    item = handlers.resources.dynamodb.get_item(
        TableName=handlers.resources.table, Key={"pk": {"S": certificate_key(serial)}}
    )["Item"]
    assert item["status"]["S"] == "issued" and "revoked_ca" not in item


# CRLs ----------------------------------------------------------------------------------------


def test_initial_crls_are_empty_signed_and_match_their_ca(handlers: Any) -> None:
    numbers = handlers.publish()
    for ca in ("root", "issuing"):
        crl = handlers.crl(ca)
        ca_cert = handlers.ca_certificate(ca)
        assert crl.is_signature_valid(ca_cert.public_key())
        assert crl.issuer.public_bytes() == ca_cert.subject.public_bytes()
        assert len(crl) == 0
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == int(numbers[f"{ca.capitalize()}CrlNumber"])
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert crl.next_update_utc - crl.last_update_utc == timedelta(hours=24)
        pem = handlers.resources.s3.get_object(Bucket=handlers.resources.bucket, Key=f"{ca}.crl.pem")["Body"].read()
        assert x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER) == \
            crl.public_bytes(serialization.Encoding.DER)
        head = handlers.resources.s3.head_object(Bucket=handlers.resources.bucket, Key=f"{ca}.crl")
        assert head["ContentType"] == "application/pkix-crl"


def test_every_reason_round_trips_into_the_crl(handlers: Any) -> None:
    expected = {}
    for reason in REASONS:
        serial = handlers.issue()["serial_number"]
        handlers.revoke(serial_number=serial, reason=reason, invalidity_date="2026-11-20T10:00:00Z")
        expected[int(serial, 16)] = reason
    handlers.publish()  # an empty stream batch publishes nothing (only revocations make a CRL)
    crl = handlers.crl()
    assert len(crl) == len(REASONS)
    for entry in crl:
        reason = expected[entry.serial_number]
        if reason == "unspecified":
            with pytest.raises(x509.ExtensionNotFound):  # RFC 5280 5.3.1: absent rather than unspecified
                entry.extensions.get_extension_for_class(x509.CRLReason)
        else:
            assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == REASONS[reason]
        invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
        assert invalidity.invalidity_date_utc == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_crl_numbers_strictly_increase(handlers: Any) -> None:
    numbers = [int(handlers.publish()["IssuingCrlNumber"]) for _ in range(3)]
    assert numbers == sorted(set(numbers)) and len(numbers) == 3
    assert handlers.crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == numbers[-1]


def test_expired_entries_are_dropped_one_validity_period_after_expiry(bootstrapped: CaResources) -> None:
    store = DynamoDbCertificateStore(bootstrapped.dynamodb, bootstrapped.table)
    signer = issuing_signer(issue_settings(bootstrapped.table, bootstrapped.issuing_key), store, bootstrapped.kms)
    now = datetime.now(UTC)
    for serial, not_after in (("0a01", now - timedelta(hours=30)), ("0a02", now - timedelta(hours=2)),
                              ("0a03", now + timedelta(days=10))):
        put_revoked(bootstrapped, serial, not_after, reason="superseded")
    publisher = CrlPublisher(store, bootstrapped.s3, bootstrapped.bucket, bootstrapped.internal_bucket, timedelta(hours=24))
    publication = publisher.publish(signer, now)
    assert sorted(format(e.serial_number, "04x") for e in publication.crl) == ["0a02", "0a03"]


def test_twenty_concurrent_publications(handlers: Any) -> None:
    revoked = set()
    for _ in range(5):
        serial = handlers.issue()["serial_number"]
        handlers.revoke(serial_number=serial, reason="keyCompromise")
        revoked.add(int(serial, 16))
    resources = handlers.resources
    store = DynamoDbCertificateStore(resources.dynamodb, resources.table)
    signer = issuing_signer(issue_settings(resources.table, resources.issuing_key), store, resources.kms)
    publisher = CrlPublisher(store, resources.s3, resources.bucket, resources.internal_bucket, timedelta(hours=24))
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def run() -> None:
        try:
            barrier.wait()
            results.append(publisher.publish(signer, datetime.now(UTC)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    numbers = sorted(r.crl_number for r in results)
    assert len(set(numbers)) == 20 and numbers == list(range(numbers[0], numbers[0] + 20))
    final = handlers.crl()
    assert final.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == numbers[-1]
    assert {e.serial_number for e in final} == revoked
    archived = resources.s3.list_objects_v2(Bucket=resources.internal_bucket, Prefix="crl/issuing/")["KeyCount"]
    assert archived == 20


def test_a_lower_number_never_replaces_a_higher_one(handlers: Any) -> None:
    from kmsca.publish import Artefact, publish

    s3, bucket = handlers.resources.s3, handlers.resources.bucket
    assert publish(s3, bucket, Artefact("x.crl", b"seven", "application/pkix-crl"), 7)
    assert not publish(s3, bucket, Artefact("x.crl", b"six", "application/pkix-crl"), 6)
    assert publish(s3, bucket, Artefact("x.crl", b"eight", "application/pkix-crl"), 8)
    assert s3.get_object(Bucket=bucket, Key="x.crl")["Body"].read() == b"eight"


def test_openssl_reads_the_crl_and_refuses_the_revoked_certificate(handlers: Any, tmp_path: Path) -> None:
    good = handlers.issue()
    bad = handlers.issue()
    handlers.revoke(serial_number=bad["serial_number"], reason="keyCompromise")
    handlers.publish()
    s3, bucket = handlers.resources.s3, handlers.resources.bucket
    for key in ("root.pem", "issuing.pem", "issuing.crl", "root.crl.pem", "issuing.crl.pem"):
        (tmp_path / key).write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    (tmp_path / "crls.pem").write_bytes((tmp_path / "issuing.crl.pem").read_bytes() + (tmp_path / "root.crl.pem").read_bytes())
    (tmp_path / "good.pem").write_text(good["certificate"])
    (tmp_path / "bad.pem").write_text(bad["certificate"])

    text = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", "issuing.crl", "-noout", "-text"],
                          cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "X509v3 CRL Number" in text and "Key Compromise" in text
    assert bad["serial_number"].upper() in text.replace(":", "").upper()

    def verify(leaf: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "verify", "-crl_check_all", "-CAfile", "root.pem", "-untrusted", "issuing.pem",
             "-CRLfile", "crls.pem", leaf], cwd=tmp_path, capture_output=True, text=True, check=False)

    assert verify("good.pem").returncode == 0
    refused = verify("bad.pem")
    assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr


def test_initial_crls_custom_resource(handlers: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> None:
    from tests.handlers.test_bootstrap import ResponseCatcher

    catcher = ResponseCatcher()
    try:
        data = handlers.publish({
            "RequestType": "Create", "ResponseURL": catcher.url, "StackId": "s", "RequestId": "r",
            "LogicalResourceId": "InitialCrls", "ResourceType": "Custom::InitialCrls", "ResourceProperties": {},
        })
    finally:
        catcher.close()
    assert catcher.bodies[0]["Status"] == "SUCCESS"
    assert set(data) == {"RootCrlNumber", "IssuingCrlNumber"}


# The RevokedByCa index is eventually consistent: the stream-triggered CRL uses the records too ------


def _stream_record(item: dict[str, Any]) -> dict[str, Any]:
    old = {**item, "status": {"S": "issued"}}
    for name in ("revoked_ca", "crl_entry", "revoked_at", "revocation_reason"):
        old.pop(name, None)
    return {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": item["pk"]}, "NewImage": item, "OldImage": old}}


def test_the_stream_triggered_crl_lists_a_revocation_the_index_does_not_show_yet(
    handlers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = handlers.issue()["serial_number"]
    handlers.revoke(serial_number=serial, reason="keyCompromise")
    resources = handlers.resources
    item = resources.dynamodb.get_item(TableName=resources.table, Key={"pk": {"S": certificate_key(serial)}})["Item"]
    # the index lags: its Query does not return the revocation yet
    monkeypatch.setattr(DynamoDbCertificateStore, "list_revoked", lambda self, ca, not_after_from, problems=None: iter(()))

    handlers.publish({"Records": [_stream_record(item)]})

    (entry,) = list(handlers.crl())
    assert entry.serial_number == int(serial, 16)
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise


def test_a_stale_index_entry_is_replaced_by_the_stream_record(bootstrapped: CaResources) -> None:
    from kmsca.crl import merge_revocations
    from kmsca.records import RevokedEntry

    now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    stale = RevokedEntry("0a01", now - timedelta(days=2), "superseded", None, now + timedelta(days=10))
    fresh = RevokedEntry("0a01", now - timedelta(hours=1), "keyCompromise", None, now + timedelta(days=10))
    other = RevokedEntry("0a02", now - timedelta(days=1), "unspecified", None, now + timedelta(days=5))
    expired = RevokedEntry("0a03", now - timedelta(days=9), "unspecified", None, now - timedelta(days=3))
    merged = merge_revocations([stale, other], [fresh, expired], now - timedelta(hours=24))
    assert sorted(merged, key=lambda e: e.serial_number) == [fresh, other]


def test_stream_records_of_another_ca_are_not_carried() -> None:
    from kmsca.store import revoked_entries_from_stream

    image = {
        "pk": {"S": certificate_key("0a01")}, "status": {"S": "revoked"}, "ca": {"S": "issuing"}, "revoked_ca": {"S": "issuing"},
        "crl_entry": {"S": "2026-11-01T00:00:00Z keyCompromise"}, "not_after": {"S": "2027-01-01T00:00:00Z"},
    }
    records = [_stream_record(image)]
    assert [e.serial_number for e in revoked_entries_from_stream(records, "issuing")] == ["0a01"]
    assert revoked_entries_from_stream(records, "root") == []
