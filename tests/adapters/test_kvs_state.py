"""Reconcile cost with the CA's remembered last write (kmsca.kvs_state): an idle reconcile is one
DescribeKeyValueStore; anything the CA did not write, or cannot vouch for, means a full listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kmsca.kvs import FULL_LISTING_INTERVAL, KeyValueStoreSync
from kmsca.kvs_state import DynamoDbKvsState, add_to_digest, content_digest
from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream

from tests.handlers.test_kvs_sync import _revoke_many, _serial, _stream_record
from tests.support.aws import CaResources, put_revoked
from utils.sandbox.kvs import install_kvs_emulator, uninstall_kvs_emulator

DESCRIBE_ONLY = {"describe_key_value_store": 1}


@pytest.fixture
def kvs(bootstrapped: CaResources) -> Any:
    emulator = install_kvs_emulator()
    emulator.reset()
    arn = boto3.client("cloudfront").create_key_value_store(Name="revoked")["KeyValueStore"]["ARN"]
    store = DynamoDbCertificateStore(bootstrapped.dynamodb, bootstrapped.table)
    state = DynamoDbKvsState(bootstrapped.dynamodb, bootstrapped.table, arn)
    client = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    yield {"emulator": emulator, "arn": arn, "resources": bootstrapped, "state": state, "client": client,
           "sync": KeyValueStoreSync(client, arn, store, "issuing", state=state)}
    uninstall_kvs_emulator()


def test_digest_is_order_independent_and_additive() -> None:
    items = {"0a": "x", "0b": "y", "0c": "z"}
    assert content_digest(items) == content_digest(dict(reversed(list(items.items()))))
    assert add_to_digest(content_digest({"0a": "x"}), [("0b", "y"), ("0c", "z")]) == content_digest(items)
    assert content_digest({"0a": "x"}) != content_digest({"0a": "y"})


def test_idle_reconcile_is_one_kvs_call(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 120)
    first = kvs["sync"].reconcile(datetime.now(UTC))
    assert first.listed and first.puts == 120
    idle = kvs["sync"].reconcile(datetime.now(UTC))
    assert idle.calls == DESCRIBE_ONLY and not idle.listed and (idle.puts, idle.deletes) == (0, 0)


def test_a_write_the_ca_did_not_make_means_a_full_listing(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    etag = kvs["client"].describe_key_value_store(KvsARN=kvs["arn"])["ETag"]
    kvs["client"].update_keys(KvsARN=kvs["arn"], IfMatch=etag, Puts=[{"Key": "0bad", "Value": "by hand"}])
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert report.listed and report.deletes == 1
    assert set(kvs["emulator"].items(kvs["arn"])) == {_serial(i) for i in range(3)}
    assert kvs["sync"].reconcile(datetime.now(UTC)).calls == DESCRIBE_ONLY


def test_expired_keys_are_deleted_without_listing(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    put_revoked(kvs["resources"], _serial(1), datetime.now(UTC) + timedelta(minutes=1))  # same value, expires soon
    kvs["sync"].reconcile(datetime.now(UTC))  # the digest still matches: nothing to do
    later = datetime.now(UTC) + timedelta(minutes=2)
    report = kvs["sync"].reconcile(later)
    assert report.calls == {"describe_key_value_store": 1, "update_keys": 1} and report.deletes == 1
    assert set(kvs["emulator"].items(kvs["arn"])) == {_serial(0), _serial(2)}
    assert kvs["sync"].reconcile(later).calls == DESCRIBE_ONLY


def test_a_stream_revocation_carries_the_state_forward(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    record = _stream_record(_serial(9), days=30)
    record["dynamodb"]["NewImage"]["crl_entry"]["S"] = "2026-11-01T00:00:00Z keyCompromise"  # as put_revoked
    put_revoked(kvs["resources"], _serial(9), datetime.now(UTC) + timedelta(days=30))
    kvs["sync"].apply_revocations(revoked_entries_from_stream([record]), datetime.now(UTC))
    assert kvs["sync"].reconcile(datetime.now(UTC)).calls == DESCRIBE_ONLY
    assert len(kvs["emulator"].items(kvs["arn"])) == 4


def test_a_revocation_the_stream_missed_is_found(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    put_revoked(kvs["resources"], _serial(7), datetime.now(UTC) + timedelta(days=30))  # no stream record
    report = kvs["sync"].reconcile(datetime.now(UTC))
    assert report.listed and report.puts == 1 and _serial(7) in kvs["emulator"].items(kvs["arn"])


def test_a_key_lost_without_an_etag_change_is_restored_by_the_safety_net(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 3)
    kvs["sync"].reconcile(datetime.now(UTC))
    kvs["emulator"]._stores[kvs["arn"]].items.pop(_serial(0))  # a fault: a key lost, the ETag unchanged
    assert kvs["sync"].reconcile(datetime.now(UTC)).calls == DESCRIBE_ONLY  # trusted within the interval
    report = kvs["sync"].reconcile(datetime.now(UTC) + FULL_LISTING_INTERVAL + timedelta(minutes=1))
    assert report.listed and report.puts == 1 and _serial(0) in kvs["emulator"].items(kvs["arn"])


def test_no_state_or_an_unreadable_one_means_a_full_listing(kvs: Any) -> None:
    _revoke_many(kvs["resources"], 2)
    assert kvs["sync"].reconcile(datetime.now(UTC)).listed
    resources = kvs["resources"]
    key = {"pk": {"S": f"KVSSTATE#{kvs['arn'].rsplit('/', 1)[-1]}"}}
    resources.dynamodb.update_item(TableName=resources.table, Key=key, UpdateExpression="SET digest = :d",
                                   ExpressionAttributeValues={":d": {"S": "not hex"}})
    assert kvs["state"].get() is None
    assert kvs["sync"].reconcile(datetime.now(UTC)).listed
