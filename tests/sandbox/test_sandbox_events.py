"""Sandbox event sources (utils/sandbox/events.py): Lambda event filtering, DynamoDB stream
pollers, schedules; CloudFront KeyValueStore and connection-function resources.

Three layers: pure functions (filters, record shape, rate expressions); a throwaway template with
a deliberately flaky function (retries, batching, filters, schedules, clean stop); and the real
template.yaml end to end (revocation -> stream -> CRL in S3 and serial in the KVS emulator).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.wait import holds_for, wait_stable, wait_until
from utils.sandbox.events import (
    DynamoDbStreamSource,
    FilterError,
    ScheduleSource,
    lambda_stream_record,
    matches_any,
    matches_pattern,
    parse_filters,
    rate_seconds,
)
from utils.sandbox.kvs import installed_kvs_emulator
from utils.sandbox.resources import _import_source_items
from utils.sandbox.server import FunctionError, Sandbox, SandboxError

REPO = Path(__file__).resolve().parents[2]

# The template's revocation filter (PublishCrlFunction and SyncKvsFunction).
REVOCATION = json.loads(
    '{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["revoked"]}}, '
    '"OldImage": {"status": {"S": ["issued"]}}}}'
)


def record(event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {"Keys": {"pk": {"S": "CERT#0a"}}, "SequenceNumber": "1", "StreamViewType": "x"}
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


# -- filters, record shape, schedules ---------------------------------------------------------------


def test_the_templates_revocation_filter() -> None:
    issued, revoked = {"status": {"S": "issued"}}, {"status": {"S": "revoked"}}
    assert matches_pattern(REVOCATION, record("MODIFY", revoked, issued))
    assert not matches_pattern(REVOCATION, record("INSERT", issued, None))  # an issuance
    assert not matches_pattern(REVOCATION, record("MODIFY", revoked, revoked))  # idempotent re-revoke
    assert not matches_pattern(REVOCATION, record("MODIFY", {"counter": {"N": "2"}}, {"counter": {"N": "1"}}))
    assert not matches_pattern(REVOCATION, record("REMOVE", None, issued))
    assert not matches_pattern(REVOCATION, record("MODIFY", {"status": {"N": "1"}}, issued))


def test_filter_operators() -> None:
    doc = {
        "name": "Revoked-Cert",
        "size": 12,
        "flag": True,
        "tags": ["a", "b"],
        "nested": {"key": "CERT#0a1b", "none": None},
    }
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"name": ["Revoked-Cert", "other"]}, True),
        ({"name": ["revoked-cert"]}, False),
        ({"name": [{"equals-ignore-case": "revoked-cert"}]}, True),
        ({"name": [{"prefix": "Revoked"}]}, True),
        ({"name": [{"suffix": "-Cert"}]}, True),
        ({"name": [{"anything-but": ["Revoked-Cert"]}]}, False),
        ({"name": [{"anything-but": "x"}]}, True),
        ({"name": [{"anything-but": {"prefix": "Rev"}}]}, False),
        ({"size": [{"numeric": [">", 10, "<=", 12]}]}, True),
        ({"size": [{"numeric": ["<", 10]}]}, False),
        ({"size": [12]}, True),
        ({"size": ["12"]}, False),
        ({"flag": [True]}, True),
        ({"flag": [1]}, False),
        ({"tags": ["b"]}, True),  # an array matches when any element does
        ({"tags": ["c"]}, False),
        ({"nested": {"key": [{"prefix": "CERT#"}]}}, True),
        ({"nested": {"key": [{"exists": True}]}}, True),
        ({"nested": {"missing": [{"exists": False}]}}, True),
        ({"nested": {"missing": [{"exists": True}]}}, False),
        ({"nested": {"key": [{"exists": False}]}}, False),
        ({"nested": {"none": [None]}}, True),
        ({"nested": [{"exists": True}]}, True),
        ({"missing": {"deeper": ["x"]}}, False),
        ({"missing": [{"anything-but": ["x"]}]}, False),
    ]
    for pattern, expected in cases:
        assert matches_pattern(pattern, doc) is expected, pattern


def test_filters_are_ored_and_none_means_everything() -> None:
    a, b = {"eventName": ["INSERT"]}, {"eventName": ["REMOVE"]}
    assert matches_any([a, b], {"eventName": "REMOVE"})
    assert not matches_any([a, b], {"eventName": "MODIFY"})
    assert matches_any([], {"eventName": "MODIFY"})


def test_parse_filters() -> None:
    props = {"FilterCriteria": {"Filters": [{"Pattern": json.dumps(REVOCATION)}, {"Pattern": {"a": ["b"]}}]}}
    assert parse_filters(props) == [REVOCATION, {"a": ["b"]}]
    assert parse_filters({}) == []
    for bad in ("{not json", '["a"]', '{"a": "scalar"}', '{"a": [{"wildcard": "x*"}]}', '{"a": [{"x": 1, "y": 2}]}'):
        with pytest.raises(FilterError):
            parse_filters({"FilterCriteria": {"Filters": [{"Pattern": bad}]}})


def test_lambda_stream_record_shape() -> None:
    created = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    raw = {
        "eventID": "e1",
        "eventName": "MODIFY",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",  # what moto says, whatever the table's region
        "dynamodb": {
            "ApproximateCreationDateTime": created,
            "Keys": {"pk": {"S": "CERT#0a"}},
            "NewImage": {"pk": {"S": "CERT#0a"}, "der": {"B": b"\x01\x02"}, "set": {"BS": [b"\xff"]}},
            "SequenceNumber": "42",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    result = lambda_stream_record(raw, "arn:stream", "eu-west-1")
    assert result == {
        "eventID": "e1",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "ApproximateCreationDateTime": int(created.timestamp()),
            "Keys": {"pk": {"S": "CERT#0a"}},
            "NewImage": {"pk": {"S": "CERT#0a"}, "der": {"B": "AQI="}, "set": {"BS": ["/w=="]}},
            "SequenceNumber": "42",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": "arn:stream",
    }
    json.dumps(result)  # what the function receives is plain JSON


def test_rate_expressions() -> None:
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds(" rate(2 days) ") == 172800
    assert rate_seconds("cron(0 3 * * ? *)") is None
    assert rate_seconds("at(2026-11-21T08:00:00)") is None


def test_import_source_items() -> None:
    class FakeS3:
        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
            assert (Bucket, Key) == ("bucket", "seed/data.json")
            body = json.dumps({"data": [{"key": "0a", "value": "v"}]}).encode()
            return {"Body": type("Body", (), {"read": lambda self: body})()}

    class FakeSandbox:
        def client(self, service: str) -> Any:
            return FakeS3()

    source = {"SourceType": "S3", "SourceArn": "arn:aws:s3:::bucket/seed/data.json"}
    assert _import_source_items(FakeSandbox(), source) == {"0a": "v"}  # type: ignore[arg-type]
    assert _import_source_items(FakeSandbox(), None) == {}  # type: ignore[arg-type]
    with pytest.raises(SandboxError):
        _import_source_items(FakeSandbox(), {"SourceType": "S3", "SourceArn": "arn:aws:s3:::bucket"})  # type: ignore[arg-type]


# -- a throwaway template with a flaky function -------------------------------------------------------

FLAKY_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  LogFile:
    Type: String
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Store:
    Type: AWS::CloudFront::KeyValueStore
    Properties:
      Name: !Sub "${AWS::StackName}-store"
      Comment: test store
  Check:
    Type: AWS::CloudFront::ConnectionFunction
    Properties:
      Name: !Sub "${AWS::StackName}-check"
      AutoPublish: false
      ConnectionFunctionConfig:
        Comment: test
        Runtime: cloudfront-js-2.0
        KeyValueStoreAssociations:
          - KeyValueStoreARN: !GetAtt Store.Arn
      ConnectionFunctionCode: "async function connectionHandler(connection) { connection.allow(); }"
  FlakyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/flaky/
      Handler: app.handler
      Runtime: python3.12
      Timeout: 10
      Environment:
        Variables:
          LOG_FILE: !Ref LogFile
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
            BatchSize: 2
            MaximumBatchingWindowInSeconds: 1
            MaximumRetryAttempts: 2
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"kind": {"S": ["flaky"]}}}}'
                - Pattern: '{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "gone-"}]}}}}'
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 3 * * ? *)
            Input: '{"source": "schedule", "n": 1}'
        Legacy:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
  Failures:
    Type: AWS::SQS::Queue
  PoisonFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/flaky/
      Handler: app.poison
      Runtime: python3.12
      Timeout: 10
      Environment:
        Variables:
          LOG_FILE: !Ref LogFile
      Events:
        Poison:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
            BatchSize: 4
            MaximumBatchingWindowInSeconds: 1
            MaximumRetryAttempts: 0
            BisectBatchOnFunctionError: true
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt Failures.Arn
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"kind": {"S": ["bisect"]}}}}'
Outputs:
  StoreArn:
    Value: !GetAtt Store.Arn
  StoreName:
    Value: !Ref Store
  CheckArn:
    Value: !GetAtt Check.ConnectionFunctionArn
"""

FLAKY_APP = """\
import json
import os

LOG = os.environ["LOG_FILE"]


def handler(event, context):
    if "Records" not in event:
        with open(LOG, "a") as f:
            f.write(json.dumps({"schedule": event}) + "\\n")
        return {"schedule": event}
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(LOG) as f:
        previous = sum(1 for line in f if json.loads(line).get("keys") == keys)
    with open(LOG, "a") as f:
        f.write(json.dumps({"keys": keys, "records": event["Records"]}) + "\\n")
    modes = {r["dynamodb"].get("NewImage", {}).get("fail", {}).get("S") for r in event["Records"]}
    if "always" in modes or ("once" in modes and previous == 0):
        raise RuntimeError(f"flaky: {keys}")
    return {"ok": keys}


def poison(event, context):
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(LOG, "a") as f:
        f.write(json.dumps({"poison_batch": keys}) + "\\n")
    if any(key.startswith("poison-") for key in keys):
        raise RuntimeError(f"poison in {keys}")
    return {"ok": keys}
"""


class FlakyProject:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "invocations.jsonl"
        (root / "functions" / "flaky").mkdir(parents=True)
        (root / "template.yaml").write_text(FLAKY_TEMPLATE)
        (root / "functions" / "flaky" / "app.py").write_text(textwrap.dedent(FLAKY_APP))
        self.log.write_text("")

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def batches(self) -> list[list[str]]:
        return [entry["keys"] for entry in self.entries() if "keys" in entry]


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> FlakyProject:
    return FlakyProject(tmp_path_factory.mktemp("flaky"))


@pytest.fixture(scope="module")
def flaky_sandbox(flaky: FlakyProject) -> Iterator[Sandbox]:
    with Sandbox(flaky.root, stack_name="flaky", parameter_overrides={"LogFile": str(flaky.log)}) as sandbox:
        yield sandbox


def put(sandbox: Sandbox, pk: str, **attributes: str) -> None:
    item = {"pk": {"S": pk}, **{k: {"S": v} for k, v in attributes.items()}}
    sandbox.client("dynamodb").put_item(TableName=sandbox.physical["Table"].ref, Item=item)


def stream_source(sandbox: Sandbox, name: str) -> DynamoDbStreamSource:
    source = sandbox.event_sources[name]
    assert isinstance(source, DynamoDbStreamSource)
    return source


@pytest.mark.e2e
def test_matching_records_are_delivered_once(flaky: FlakyProject, flaky_sandbox: Sandbox) -> None:
    source = stream_source(flaky_sandbox, "FlakyFunction.Changes")
    delivered = source.delivered
    put(flaky_sandbox, "ok-1", kind="flaky")
    wait_until(lambda: ["ok-1"] in flaky.batches(), what="delivery of ok-1")
    wait_until(lambda: source.delivered == delivered + 1, what="delivered count")
    (entry,) = [e for e in flaky.entries() if e.get("keys") == ["ok-1"]]
    (received,) = entry["records"]
    assert received["eventName"] == "INSERT"
    assert received["eventSource"] == "aws:dynamodb"
    assert received["eventSourceARN"] == flaky_sandbox.physical["Table"].attrs["StreamArn"]
    assert received["awsRegion"] == flaky_sandbox.region
    assert received["dynamodb"]["NewImage"] == {"pk": {"S": "ok-1"}, "kind": {"S": "flaky"}}
    assert received["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


@pytest.mark.e2e
def test_non_matching_records_are_filtered_out(flaky: FlakyProject, flaky_sandbox: Sandbox) -> None:
    source = stream_source(flaky_sandbox, "FlakyFunction.Changes")
    seen = source.filtered_out
    put(flaky_sandbox, "other-1", kind="other")
    put(flaky_sandbox, "gone-1", kind="other")
    flaky_sandbox.client("dynamodb").delete_item(
        TableName=flaky_sandbox.physical["Table"].ref, Key={"pk": {"S": "other-1"}}
    )
    wait_until(lambda: source.filtered_out >= seen + 3, what="three filtered records")
    flaky_sandbox.client("dynamodb").delete_item(
        TableName=flaky_sandbox.physical["Table"].ref, Key={"pk": {"S": "gone-1"}}
    )  # matches the second filter (REMOVE of gone-*)
    wait_until(lambda: ["gone-1"] in flaky.batches(), what="the REMOVE of gone-1")
    assert all("other-1" not in keys for keys in flaky.batches())


@pytest.mark.e2e
def test_failed_batches_are_retried_then_skipped(flaky: FlakyProject, flaky_sandbox: Sandbox) -> None:
    source = stream_source(flaky_sandbox, "FlakyFunction.Changes")
    failed = source.failed
    put(flaky_sandbox, "once-1", kind="flaky", fail="once")
    wait_until(lambda: flaky.batches().count(["once-1"]) == 2, what="one retry of once-1")
    put(flaky_sandbox, "always-1", kind="flaky", fail="always")
    wait_until(lambda: source.failed == failed + 1, timeout=20, what="always-1 given up")
    assert flaky.batches().count(["always-1"]) == 3  # MaximumRetryAttempts: 2
    put(flaky_sandbox, "after-1", kind="flaky")  # the poller moved on
    wait_until(lambda: ["after-1"] in flaky.batches(), what="delivery after a skipped batch")
    assert flaky.batches().count(["once-1"]) == 2


@pytest.mark.e2e
def test_a_poison_record_is_bisected_out_and_described_to_the_failure_queue(
    flaky: FlakyProject, flaky_sandbox: Sandbox
) -> None:
    """BisectBatchOnFunctionError isolates the record; OnFailure gets its shard and sequence range,
    sent with the function's role (SAM gives it sqs:SendMessage on the destination)."""
    table = flaky_sandbox.physical["Table"].ref
    keys = ["good-a", "good-b", "poison-c", "good-d"]
    flaky_sandbox.client("dynamodb").batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": k}, "kind": {"S": "bisect"}}}} for k in keys]}
    )
    source = stream_source(flaky_sandbox, "PoisonFunction.Poison")
    wait_until(lambda: source.sent_on_failure == 1, timeout=30, what="the poison record sent to the failure queue")
    delivered = {k for entry in flaky.entries() for k in entry.get("poison_batch", []) if not k.startswith("poison")}
    batches = [entry["poison_batch"] for entry in flaky.entries() if "poison_batch" in entry]
    assert ["poison-c"] in batches  # bisected down to the record alone
    succeeded = {k for b in batches if not any(x.startswith("poison") for x in b) for k in b}
    assert succeeded == {"good-a", "good-b", "good-d"} == delivered
    sqs = flaky_sandbox.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=flaky_sandbox.physical["Failures"].ref, WaitTimeSeconds=1)["Messages"]
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["shardId"]
    assert info["streamArn"] == flaky_sandbox.physical["Table"].attrs["StreamArn"]


@pytest.mark.e2e
def test_batches_hold_at_most_batch_size_records(flaky: FlakyProject, flaky_sandbox: Sandbox) -> None:
    table = flaky_sandbox.physical["Table"].ref
    flaky_sandbox.client("dynamodb").batch_write_item(
        RequestItems={
            table: [{"PutRequest": {"Item": {"pk": {"S": f"many-{i}"}, "kind": {"S": "flaky"}}}} for i in range(5)]
        }
    )

    def many() -> list[list[str]]:
        return [b for b in flaky.batches() if b and b[0].startswith("many-")]

    wait_until(lambda: sum(len(b) for b in many()) == 5, what="five records")
    assert max(len(b) for b in many()) <= 2
    assert sorted(k for b in many() for k in b) == [f"many-{i}" for i in range(5)]


@pytest.mark.e2e
def test_trigger_schedule_sends_the_input(flaky: FlakyProject, flaky_sandbox: Sandbox) -> None:
    result = flaky_sandbox.trigger_schedule("FlakyFunction", "Nightly")
    assert result.raise_for_error() == {"schedule": {"source": "schedule", "n": 1}}
    legacy = flaky_sandbox.trigger_schedule("FlakyFunction", "Legacy").raise_for_error()["schedule"]
    assert legacy["detail-type"] == "Scheduled Event"
    assert legacy["source"] == "aws.events"
    assert legacy["region"] == flaky_sandbox.region
    with pytest.raises(SandboxError, match="several schedules"):
        flaky_sandbox.trigger_schedule("FlakyFunction")
    with pytest.raises(SandboxError, match="no schedule event Hourly"):
        flaky_sandbox.trigger_schedule("FlakyFunction", "Hourly")
    with pytest.raises(SandboxError, match="no function"):
        flaky_sandbox.trigger_schedule("NoSuchFunction")
    schedule = flaky_sandbox.schedules[("FlakyFunction", "Nightly")]
    assert isinstance(schedule, ScheduleSource)
    assert schedule.runs == 1

    # the same over HTTP, for processes other than the sandbox's (the demo)
    url = f"{flaky_sandbox.endpoint_url}/__sandbox__/schedules/FlakyFunction/Nightly"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as response:
        assert json.loads(response.read()) == {"schedule": {"source": "schedule", "n": 1}}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(
            urllib.request.Request(f"{flaky_sandbox.endpoint_url}/__sandbox__/schedules/Nope", method="POST")
        )
    assert missing.value.code == 404


@pytest.mark.e2e
def test_key_value_store_and_connection_function(flaky_sandbox: Sandbox) -> None:
    arn = flaky_sandbox.outputs["StoreArn"]
    assert arn.startswith("arn:aws:cloudfront::123456789012:key-value-store/")
    assert flaky_sandbox.outputs["StoreName"] == "flaky-store"
    control = flaky_sandbox.client("cloudfront").describe_key_value_store(Name="flaky-store")["KeyValueStore"]
    assert control["ARN"] == arn
    assert flaky_sandbox.kvs.items(arn) == {}

    function = flaky_sandbox.connection_functions["Check"]
    assert flaky_sandbox.outputs["CheckArn"] == function.arn
    assert function.arn == "arn:aws:cloudfront::123456789012:connection-function/flaky-check"
    assert function.key_value_store_arns == (arn,)
    assert function.runtime == "cloudfront-js-2.0"
    assert function.stage == "DEVELOPMENT"
    assert "connectionHandler" in function.code
    state = flaky_sandbox.state()
    assert state["key_value_stores"] == {"Store": arn}
    assert state["connection_functions"]["Check"]["code"] == function.code
    assert state["schedules"] == {"FlakyFunction": ["Nightly", "Legacy"]}


@pytest.mark.e2e
def test_run_schedules_and_clean_stop(flaky: FlakyProject, flaky_sandbox: Sandbox) -> None:
    """A second sandbox with timers on; stopping it ends its pollers and timers."""
    ours = ("stream-", "schedule-", "sandbox-server")

    def sandbox_threads() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t.name.startswith(ours))

    before = sandbox_threads()
    second = Sandbox(
        flaky.root, stack_name="second", parameter_overrides={"LogFile": str(flaky.log)}, run_schedules=True
    ).start()
    try:
        legacy = second.schedules[("FlakyFunction", "Legacy")]
        nightly = second.schedules[("FlakyFunction", "Nightly")]
        assert legacy._thread is not None and legacy._thread.is_alive()  # rate(1 hour): on a timer
        assert nightly._thread is None  # cron(): on demand only
        poller = stream_source(second, "FlakyFunction.Changes")
        assert poller._thread is not None and poller._thread.is_alive()
        threads = [legacy._thread, poller._thread]
    finally:
        second.stop()
    assert not any(t.is_alive() for t in threads)
    assert second.event_sources == {}
    assert sandbox_threads() == before
    # the first sandbox still works, with the same emulator installed
    assert installed_kvs_emulator() is flaky_sandbox.kvs
    put(flaky_sandbox, "still-1", kind="flaky")
    wait_until(lambda: ["still-1"] in flaky.batches(), what="delivery after the second sandbox stopped")


# -- the real template, end to end -----------------------------------------------------------------


def make_csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def ca(flaky_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The real template (starts after the flaky sandbox, which stays up: moto is shared)."""
    with Sandbox(REPO) as sandbox:
        yield sandbox


def issuing_crl(sandbox: Sandbox) -> x509.CertificateRevocationList:
    body = sandbox.client("s3").get_object(Bucket=sandbox.outputs["PublicBucketName"], Key="issuing.crl")["Body"]
    return x509.load_der_x509_crl(body.read())


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def deliveries(sandbox: Sandbox) -> dict[str, int]:
    return {
        name: source.delivered
        for name, source in sandbox.event_sources.items()
        if isinstance(source, DynamoDbStreamSource)
    }


def quiet_period(sandbox: Sandbox) -> float:
    """Seconds within which a stream record is handed to its function if it ever is: the longest
    batching window of the sandbox's stream sources plus one poll."""
    sources = [s for s in sandbox.event_sources.values() if isinstance(s, DynamoDbStreamSource)]
    return max(s.window + s.poll_interval for s in sources)


@pytest.mark.e2e
def test_a_revocation_reaches_the_crl_and_the_kvs_through_the_stream(ca: Sandbox) -> None:
    serial = ca.invoke("IssueFunction", {"csr": make_csr("to-revoke")})["serial_number"]
    kvs_arn = ca.outputs["RevokedSerialsStoreArn"]
    ca.invoke("RevokeFunction", {"serial_number": serial, "reason": "keyCompromise"})

    def published() -> x509.RevokedCertificate | None:
        return issuing_crl(ca).get_revoked_certificate_by_serial_number(int(serial, 16))

    # through the stream within seconds (not on a later schedule)
    entry = wait_until(published, timeout=10, what="the serial in issuing.crl")
    value = wait_until(lambda: ca.kvs.items(kvs_arn).get(serial), timeout=10, what="the serial in the KVS")
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert value.endswith(" keyCompromise")
    assert ca.kvs.last_authorization is not None and ca.kvs.last_authorization.startswith("AWS4-ECDSA-P256-SHA256")
    # a delivery counts once the invocation has returned, a moment after its writes are visible
    wait_until(lambda: min(deliveries(ca).values()) >= 1, timeout=15, what="both stream deliveries counted")
    counts = deliveries(ca)
    assert counts["PublishCrlFunction.Revocations"] >= 1
    assert counts["SyncKvsFunction.Revocations"] >= 1


@pytest.mark.e2e
def test_changes_that_are_not_revocations_trigger_nothing(ca: Sandbox) -> None:
    """An issuance reaches only the CRL function (for its Certificate Issued event; no CRL), an
    unrelated item reaches nobody."""
    # let deliveries of earlier tests finish: no new one for longer than a batching window and a poll
    before = wait_stable(lambda: deliveries(ca), quiet=quiet_period(ca), what="deliveries of earlier tests")
    filtered = {
        name: source.filtered_out
        for name, source in ca.event_sources.items()
        if isinstance(source, DynamoDbStreamSource)
    }
    kvs_etag = ca.kvs.etag(ca.outputs["RevokedSerialsStoreArn"])
    number = crl_number(issuing_crl(ca))

    ca.invoke("IssueFunction", {"csr": make_csr("not-revoked")})
    ca.client("dynamodb").put_item(
        TableName=ca.outputs["CaTableName"], Item={"pk": {"S": "TEST#unrelated"}, "status": {"S": "revoked"}}
    )
    seen = {"PublishCrlFunction.Revocations": 1, "SyncKvsFunction.Revocations": 2}
    for name, source in ca.event_sources.items():
        if isinstance(source, DynamoDbStreamSource):
            wait_until(lambda s=source, n=name: s.filtered_out >= filtered[n] + seen[n], what=f"{name} saw the changes")
    wait_until(
        lambda: deliveries(ca)["PublishCrlFunction.Revocations"] > before["PublishCrlFunction.Revocations"],
        what="the issuance delivered to the CRL function",
    )
    holds_for(  # for longer than the batching window and a poll: the issuance is not delivered
        lambda: deliveries(ca)["SyncKvsFunction.Revocations"] == before["SyncKvsFunction.Revocations"],
        seconds=quiet_period(ca), what="no delivery to the KeyValueStore sync",
    )
    assert ca.kvs.etag(ca.outputs["RevokedSerialsStoreArn"]) == kvs_etag
    assert crl_number(issuing_crl(ca)) == number


def subscribe(sandbox: Sandbox, name: str, detail_types: list[str]) -> Callable[[], list[dict[str, Any]]]:
    """A rule on the stack's events with an SQS target; returns a reader of everything received so far."""
    sqs, events = sandbox.client("sqs"), sandbox.client("events")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [sandbox.outputs["CertificateEventSource"]], "detail-type": detail_types}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    received: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return received

    return read


@pytest.mark.e2e
def test_issued_and_revoked_events_reach_eventbridge(ca: Sandbox) -> None:
    """The CRL function's role may put them (IAM enforced) and a subscriber's rule receives them."""
    read = subscribe(ca, "certificate-events", ["Certificate Issued", "Certificate Revoked"])

    def of(serial: str) -> list[str]:
        return [e["detail-type"] for e in read() if e["detail"]["serial_number"] == serial]

    serial = ca.invoke("IssueFunction", {"csr": make_csr("evented")})["serial_number"]
    wait_until(lambda: of(serial) == ["Certificate Issued"], what="the Certificate Issued event")
    ca.invoke("RevokeFunction", {"serial_number": serial, "reason": "affiliationChanged"})
    wait_until(lambda: of(serial) == ["Certificate Issued", "Certificate Revoked"], what="the Certificate Revoked event")
    (revoked,) = [e for e in read() if e["detail-type"] == "Certificate Revoked"]
    assert revoked["detail"]["revocation_reason"] == "affiliationChanged"


@pytest.mark.e2e
def test_scheduled_jobs_on_demand(ca: Sandbox) -> None:
    number = crl_number(issuing_crl(ca))
    published = ca.trigger_schedule("PublishCrlFunction").raise_for_error()
    assert int(published["IssuingCrlNumber"]) > number
    assert "RootCrlNumber" in published
    report = ca.trigger_schedule("SyncKvsFunction", "Reconcile").raise_for_error()
    assert "update_keys" not in report["calls"]  # in sync already: describe + list only
    assert ca.trigger_schedule("RotateAcmFunction").raise_for_error()["failed"] == []


@pytest.mark.e2e
def test_connection_function_and_store_of_the_real_template(ca: Sandbox) -> None:
    kvs_arn = ca.outputs["RevokedSerialsStoreArn"]
    (edge,) = ca.stacks.values()  # the nested EdgeStack (edge/template.yaml)
    assert (
        kvs_arn
        == edge.physical["RevokedSerialsStore"].attrs["Arn"]
        == ca.state()["key_value_stores"]["RevokedSerialsStore"]
    )
    function = ca.connection_functions["RevocationCheckFunction"]
    assert ca.outputs["RevocationCheckFunctionArn"] == function.arn
    assert function.arn.endswith(":connection-function/kmsca-dev-eu-west-1-revcheck-fn")  # account-global: region in it
    assert function.key_value_store_arns == (kvs_arn,)
    assert function.code == (REPO / "functions" / "connection" / "connection.js").read_text().rstrip("\n") + "\n"
    assert function.stage == "LIVE"


@pytest.mark.e2e
def test_acm_us_east_1_import_and_rotation_in_place(ca: Sandbox) -> None:
    issued = ca.invoke(
        "IssueFunction",
        {
            "profile": "cloudfront-origin",
            "subject": {"common_name": "origin.example"},
            "sans": [{"type": "dns", "value": "origin.example"}],
            "lifetime_days": 10,
        },
    )
    arn = issued["acm_certificate_arn"]
    assert arn.startswith("arn:aws:acm:us-east-1:")
    acm = ca.client("acm", region="us-east-1")
    details = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert {"Name": "TLS_WEB_CLIENT_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.2"} in details["ExtendedKeyUsages"]
    assert details["KeyAlgorithm"] == "EC_prime256v1"
    assert details["Serial"].replace(":", "") == issued["serial_number"]
    assert arn not in [c["CertificateArn"] for c in ca.client("acm").list_certificates()["CertificateSummaryList"]]

    read = subscribe(ca, "rotation-events", ["Certificate Rotated", "Certificate Rotation Failed"])
    report = ca.trigger_schedule("RotateAcmFunction").raise_for_error()  # 10 days < the 30-day window
    (rotated,) = [r for r in report["rotated"] if r["acm_certificate_arn"] == arn]
    # the rotation function's role may put its event (IAM enforced), and it reaches a subscriber
    event = wait_until(
        lambda: next((e for e in read() if e["detail"]["acm_certificate_arn"] == arn), None), what="Certificate Rotated"
    )
    assert event["detail-type"] == "Certificate Rotated"
    assert event["detail"]["serial_number"] == rotated["new_serial_number"]
    after = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert after["Serial"].replace(":", "") == rotated["new_serial_number"] != issued["serial_number"]
    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags["managed-by"] == "kmsca"
    assert tags["kmsca:serial-number"] == rotated["new_serial_number"]
    # the superseded certificate is revoked: the stream carries it to the KVS
    kvs_arn = ca.outputs["RevokedSerialsStoreArn"]
    value = wait_until(lambda: ca.kvs.items(kvs_arn).get(issued["serial_number"]), what="superseded serial in the KVS")
    assert value.endswith(" superseded")


@pytest.mark.e2e
def test_kvs_from_another_process(ca: Sandbox) -> None:
    """GET /__sandbox__/kvs and the KVS data plane over HTTP (redirect_kvs_clients)."""
    kvs_arn = ca.outputs["RevokedSerialsStoreArn"]
    with urllib.request.urlopen(f"{ca.endpoint_url}/__sandbox__/kvs", timeout=10) as response:
        everything = json.loads(response.read())
    assert everything["stores"][kvs_arn]["Items"] == ca.kvs.items(kvs_arn)
    quoted = urllib.request.quote(kvs_arn, safe="")
    with urllib.request.urlopen(f"{ca.endpoint_url}/__sandbox__/kvs/{quoted}", timeout=10) as response:
        one = json.loads(response.read())
    assert one["KvsARN"] == kvs_arn
    assert one["ETag"] == ca.kvs.etag(kvs_arn)

    code = textwrap.dedent(
        f"""
        import json, boto3
        from utils.sandbox.kvs import redirect_kvs_clients
        redirect_kvs_clients({ca.endpoint_url!r})
        kvs = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
        arn = {kvs_arn!r}
        etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
        keys = [i["Key"] for p in kvs.get_paginator("list_keys").paginate(KvsARN=arn) for i in p["Items"]]
        try:
            kvs.put_key(KvsARN=arn, Key="ff", Value="x", IfMatch="stale")
            conflict = False
        except kvs.exceptions.ConflictException:
            conflict = True
        print(json.dumps({{"etag": etag, "keys": keys, "conflict": conflict}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        # as the sandbox administrator: the operator's policies do not reach the KeyValueStore
        env={**ca.env(), **ca.admin.credentials, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {"etag": ca.kvs.etag(kvs_arn), "keys": sorted(ca.kvs.items(kvs_arn)), "conflict": True}


@pytest.mark.e2e
def test_invoke_errors_are_still_function_errors(ca: Sandbox) -> None:
    with pytest.raises(FunctionError) as refused:
        ca.invoke("RevokeFunction", {"serial_number": "zz"})
    assert refused.value.error_type == "InvalidRequest"
