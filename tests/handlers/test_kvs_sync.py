"""KeyValueStore sync against the KVS emulator (utils/sandbox/kvs.py): incremental after a
revocation, full reconcile in batches of 50 chained by ETag, conflicts, expiry, capacity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kmsca.kvs import KeyValueStoreSync, KvsCapacityExceeded, KvsConflict, kvs_value
from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream

from tests.support.aws import CaResources, FakeContext, load_handler, put_revoked
from utils.sandbox.kvs import install_kvs_emulator, uninstall_kvs_emulator


@pytest.fixture
def kvs(bootstrapped: CaResources) -> Any:
    emulator = install_kvs_emulator()
    emulator.reset()
    arn = boto3.client("cloudfront").create_key_value_store(Name="revoked")["KeyValueStore"]["ARN"]
    store = DynamoDbCertificateStore(bootstrapped.dynamodb, bootstrapped.table)
    client = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    yield {"emulator": emulator, "arn": arn, "store": store, "resources": bootstrapped,
           "sync": KeyValueStoreSync(client, arn, store, "issuing")}
    uninstall_kvs_emulator()


def _serial(i: int) -> str:
    return format(0x5A000000 + i, "x")


def _revoke_many(resources: CaResources, count: int, days: int = 30) -> None:
    for i in range(count):
        put_revoked(resources, _serial(i), datetime.now(UTC) + timedelta(days=days))


def test_reconcile_from_empty_in_batches_of_fifty(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 120)
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert (report.puts, report.deletes) == (120, 0)
    assert report.calls == {"describe_key_value_store": 1, "list_keys": 1, "update_keys": 3}
    items = kvs["emulator"].items(kvs["arn"])
    assert len(items) == 120 and items[_serial(0)] == "2026-11-01T00:00:00Z keyCompromise"
    assert len(items[_serial(0)].encode()) < 64


def test_reconcile_with_nothing_to_do_only_reads(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 60)
    kvs["sync"].reconcile(datetime.now(UTC))
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert (report.puts, report.deletes) == (0, 0)
    assert report.calls == {"describe_key_value_store": 1, "list_keys": 2}


def test_one_revocation_is_two_calls(kvs: Any) -> None:
    entry = next(iter(revoked_entries_from_stream([_stream_record(_serial(7), days=30)])))
    report = kvs["sync"].apply_revocations([entry], datetime.now(UTC))
    assert report.calls == {"describe_key_value_store": 1, "update_keys": 1}
    assert kvs["emulator"].items(kvs["arn"]) == {_serial(7): kvs_value(entry)}


def test_expired_certificates_leave_the_store(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    put_revoked(kvs["resources"], _serial(1), datetime.now(UTC) - timedelta(minutes=1))  # now expired
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert report.deletes == 1 and set(kvs["emulator"].items(kvs["arn"])) == {_serial(0), _serial(2)}


def test_keys_not_in_the_inventory_are_removed(kvs: Any) -> None:
    emulator, arn = kvs["emulator"], kvs["arn"]
    client = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    etag = client.describe_key_value_store(KvsARN=arn)["ETag"]
    client.update_keys(KvsARN=arn, IfMatch=etag, Puts=[{"Key": "0bad", "Value": "typed by hand"}])
    assert kvs["sync"].reconcile(datetime.now(UTC)).deletes == 1
    assert emulator.items(arn) == {}


def test_three_conflicts_then_success(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 10)
    kvs["emulator"].inject_conflicts(kvs["arn"], 3)
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert report.conflicts == 3 and report.puts == 10
    assert report.calls["describe_key_value_store"] == 4  # one, then a fresh ETag after each conflict
    assert len(kvs["emulator"].items(kvs["arn"])) == 10


def test_persistent_conflicts_raise_lose_nothing_and_the_next_reconcile_heals(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 10)
    kvs["emulator"].inject_conflicts(kvs["arn"], 100)
    with pytest.raises(KvsConflict):
        kvs["sync"].reconcile(datetime.now(UTC))
    assert kvs["emulator"].items(kvs["arn"]) == {}
    kvs["emulator"].inject_conflicts(kvs["arn"], 0)
    assert kvs["sync"].reconcile(datetime.now(UTC)).puts == 10


def test_capacity_is_checked_before_writing(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 5)
    small = KeyValueStoreSync(boto3.client("cloudfront-keyvaluestore", region_name="us-east-1"), kvs["arn"],
                              kvs["store"], "issuing", max_store_bytes=100)
    with pytest.raises(KvsCapacityExceeded, match="5 revoked serial numbers need"):
        small.reconcile(datetime.now(UTC))
    assert kvs["emulator"].items(kvs["arn"]) == {}


def _stream_record(serial: str, days: int) -> dict[str, Any]:
    not_after = (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "NewImage": {"pk": {"S": f"CERT#{serial}"}, "status": {"S": "revoked"}, "not_after": {"S": not_after},
                         "crl_entry": {"S": "2026-11-21T08:00:00Z keyCompromise"}},
            "OldImage": {"pk": {"S": f"CERT#{serial}"}, "status": {"S": "issued"}},
        },
    }


def test_handler_applies_stream_batches_and_reconciles_on_schedule(
    kvs: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    topic = boto3.client("sns").create_topic(Name="n")["TopicArn"]
    env = {**kvs["resources"].env, "KVS_ARN": kvs["arn"], "NOTIFICATION_TOPIC_ARN": topic}
    module = load_handler("sync_kvs", env, monkeypatch)
    result = module.handler({"Records": [_stream_record("0abc", 30), _stream_record("0abd", -1)]}, lambda_context)
    assert result["puts"] == 1 and kvs["emulator"].items(kvs["arn"]) == {"0abc": "2026-11-21T08:00:00Z keyCompromise"}
    result = module.handler({"source": "schedule"}, lambda_context)
    assert result["deletes"] == 1  # 0abc is not revoked in the inventory


def test_handler_notifies_when_the_store_would_overflow(
    kvs: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="n")["TopicArn"]
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    _revoke_many(kvs["resources"], 3)
    module = load_handler("sync_kvs", {**kvs["resources"].env, "KVS_ARN": kvs["arn"],
                                        "NOTIFICATION_TOPIC_ARN": topic}, monkeypatch)
    monkeypatch.setattr(module.sync, "max_store_bytes", 50)
    with pytest.raises(KvsCapacityExceeded):
        module.handler({"source": "schedule"}, lambda_context)
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(json.loads(message["Body"])["Message"])["event"] == "KvsCapacityExceeded"


# Races and faults (issue: "Nothing lost, nothing stuck", items 3 and 5) -------------------------


def _revoke_in_table_and_stream(kvs: Any, serial: str) -> None:
    """A revocation as it happens: the item in the table, then the stream's put into the store."""
    put_revoked(kvs["resources"], serial, datetime.now(UTC) + timedelta(days=30))
    entry = revoked_entries_from_stream([_stream_record(serial, days=30)])
    kvs["sync"].apply_revocations(entry, datetime.now(UTC))


def test_a_serial_revoked_while_the_reconcile_reads_the_inventory_is_not_deleted(
    kvs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    real = DynamoDbCertificateStore.list_revoked

    def racing(self: Any, *args: Any, **kwargs: Any) -> Any:
        entries = list(real(self, *args, **kwargs))  # the inventory as read...
        _revoke_in_table_and_stream(kvs, "0cafe0")  # ...then a revocation lands, and the stream puts it
        return iter(entries)

    monkeypatch.setattr(DynamoDbCertificateStore, "list_revoked", racing)
    kvs["sync"].reconcile(datetime.now(UTC))
    assert "0cafe0" in kvs["emulator"].items(kvs["arn"])


def test_a_serial_the_lagging_index_does_not_show_yet_is_not_deleted(kvs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _revoke_in_table_and_stream(kvs, "0cafe1")  # in the table and the store, not yet in the index
    real = DynamoDbCertificateStore.list_revoked
    monkeypatch.setattr(
        DynamoDbCertificateStore, "list_revoked",
        lambda self, *a, **k: (e for e in real(self, *a, **k) if e.serial_number != "0cafe1"),
    )
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert report.deletes == 0 and report.kept == 1
    assert "0cafe1" in kvs["emulator"].items(kvs["arn"])


class FaultyClient:
    """The KVS client, with one operation failing with an AWS error code (botocore's ClientError)."""

    def __init__(self, client: Any, operation: str, code: str) -> None:
        self._client, self._operation, self._code = client, operation, code

    def __getattr__(self, name: str) -> Any:
        if name != self._operation:
            return getattr(self._client, name)

        def fail(**kwargs: Any) -> Any:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": self._code, "Message": "injected"}}, name)

        return fail


@pytest.mark.parametrize("operation", ["describe_key_value_store", "list_keys", "update_keys"])
@pytest.mark.parametrize(
    "code", ["ValidationException", "ThrottlingException", "ServiceQuotaExceededException", "AccessDeniedException"]
)
def test_every_kvs_failure_is_counted_for_the_alarm_and_the_next_run_repairs(
    kvs: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str],
    operation: str, code: str,
) -> None:
    """A failing store does not fail the batch (kmsca.kvs_fanout): it is counted, its state marked
    for a full reconcile, and the next reconcile repairs it."""
    _revoke_many(kvs["resources"], 3)
    topic = boto3.client("sns").create_topic(Name="n")["TopicArn"]
    module = load_handler("sync_kvs", {**kvs["resources"].env, "KVS_ARN": kvs["arn"],
                                        "NOTIFICATION_TOPIC_ARN": topic}, monkeypatch)
    real_client = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    module.sync._local_client = FaultyClient(real_client, operation, code)
    capsys.readouterr()
    for event in ({"source": "schedule"}, {"Records": [_stream_record("0abc", 30)]}):
        if operation == "list_keys" and "Records" in event:
            continue  # the stream path does not list
        assert module.handler(event, lambda_context)["failed"] == {"local": code}
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = [m.get("KvsSyncFailures", 0) for m in metrics]
    failures = sum(sum(v) if isinstance(v, list) else v for v in values)
    assert failures == (1 if operation == "list_keys" else 2)
    per_target = [m for m in metrics if "EdgeTargetSyncFailed" in m]
    assert per_target and all(m["target"] == "local" for m in per_target)
    assert kvs["emulator"].items(kvs["arn"]) == {}  # nothing half-written
    module.sync._local_client = real_client
    assert module.handler({"source": "schedule"}, lambda_context)["puts"] == 3
    assert len(kvs["emulator"].items(kvs["arn"])) == 3
