"""The expiry job at fixed times: which threshold is due, each notice once per threshold (also
when the job runs twice), CA certificates, the SNS digest, failed events released for the next
run, and the supersession sweep of renewals with a grace period."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from kmsca.events import Event, EventPublisher
from kmsca.expiry import ExpiryJob, due_threshold
from kmsca.notify import Notifier
from kmsca.records import parse_iso
from kmsca.store import DynamoDbCertificateStore
from kmsca.store.dynamodb.notices import DynamoDbNoticeMarkers
from kmsca.table_keys import ca_key, certificate_key

from tests.support.aws import REGION, CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (timedelta(days=40), None),
        (timedelta(days=30), 30),
        (timedelta(days=13, hours=12), 14),
        (timedelta(days=6), 7),
        (timedelta(hours=1), 1),
        (timedelta(0), None),
        (timedelta(days=-1), None),
    ],
)
def test_due_threshold_is_the_smallest_reached(left: timedelta, expected: int | None) -> None:
    assert due_threshold(T0 + left, T0, (30, 14, 7, 3, 1)) == expected


class RecordingPublisher(EventPublisher):
    """EventBridge stand-in: records events; fails those whose serial number is in ``failing``."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.failing: set[str] = set()

    def publish(self, events: Any) -> list[tuple[Event, str]]:
        failed = [(e, "InternalFailure") for e in events if e.detail["serial_number"] in self.failing]
        self.events += [e for e in events if e.detail["serial_number"] not in self.failing]
        return failed


@pytest.fixture
def setup(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    issue = load_handler("issue", bootstrapped.env, monkeypatch)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="notices")["TopicArn"]
    queue = sqs.create_queue(QueueName="digest")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    publisher = RecordingPublisher()
    job = ExpiryJob(
        DynamoDbCertificateStore(bootstrapped.dynamodb, bootstrapped.table),
        DynamoDbNoticeMarkers(bootstrapped.dynamodb, bootstrapped.table),
        publisher,
        Notifier(sns, topic),
    )

    class Setup:
        events = publisher

        def issue(self, days: int, **request: Any) -> dict[str, Any]:
            key = ec.generate_private_key(ec.SECP256R1())
            return issue.handler({"csr": csr_pem(make_csr(key)), "lifetime_days": days, **request}, lambda_context)

        def run(self, now: datetime) -> Any:
            return job.run(now)

        def digests(self) -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

    return Setup()


def test_a_certificate_within_a_threshold_gets_one_event_and_a_digest(setup: Any) -> None:
    cert = setup.issue(20)
    now = parse_iso(cert["not_after"]) - timedelta(days=13)
    report = setup.run(now)
    assert [(e.detail_type, e.detail["serial_number"], e.detail["threshold_days"]) for e in setup.events.events] == [
        ("Certificate Expiring", cert["serial_number"], 14)
    ]
    assert report.notices[0]["serial_number"] == cert["serial_number"]
    (digest,) = setup.digests()
    assert digest["event"] == "CertificatesExpiring" and digest["count"] == 1


def test_the_job_run_twice_sends_each_notice_once(setup: Any) -> None:
    cert = setup.issue(20)
    now = parse_iso(cert["not_after"]) - timedelta(days=13)
    setup.run(now)
    second = setup.run(now + timedelta(hours=1))
    assert len(setup.events.events) == 1 and second.notices == [] and second.already_sent == 1


def test_the_next_threshold_is_a_new_notice(setup: Any) -> None:
    cert = setup.issue(20)
    not_after = parse_iso(cert["not_after"])
    setup.run(not_after - timedelta(days=13))
    setup.run(not_after - timedelta(days=6))
    assert [e.detail["threshold_days"] for e in setup.events.events] == [14, 7]


def test_revoked_and_distant_certificates_get_no_notice(setup: Any, bootstrapped: CaResources) -> None:
    near = setup.issue(20)
    setup.issue(200)
    revoke = boto3.client("dynamodb", region_name=REGION)
    revoke.update_item(
        TableName=bootstrapped.table,
        Key={"pk": {"S": certificate_key(near['serial_number'])}},
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": {"S": "revoked"}},
    )
    setup.run(parse_iso(near["not_after"]) - timedelta(days=13))
    assert setup.events.events == []


def test_a_failed_event_is_released_and_sent_by_the_next_run(setup: Any) -> None:
    cert = setup.issue(20)
    now = parse_iso(cert["not_after"]) - timedelta(days=13)
    setup.events.failing = {cert["serial_number"]}
    report = setup.run(now)
    assert report.failed == [{"serial_number": cert["serial_number"], "error": "InternalFailure"}]
    setup.events.failing = set()
    assert [n["serial_number"] for n in setup.run(now).notices] == [cert["serial_number"]]


def test_ca_certificates_get_notices_at_their_own_thresholds(setup: Any, bootstrapped: CaResources) -> None:
    issuing = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=bootstrapped.table, Key={"pk": {"S": ca_key("issuing")}}
    )["Item"]
    now = parse_iso(issuing["not_after"]["S"]) - timedelta(days=100)
    setup.run(now)
    ca_events = [e for e in setup.events.events if e.detail_type == "CA Certificate Expiring"]
    assert [(e.detail["ca"], e.detail["threshold_days"]) for e in ca_events] == [("issuing", 180)]


def test_a_renewal_grace_period_ends_in_a_superseded_revocation(setup: Any) -> None:
    old = setup.issue(90)
    new = setup.issue(90, renews=old["serial_number"], revoke_renewed_after_hours=24)
    assert new["serial_number"] != old["serial_number"]
    early = setup.run(datetime.now(UTC) + timedelta(hours=23))
    assert early.superseded == []
    due = setup.run(datetime.now(UTC) + timedelta(hours=25))
    assert due.superseded == [old["serial_number"]]
    again = setup.run(datetime.now(UTC) + timedelta(hours=26))
    assert again.superseded == []
    superseded = [e for e in setup.events.events if e.detail_type == "Certificate Superseded"]
    assert [e.detail["serial_number"] for e in superseded] == [old["serial_number"]]


def test_events_reach_eventbridge_in_batches_of_ten(aws: None) -> None:
    events = boto3.client("events", region_name=REGION)
    publisher = EventPublisher(events, "kmsca.test")
    failed = publisher.publish([Event("Certificate Expiring", {"serial_number": f"{i:02x}"}) for i in range(23)])
    assert failed == []
