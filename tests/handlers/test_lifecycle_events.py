"""Certificate Issued / Revoked (from the table stream, through the CRL publication function) and
Certificate Rotated / Rotation Failed (ACM rotation function) on EventBridge.

Events are read the way a subscriber gets them: an EventBridge rule on the stack's source with an
SQS target (moto). Stream batches are the table's real stream records (moto's DynamoDB Streams),
shaped as Lambda delivers them and filtered with the template's own FilterCriteria.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from kmsca.errors import AwsCallFailed
from kmsca.events import Event, EventPublisher
from kmsca.lifecycle_events import certificate_events, is_revocation, rotation_events
from kmsca.records import UnreadableRecord

from tests.handlers.test_cloudfront_origin import DNS, _origin
from tests.support.aws import REGION, TEMPLATE, CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr
from utils.sandbox.events import lambda_stream_record, matches_any, parse_filters

SOURCE = "kmsca.test"
STREAM_FILTERS = parse_filters(TEMPLATE["Resources"]["PublishCrlFunction"]["Properties"]["Events"]["Revocations"]["Properties"])


class Subscriber:
    """A rule on the stack's events with an SQS target: what another team would receive."""

    def __init__(self) -> None:
        self.events = boto3.client("events", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events.put_rule(Name="kmsca-events", EventPattern=json.dumps({"source": [SOURCE]}))
        self.events.put_targets(Rule="kmsca-events", Targets=[{"Id": "queue", "Arn": arn}])

    def received(self) -> list[dict[str, Any]]:
        found = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class Stream:
    """Reads the table's stream from where it stood at creation (LATEST), as Lambda delivers it."""

    def __init__(self, resources: CaResources) -> None:
        # moto in-process answers DynamoDB Streams on its classic endpoint only
        endpoint = f"https://streams.dynamodb.{REGION}.amazonaws.com"
        self.client = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=endpoint)
        self.arn = resources.dynamodb.describe_table(TableName=resources.table)["Table"]["LatestStreamArn"]
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterators = [
            self.client.get_shard_iterator(StreamArn=self.arn, ShardId=s["ShardId"], ShardIteratorType="LATEST")[
                "ShardIterator"
            ]
            for s in shards
        ]

    def batch(self) -> list[dict[str, Any]]:
        """The records since the last call that pass the template's filters (PublishCrlFunction)."""
        records = []
        for index, iterator in enumerate(self.iterators):
            response = self.client.get_records(ShardIterator=iterator)
            self.iterators[index] = response["NextShardIterator"]
            records += [lambda_stream_record(r, self.arn, REGION) for r in response["Records"]]
        return [r for r in records if matches_any(STREAM_FILTERS, r)]


@pytest.fixture
def ca(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Iterator[Any]:
    subscriber = Subscriber()
    stream = Stream(bootstrapped)
    issue = load_handler("issue", bootstrapped.env, monkeypatch)
    revoke = load_handler("revoke", bootstrapped.env, monkeypatch)
    publish = load_handler("publish_crl", bootstrapped.env, monkeypatch)

    class Ca:
        resources = bootstrapped
        events = subscriber
        module = publish

        def issue(self, **request: Any) -> dict[str, Any]:
            return issue.handler(request, lambda_context)

        def revoke(self, **request: Any) -> dict[str, Any]:
            return revoke.handler(request, lambda_context)

        def deliver(self) -> dict[str, str]:
            """The stream's filtered records since the last delivery, as one batch."""
            return publish.handler({"Records": stream.batch()}, lambda_context)

    yield Ca()


def _crl_published(resources: CaResources) -> bool:
    return "Contents" in resources.s3.list_objects_v2(Bucket=resources.bucket, Prefix="issuing.crl")


def test_an_issuance_is_a_certificate_issued_event_and_no_crl(ca: Any, ec_key: Any) -> None:
    response = ca.issue(
        csr=csr_pem(make_csr(ec_key, "device-9")), profile="client",
        sans=[{"type": "dns", "value": "device-9.example.com"}], requested_by="arn:aws:iam::111122223333:user/ops",
    )
    result = ca.deliver()
    assert result == {"CertificateEvents": "1"}  # no CRL number: no CRL for an issuance
    assert not _crl_published(ca.resources)
    (event,) = ca.events.received()
    assert event["source"] == SOURCE and event["detail-type"] == "Certificate Issued"
    assert event["detail"] == {
        "serial_number": response["serial_number"],
        "ca": "issuing",
        "profile": "client",
        "subject": "CN=device-9",
        "sans": ["dns:device-9.example.com"],
        "not_before": response["not_before"],
        "not_after": response["not_after"],
        "fingerprint_sha256": x509.load_pem_x509_certificate(response["certificate"].encode())
        .fingerprint(hashes.SHA256())
        .hex(),
        "requested_by": "arn:aws:iam::111122223333:user/ops",
        "acm_certificate_arn": None,
        "predecessor": None,
    }
    assert "CERTIFICATE" not in json.dumps(event)  # no PEM, no key


def test_a_revocation_is_a_certificate_revoked_event_and_a_crl(ca: Any, ec_key: Any) -> None:
    serial = ca.issue(csr=csr_pem(make_csr(ec_key)))["serial_number"]
    ca.deliver()
    ca.events.received()
    ca.revoke(serial_number=serial, reason="keyCompromise", invalidity_date="2026-11-20T10:00:00Z")
    result = ca.deliver()
    assert set(result) == {"IssuingCrlNumber", "CertificateEvents"} and result["CertificateEvents"] == "1"
    assert _crl_published(ca.resources)
    (event,) = ca.events.received()
    assert event["detail-type"] == "Certificate Revoked"
    detail = event["detail"]
    assert detail["serial_number"] == serial and detail["revocation_reason"] == "keyCompromise"
    assert detail["invalidity_date"] == "2026-11-20T10:00:00Z" and detail["revoked_at"].endswith("Z")
    # revoking again changes nothing: no record, no second event
    ca.revoke(serial_number=serial, reason="keyCompromise")
    assert ca.deliver() == {"CertificateEvents": "0"} and ca.events.received() == []


def test_idempotency_records_and_other_items_are_filtered_out(ca: Any, ec_key: Any) -> None:
    ca.issue(csr=csr_pem(make_csr(ec_key)), idempotency_key="order-1")
    result = ca.deliver()
    assert result == {"CertificateEvents": "1"}  # the IDEMPOTENCY# insert is not delivered
    assert [e["detail-type"] for e in ca.events.received()] == ["Certificate Issued"]


def test_many_records_go_out_in_calls_of_ten(ca: Any, ec_key: Any) -> None:
    calls: Counter[int] = Counter()
    ca.module.events._client.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: calls.update([len(params["Entries"])])
    )
    for _ in range(12):
        ca.issue(csr=csr_pem(make_csr(ec_key)))
    assert ca.deliver() == {"CertificateEvents": "12"}
    assert calls == Counter({10: 1, 2: 1})
    assert len(ca.events.received()) == 12


# Refused entries (PutEvents FailedEntryCount) --------------------------------------------------


def _entries(*detail_types: str) -> list[dict[str, Any]]:
    return [{"Source": SOURCE, "DetailType": d, "Detail": json.dumps({"serial_number": f"0{i}"}, separators=(",", ":")),
             "EventBusName": "default"} for i, d in enumerate(detail_types)]


def test_a_refused_entry_is_retried_alone() -> None:
    client = boto3.client("events", region_name=REGION)
    waits: list[float] = []
    publisher = EventPublisher(client, SOURCE, sleep=waits.append)
    events = [Event("Certificate Issued", {"serial_number": "00"}), Event("Certificate Revoked", {"serial_number": "01"})]
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"EventId": "a"}, {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}]},
            {"Entries": _entries("Certificate Issued", "Certificate Revoked")},
        )
        stub.add_response(
            "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "b"}]},
            {"Entries": [_entries("Certificate Issued", "Certificate Revoked")[1]]},
        )
        assert publisher.publish(events, attempts=3) == []
        stub.assert_no_pending_responses()
    assert waits == [0.2]


def test_an_entry_refused_every_attempt_is_returned() -> None:
    client = boto3.client("events", region_name=REGION)
    publisher = EventPublisher(client, SOURCE, sleep=lambda _: None)
    event = Event("Certificate Issued", {"serial_number": "00"})
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]})
        assert publisher.publish([event], attempts=3) == [(event, "InternalFailure")]
        stub.assert_no_pending_responses()


def _failing_publisher(module: Any, responses: int) -> Stubber:
    client = boto3.client("events", region_name=REGION)
    module.events = EventPublisher(client, SOURCE, sleep=lambda _: None)
    stub = Stubber(client)
    for _ in range(responses):
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]})
    return stub


def test_a_batch_whose_event_is_refused_fails_so_the_stream_retries_it(
    ca: Any, ec_key: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ca.issue(csr=csr_pem(make_csr(ec_key)))
    with _failing_publisher(ca.module, ca.module.EVENT_ATTEMPTS) as stub, pytest.raises(RuntimeError, match="refused"):
        ca.deliver()
    stub.assert_no_pending_responses()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("EventPublicationFailures", [])) for m in metrics) == 1


def test_a_failed_put_events_call_fails_the_batch(ca: Any, ec_key: Any) -> None:
    ca.issue(csr=csr_pem(make_csr(ec_key)))
    client = boto3.client("events", region_name=REGION)
    ca.module.events = EventPublisher(client, SOURCE)
    with Stubber(client) as stub, pytest.raises(AwsCallFailed) as raised:
        stub.add_client_error("put_events", "AccessDeniedException")
        ca.deliver()
    assert (raised.value.service, raised.value.operation, raised.value.error_code) == (
        "events", "PutEvents", "AccessDeniedException")
    assert isinstance(raised.value.__cause__, ClientError)


# Reading stream records -----------------------------------------------------------------------


def _image(**values: Any) -> dict[str, Any]:
    base = {
        "pk": "CERT#0a01", "serial_number": "0a01", "ca": "issuing", "profile": "server", "subject": "CN=api",
        "not_before": "2026-11-21T08:00:00Z", "not_after": "2027-02-19T08:00:00Z", "status": "issued",
    }
    base.update(values)
    return {k: ({"L": [{"S": x} for x in v]} if isinstance(v, list) else {"S": v}) for k, v in base.items() if v is not None}


def _record(name: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    stream: dict[str, Any] = {"Keys": {"pk": new.get("pk", {"S": ""})}, "NewImage": new}
    if old is not None:
        stream["OldImage"] = old
    return {"eventName": name, "dynamodb": stream}


def test_only_issued_inserts_and_issued_to_revoked_modifies_are_events() -> None:
    revoked = _image(status="revoked", revoked_at="2026-11-22T08:00:00Z", revocation_reason="superseded")
    records = [
        _record("INSERT", _image(sans=["dns:api.example.com"])),
        _record("MODIFY", revoked, _image()),
        _record("MODIFY", _image(acm_managed="active"), _image()),  # an ACM import recorded: no event
        _record("MODIFY", revoked, revoked),  # already revoked: no event
        _record("INSERT", {"pk": {"S": "IDEMPOTENCY#ab"}}),
        _record("REMOVE", _image()),
    ]
    events = certificate_events(records)
    assert [(e.detail_type, e.detail["serial_number"]) for e in events] == [
        ("Certificate Issued", "0a01"), ("Certificate Revoked", "0a01")
    ]
    assert events[0].detail["sans"] == ["dns:api.example.com"]
    assert events[1].detail["revocation_reason"] == "superseded" and events[1].detail["invalidity_date"] is None
    assert [is_revocation(r) for r in records] == [False, True, False, True, False, False]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"pk": "CERT#A01", "serial_number": "A01"}, "CERT#<canonical serial number>"),
        ({"serial_number": "0a02"}, "CERT#<canonical serial number>"),
        ({"not_after": "next year"}, "not_after"),  # parse_iso's message
        ({"subject": None}, "subject is missing"),
        ({"sans": "dns:x"}, None),
    ],
)
def test_an_unreadable_record_is_reported_and_skipped(values: dict[str, Any], problem: str | None) -> None:
    problems: list[UnreadableRecord] = []
    image = _image(**values)
    if values.get("sans") == "dns:x":
        image["sans"] = {"S": "dns:x"}  # not a list
    good = _record("INSERT", _image(pk="CERT#0b01", serial_number="0b01"))
    events = certificate_events([_record("INSERT", image), good], problems)
    assert [e.detail["serial_number"] for e in events] == ["0b01"]
    (reported,) = problems
    assert reported.problem.startswith("no Certificate Issued event: ")
    if problem:
        assert problem in reported.problem


def test_a_revocation_without_a_known_reason_is_reported() -> None:
    problems: list[UnreadableRecord] = []
    revoked = _image(status="revoked", revoked_at="2026-11-22T08:00:00Z", revocation_reason="bored")
    assert certificate_events([_record("MODIFY", revoked, _image())], problems) == []
    assert "revocation_reason" in problems[0].problem


# Rotation -----------------------------------------------------------------------------------


def test_rotation_events() -> None:
    arn = "arn:aws:acm:us-east-1:111122223333:certificate/1"
    events = rotation_events(
        [{"acm_certificate_arn": arn, "serial_number": "0a", "new_serial_number": "0b", "not_after": "2027-01-01T00:00:00Z",
          "tag_updated": "true"}],
        [{"acm_certificate_arn": "", "serial_number": "0c", "error": "ClientError", "reason": "secret-ish text"}],
        [{"acm_certificate_arn": arn, "serial_number": "0d", "new_serial_number": "0e"}],
    )
    assert [(e.detail_type, e.detail) for e in events] == [
        ("Certificate Rotated", {"acm_certificate_arn": arn, "serial_number": "0b", "previous_serial_number": "0a",
                                 "not_after": "2027-01-01T00:00:00Z"}),
        ("Certificate Rotation Failed", {"acm_certificate_arn": None, "serial_number": "0c", "new_serial_number": None,
                                         "error": "ClientError"}),
        ("Certificate Rotation Failed", {"acm_certificate_arn": arn, "serial_number": "0d", "new_serial_number": "0e",
                                         "error": "AcmCertificateMissing"}),
    ]


@pytest.fixture
def origin(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    subscriber = Subscriber()
    origin = _origin(bootstrapped, monkeypatch, lambda_context)
    env = {**bootstrapped.env, "NOTIFICATION_TOPIC_ARN": origin.notifications.arn}
    origin.rotate = load_handler("rotate_acm", env, monkeypatch)
    origin.subscriber = subscriber
    return origin


def test_a_rotation_is_a_certificate_rotated_event(origin: Any, lambda_context: FakeContext) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=10)
    result = origin.rotate.handler({"source": "schedule"}, lambda_context)
    (rotated,) = result["rotated"]
    (event,) = origin.subscriber.received()
    assert event["source"] == SOURCE and event["detail-type"] == "Certificate Rotated"
    assert event["detail"] == {
        "acm_certificate_arn": first["acm_certificate_arn"],
        "serial_number": rotated["new_serial_number"],
        "previous_serial_number": first["serial_number"],
        "not_after": rotated["not_after"],
    }


def test_a_failed_rotation_is_a_rotation_failed_event(origin: Any, lambda_context: FakeContext) -> None:
    first = origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=10)

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "no"}}, "ImportCertificate")

    origin.rotate.acm._local.client().meta.events.register("before-call.acm.ImportCertificate", refuse)
    result = origin.rotate.handler({"source": "schedule"}, lambda_context)
    assert [f["error"] for f in result["failed"]] == ["ClientError"]
    (event,) = origin.subscriber.received()
    assert event["detail-type"] == "Certificate Rotation Failed"
    assert event["detail"]["acm_certificate_arn"] == first["acm_certificate_arn"]
    assert event["detail"]["serial_number"] == first["serial_number"] and event["detail"]["error"] == "ClientError"


def test_a_refused_rotation_event_is_counted_not_raised(
    origin: Any, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=10)
    with _failing_publisher(origin.rotate, origin.rotate.EVENT_ATTEMPTS) as stub:
        result = origin.rotate.handler({"source": "schedule"}, lambda_context)
        stub.assert_no_pending_responses()
    assert len(result["rotated"]) == 1
    out = capsys.readouterr().out
    metrics = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("EventPublicationFailures", [])) for m in metrics) == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["event not put"]



def test_a_failed_put_events_call_after_a_rotation_is_counted_not_raised(
    origin: Any, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A whole PutEvents call refused (AwsCallFailed from the adapter): the rotation's work is done,
    so each event is logged as not put, named after botocore's exception, and counted (alarmed)."""
    origin.issue(sans=DNS, subject={"common_name": "origin"}, lifetime_days=10)
    client = boto3.client("events", region_name=REGION)
    origin.rotate.events = EventPublisher(client, SOURCE)
    with Stubber(client) as stub:
        stub.add_client_error("put_events", "AccessDeniedException")
        result = origin.rotate.handler({"source": "schedule"}, lambda_context)
        stub.assert_no_pending_responses()
    assert len(result["rotated"]) == 1
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("EventPublicationFailures", [])) for m in metrics) == 1
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    # named as botocore named it (its modelled class here), as before the translation
    assert record.getMessage() == "event not put" and record.__dict__["error"] == "AccessDeniedException"

# The issue function makes no PutEvents ----------------------------------------------------------


def test_warm_issuance_still_makes_two_aws_calls_in_all(
    bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, ec_key: Any
) -> None:
    """Counted at botocore's single exit for every client (not only the handler's known ones)."""
    issue = load_handler("issue", bootstrapped.env, monkeypatch)
    issue.handler({"csr": csr_pem(make_csr(ec_key))}, lambda_context)  # cold: CA records, public key
    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counting(self: BaseClient, operation_name: str, api_params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    issue.handler({"csr": csr_pem(make_csr(ec_key))}, lambda_context)
    assert calls == Counter({"kms.Sign": 1, "dynamodb.PutItem": 1})
    assert not hasattr(issue, "events")
