"""Fault injection: a failure (or the function dying) at each step of an ACM import, a rotation and
an idempotent issuance. Each test checks what is stored, what ACM serves, what was alarmed
(metric, SNS) and what the next run repairs."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from kmsca.aws_errors import aws_call_failed
from kmsca.errors import CaError, InternalError
from kmsca.models import IssueRequest, parse_request
from kmsca.store import DynamoDbCertificateStore

from tests.handlers.test_cloudfront_origin import DNS, _acm_certificate, _origin
from tests.support.aws import CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr


class Killed(BaseException):
    """The Lambda runtime stopping the function (timeout, out of memory): nothing below catches it."""


def killed(*args: Any, **kwargs: Any) -> None:
    raise Killed


def client_error(code: str = "InternalServerError", operation: str = "Call") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
                       operation)


@pytest.fixture
def origin(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    return _origin(bootstrapped, monkeypatch, lambda_context)


def served_serial(origin: Any, arn: str) -> str:
    leaf, _ = _acm_certificate(origin, arn)
    return format(leaf.serial_number, "x").zfill(2 * ((leaf.serial_number.bit_length() + 7) // 8))


def store_of(resources: CaResources) -> DynamoDbCertificateStore:
    return DynamoDbCertificateStore(resources.dynamodb, resources.table)


def revoke(origin: Any, serial: str, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> dict[str, Any]:
    handler = load_handler("revoke", origin.resources.env, monkeypatch)
    return handler.handler({"serial_number": serial, "reason": "keyCompromise"}, lambda_context)


EARLIER = timedelta(minutes=20)  # the failed run, before the 15-minute rotation lease of the next one
# (the next run is at the real "now": ACM refuses to import a certificate that is not valid yet)


# Rotation: the function dies between steps --------------------------------------------------------


def test_rotation_dies_after_reimport_and_the_next_run_completes_the_record(
    origin: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=20)
    arn, now = first["acm_certificate_arn"], datetime.now(UTC)
    rotation = origin.rotation()
    monkeypatch.setattr(rotation._store, "record_rotation", killed)
    with pytest.raises(Killed):
        rotation.run(now - EARLIER)

    new_serial = served_serial(origin, arn)
    assert new_serial != first["serial_number"]  # ACM serves the new certificate ...
    item = origin.item(new_serial)  # ... which the inventory knows: pending, issued, revocable
    assert item["status"]["S"] == "issued" and item["acm_managed"]["S"] == "pending"
    assert item["supersedes"]["S"] == first["serial_number"] and item["acm_certificate_arn"]["S"] == arn
    assert "PRIVATE KEY" not in json.dumps(item)

    report = origin.rotation(window_days=1).run(now)
    assert report.repaired == [{"acm_certificate_arn": arn, "serial_number": new_serial, "action": "completed"}]
    assert report.rotated == [] and report.failed == []  # the new certificate is not due
    new, old = origin.item(new_serial), origin.item(first["serial_number"])
    assert new["acm_managed"]["S"] == "active" and "acm_state" not in new
    assert old["status"]["S"] == "revoked" and old["revocation_reason"]["S"] == "superseded"
    assert "acm_managed" not in old and old["superseded_by"]["S"] == new_serial
    assert [m["event"] for m in origin.notifications.messages()] == ["AcmImportRepaired"]
    assert revoke(origin, new_serial, monkeypatch, lambda_context)["already_revoked"] is False


def test_rotation_dies_before_reimport_and_the_next_run_rotates_with_a_fresh_key(
    origin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=20)
    arn, now = first["acm_certificate_arn"], datetime.now(UTC)
    rotation = origin.rotation()
    monkeypatch.setattr(rotation._targets._local, "reimport", killed)
    with pytest.raises(Killed):
        rotation.run(now - EARLIER)
    assert served_serial(origin, arn) == first["serial_number"]  # ACM kept the old one
    (pending_serial,) = store_of(origin.resources).list_pending_imports()

    report = origin.rotation().run(now)
    assert [(r["serial_number"], r["action"]) for r in report.repaired] == [(pending_serial, "abandoned")]
    (rotated,) = report.rotated  # the old one, still due, is rotated in the same run
    assert rotated["new_serial_number"] not in (pending_serial, first["serial_number"])
    assert served_serial(origin, arn) == rotated["new_serial_number"]
    abandoned = origin.item(pending_serial)  # never served, key gone: revoked, out of the index
    assert abandoned["status"]["S"] == "revoked" and abandoned["revocation_reason"]["S"] == "cessationOfOperation"
    assert "acm_managed" not in abandoned and abandoned["acm_state"]["S"] == "import_failed"
    assert store_of(origin.resources).list_pending_imports() == []


def test_a_pending_import_younger_than_the_lease_is_left_to_its_run(origin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=20)
    rotation, now = origin.rotation(), datetime.now(UTC)
    monkeypatch.setattr(rotation._targets._local, "reimport", killed)
    with pytest.raises(Killed):
        rotation.run(now - timedelta(minutes=5))
    report = origin.rotation().run(now)
    assert report.repaired == [] and [s["serial_number"] for s in report.skipped] != []  # lease still held


# First cloudfront-origin import: the function dies between import and record ------------------


def test_first_import_dies_after_import_and_the_next_run_adopts_it(origin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(origin.module.store, "finish_import", killed)
    with pytest.raises(Killed):
        origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=90)
    (summary,) = origin.acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    arn = summary["CertificateArn"]
    serial = served_serial(origin, arn)
    item = origin.item(serial)  # the served serial is in the inventory before any repair
    assert item["status"]["S"] == "issued" and item["acm_managed"]["S"] == "pending" and "acm_certificate_arn" not in item

    report = origin.rotation().run(datetime.now(UTC) + EARLIER)
    assert report.repaired == [{"acm_certificate_arn": arn, "serial_number": serial, "action": "adopted"}]
    item = origin.item(serial)
    assert item["acm_managed"]["S"] == "active" and item["acm_certificate_arn"]["S"] == arn
    assert [m["event"] for m in origin.notifications.messages()] == ["AcmImportRepaired"]


def test_first_import_dies_before_import_and_the_next_run_revokes_the_record(
    origin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(origin.module.acm._local, "import_new", killed)
    with pytest.raises(Killed):
        origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=90)
    (serial,) = store_of(origin.resources).list_pending_imports()
    report = origin.rotation().run(datetime.now(UTC) + EARLIER)
    assert [(r["serial_number"], r["action"]) for r in report.repaired] == [(serial, "abandoned")]
    assert origin.item(serial)["status"]["S"] == "revoked"
    assert origin.acm.list_certificates()["CertificateSummaryList"] == []


def test_a_refused_first_import_revokes_the_pending_record(origin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "no"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "ImportCertificate")

    monkeypatch.setattr(origin.module.acm._local, "import_new", refused)
    with pytest.raises(InternalError, match="retry"):  # the wire boundary's code for an AWS failure
        origin.issue(sans=DNS, subject={"common_name": "origin"})
    assert store_of(origin.resources).list_pending_imports() == []
    assert origin.resources.certificate_count() == 1  # known, and revoked: never served


# The rotation handler: every failure is a metric and a notification, never a crash -----------


def _emitted(capsys: pytest.CaptureFixture[str], metric: str) -> float:
    total = 0.0
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and metric in line:
            document = json.loads(line)
            if "_aws" in document and metric in document:
                total += sum(document[metric]) if isinstance(document[metric], list) else document[metric]
    return total


STEPS = ["sign", "record_pending", "reimport", "record_rotation"]


@pytest.mark.parametrize("step", STEPS)
def test_each_rotation_failure_is_a_metric_and_a_notification(
    step: str, origin: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=10)
    arn = first["acm_certificate_arn"]
    env = {**origin.resources.env, "NOTIFICATION_TOPIC_ARN": origin.notifications.arn}
    rotate = load_handler("rotate_acm", env, monkeypatch)

    def fail(*args: Any, **kwargs: Any) -> None:  # the KMS client refuses
        raise client_error("ValidationException")

    def fail_in(service: str) -> Any:  # the adapter reports the refusal, as it does for its client's
        def refused(*args: Any, **kwargs: Any) -> None:
            raise aws_call_failed(client_error("ValidationException"), service)

        return refused

    target = {"sign": (rotate.kms, "sign", fail),
              "record_pending": (rotate.store, "put_pending_import", fail_in("dynamodb")),
              "reimport": (rotate.acm._local, "reimport", fail_in("acm")),
              "record_rotation": (rotate.store, "record_rotation", fail_in("dynamodb"))}[step]
    monkeypatch.setattr(*target)
    capsys.readouterr()

    result = rotate.handler({"source": "schedule"}, lambda_context)  # no crash (was: 'message' in extra)

    assert [f["serial_number"] for f in result["failed"]] == [first["serial_number"]]
    assert _emitted(capsys, "AcmRotationFailures") == 1
    (message,) = origin.notifications.messages()
    assert message["event"] == "AcmRotationFailed" and message["acm_certificate_arn"] == arn
    assert message["error"] == "ClientError" and "PRIVATE KEY" not in json.dumps(message)
    served = served_serial(origin, arn)
    assert origin.item(served)["status"]["S"] == "issued"  # whatever ACM serves is known and revocable
    assert (served == first["serial_number"]) == (step != "record_rotation")


# Idempotency ----------------------------------------------------------------------------------


@pytest.fixture
def issuer(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    module = load_handler("issue", bootstrapped.env, monkeypatch)
    module.handler({"csr": csr_pem(make_csr(_key()))}, lambda_context)  # cold start done
    return module


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _issue(module: Any, event: dict[str, Any]) -> dict[str, str]:
    return module.get_issuer().issue(parse_request(IssueRequest, event), datetime.now(UTC)).response


def test_an_expired_idempotency_record_does_not_block_its_key(issuer: Any, bootstrapped: CaResources) -> None:
    key_hash = hashlib.sha256(b"order-7").hexdigest()
    expired = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())  # TTL has not deleted it yet
    bootstrapped.dynamodb.put_item(TableName=bootstrapped.table, Item={
        "pk": {"S": f"IDEMPOTENCY#{key_hash}"}, "record_type": {"S": "idempotency"},
        "request_hash": {"S": "another request"}, "response": {"S": "{}"}, "expires_at": {"N": str(expired)},
    })
    response = _issue(issuer, {"csr": csr_pem(make_csr(_key())), "idempotency_key": "order-7"})
    record = store_of(bootstrapped).get_idempotency(key_hash)
    assert record is not None and record.response["serial_number"] == response["serial_number"]
    assert record.expires_at > datetime.now(UTC) + timedelta(hours=23)


def test_two_concurrent_origin_requests_with_one_key_get_one_certificate(
    origin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = origin.module.store
    real_get = store.get_idempotency
    barrier, first_reads = threading.Barrier(2, timeout=30), threading.local()

    def racing_get(key_hash: str) -> Any:
        found = real_get(key_hash)
        if not getattr(first_reads, "done", False):  # both read "absent" before either writes
            first_reads.done = True
            barrier.wait()
        return found

    monkeypatch.setattr(store, "get_idempotency", racing_get)
    event = {"profile": "cloudfront-origin", "sans": DNS, "idempotency_key": "origin-1"}
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(_issue(origin.module, event))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2 and results[0] == results[1]
    winner = results[0]["serial_number"]
    assert [c["CertificateArn"] for c in origin.acm.list_certificates()["CertificateSummaryList"]] == [
        results[0]["acm_certificate_arn"]]  # the loser's import was removed
    (loser_call,) = [c for c in origin.import_calls
                     if format(x509.load_pem_x509_certificate(c["Certificate"]).serial_number, "x") != winner.lstrip("0")]
    loser = x509.load_pem_x509_certificate(loser_call["Certificate"])
    loser_item = origin.item(format(loser.serial_number, "x").zfill(2 * ((loser.serial_number.bit_length() + 7) // 8)))
    assert loser_item["status"]["S"] == "revoked" and "acm_managed" not in loser_item  # known, never served


def _conflict(*args: Any, **kwargs: Any) -> None:
    raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                       "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
                      "TransactWriteItems")


def test_a_transaction_conflict_on_one_key_returns_the_winners_certificate(
    issuer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = {"csr": csr_pem(make_csr(_key())), "idempotency_key": "order-8"}
    winner = _issue(issuer, event)
    store = issuer.store
    real_get, reads = store.get_idempotency, []

    def stale_first(key_hash: str) -> Any:
        reads.append(key_hash)
        return None if len(reads) == 1 else real_get(key_hash)

    monkeypatch.setattr(store, "get_idempotency", stale_first)
    monkeypatch.setattr(store._client, "transact_write_items", _conflict)
    assert _issue(issuer, event) == winner


def test_a_key_still_in_progress_is_a_documented_retryable_error(issuer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kmsca.issuance.RACE_BACKOFF", (0.0,))
    monkeypatch.setattr(issuer.store, "get_idempotency", lambda key_hash: None)
    monkeypatch.setattr(issuer.store._client, "transact_write_items", _conflict)
    with pytest.raises(CaError) as refused:
        _issue(issuer, {"csr": csr_pem(make_csr(_key())), "idempotency_key": "order-9"})
    assert refused.value.code == "IdempotencyKeyInProgress"
    assert "idempotency_key" in refused.value.message and hashlib.sha256(b"order-9").hexdigest() not in refused.value.message


@pytest.mark.parametrize("operation", ["put_item", "transact_write_items"])
def test_a_write_whose_reply_is_lost_returns_the_stored_certificate(
    operation: str, issuer: Any, bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = issuer.store._client
    real = getattr(client, operation)
    calls: list[str] = []

    def commit_then_lose_the_reply(**kwargs: Any) -> Any:
        calls.append(operation)
        result = real(**kwargs)
        if len(calls) == 1:
            raise client_error("InternalServerError", operation)
        return result

    monkeypatch.setattr(client, operation, commit_then_lose_the_reply)
    before = bootstrapped.certificate_count()
    event: dict[str, Any] = {"csr": csr_pem(make_csr(_key()))}
    if operation == "transact_write_items":
        event["idempotency_key"] = "order-10"
    response = _issue(issuer, event)
    assert bootstrapped.certificate_count() == before + 1
    stored = store_of(bootstrapped).get_certificate(response["serial_number"])
    assert stored is not None and stored.certificate_pem == response["certificate"]
    if operation == "transact_write_items":
        monkeypatch.setattr(client, operation, real)
        assert _issue(issuer, event) == response
