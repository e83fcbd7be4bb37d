"""Revocations to every edge target's KeyValueStore (kmsca.kvs_fanout, the sync function): two
workload accounts in moto, each store written through its edge role; a failing target (throttled,
role refused) does not hold back the other, is recorded for a full reconcile and alarmed, and the
next reconcile repairs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from kmsca.edge_session import EdgeSessions
from kmsca.kvs_fanout import KVS_REGION, KVS_SERVICE
from kmsca.table_keys import kvs_state_key
from kmsca.targets import DynamoDbTargetStore

from tests.support.aws import CaResources, FakeContext, load_handler, put_revoked
from tests.support.edge_accounts import EXTERNAL_ID, OTHER, WORKLOAD, TrustingSts, make_edge_account
from utils.sandbox.kvs import install_kvs_emulator, uninstall_kvs_emulator


def _stream_record(serial: str, days: int = 30) -> dict[str, Any]:
    not_after = (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    image = {"pk": {"S": f"CERT#{serial}"}, "status": {"S": "revoked"}, "not_after": {"S": not_after},
             "crl_entry": {"S": "2026-11-21T08:00:00Z keyCompromise"}}  # fmt: skip
    return {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "OldImage": {**image, "status": {"S": "issued"}}}}


@pytest.fixture
def fan(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = install_kvs_emulator()
    emulator.reset()
    a, b = make_edge_account(WORKLOAD), make_edge_account(OTHER)
    targets = DynamoDbTargetStore(bootstrapped.dynamodb, bootstrapped.table)
    targets.put(a.target("a"))
    targets.put(b.target("b"))
    sts = TrustingSts({a.role_arn: EXTERNAL_ID, b.role_arn: EXTERNAL_ID})
    topic = boto3.client("sns").create_topic(Name="n")["TopicArn"]
    module = load_handler("sync_kvs", {**bootstrapped.env, "NOTIFICATION_TOPIC_ARN": topic}, monkeypatch)
    sessions = EdgeSessions(sts, "kmsca-dev-SyncKvsFunction")
    monkeypatch.setattr(module.sync, "_sessions", sessions)
    yield {"emulator": emulator, "a": a, "b": b, "sts": sts, "module": module, "sessions": sessions,
           "resources": bootstrapped, "targets": targets}  # fmt: skip
    uninstall_kvs_emulator()


def _state(fan: Any, name: str) -> dict[str, Any]:
    resources = fan["resources"]
    key = {"pk": {"S": kvs_state_key(name)}}
    return resources.dynamodb.get_item(TableName=resources.table, Key=key).get("Item") or {}


def test_a_revocation_reaches_every_target_through_its_role(fan: Any, lambda_context: FakeContext) -> None:
    emulator, module = fan["emulator"], fan["module"]
    result = module.handler({"Records": [_stream_record("0abc")]}, lambda_context)
    assert result["failed"] == {} and result["puts"] == 2
    for account in (fan["a"], fan["b"]):
        assert emulator.items(account.kvs_arn) == {"0abc": "2026-11-21T08:00:00Z keyCompromise"}
        assert emulator.call_counts(account.kvs_arn) == {"DescribeKeyValueStore": 1, "UpdateKeys": 1}
    assert [c["RoleArn"] for c in fan["sts"].calls] == [fan["a"].role_arn, fan["b"].role_arn]
    assert all(c["ExternalId"] == EXTERNAL_ID for c in fan["sts"].calls)
    module.handler({"Records": [_stream_record("0abd")]}, lambda_context)
    assert len(fan["sts"].calls) == 2  # sessions are cached per container


def test_an_idle_reconcile_costs_one_describe_per_target(fan: Any, lambda_context: FakeContext) -> None:
    emulator, module = fan["emulator"], fan["module"]
    put_revoked(fan["resources"], "0a01", datetime.now(UTC) + timedelta(days=30))
    assert module.handler({"source": "schedule"}, lambda_context)["puts"] == 2
    emulator.reset_call_counts()
    result = module.handler({"source": "schedule"}, lambda_context)
    assert result["puts"] == 0 and result["failed"] == {}
    for account in (fan["a"], fan["b"]):
        assert emulator.call_counts(account.kvs_arn) == {"DescribeKeyValueStore": 1}
    assert {"etag", "digest"} <= set(_state(fan, "a")) and {"etag", "digest"} <= set(_state(fan, "b"))


def _throttle(fan: Any, name: str) -> Stubber:
    """Stub the target's cached KeyValueStore client: every call is throttled."""
    client = fan["sessions"]._clients[(name, KVS_SERVICE, KVS_REGION)][0]
    stubber = Stubber(client)
    for _ in range(3):
        stubber.add_client_error("describe_key_value_store", "ThrottlingException", http_status_code=400)
    stubber.activate()
    return stubber


def test_a_throttled_target_does_not_hold_back_the_other_and_the_reconcile_repairs_it(
    fan: Any, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, module, a, b = fan["emulator"], fan["module"], fan["a"], fan["b"]
    module.handler({"source": "schedule"}, lambda_context)  # sessions and clients made, states written
    stubber = _throttle(fan, "b")
    capsys.readouterr()
    put_revoked(fan["resources"], "0abc", datetime.now(UTC) + timedelta(days=30))
    result = module.handler({"Records": [_stream_record("0abc")]}, lambda_context)  # does not raise
    assert result["failed"] == {"b": "ThrottlingException"}
    assert "0abc" in emulator.items(a.kvs_arn) and emulator.items(b.kvs_arn) == {}
    stale = _state(fan, "b")
    assert stale["error_code"]["S"] == "ThrottlingException" and "etag" not in stale
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    failed = [m for m in metrics if "EdgeTargetSyncFailed" in m]
    assert [(m["target"], m["service"]) for m in failed] == [("b", failed[0]["service"])]
    dimensions = failed[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    assert set(dimensions) == {"service", "target"}
    stubber.deactivate()
    result = module.handler({"source": "schedule"}, lambda_context)
    assert result["failed"] == {} and result["targets"]["b"]["listed"] is True and result["targets"]["b"]["puts"] == 1
    assert emulator.items(b.kvs_arn) == emulator.items(a.kvs_arn) == {"0abc": "2026-11-01T00:00:00Z keyCompromise"}


def test_a_refused_role_is_recorded_and_the_other_target_synced(fan: Any, lambda_context: FakeContext) -> None:
    emulator, module, a, b = fan["emulator"], fan["module"], fan["a"], fan["b"]
    fan["sts"].required[b.role_arn] = "someone-changed-the-external-id"
    result = module.handler({"Records": [_stream_record("0abc")]}, lambda_context)
    assert result["failed"] == {"b": "EdgeRoleRefused"}
    assert "0abc" in emulator.items(a.kvs_arn) and emulator.items(b.kvs_arn) == {}
    assert _state(fan, "b")["error_code"]["S"] == "EdgeRoleRefused"


def test_a_new_target_is_filled_by_the_next_reconcile(fan: Any, lambda_context: FakeContext) -> None:
    emulator, module = fan["emulator"], fan["module"]
    put_revoked(fan["resources"], "0a01", datetime.now(UTC) + timedelta(days=30))
    module.handler({"source": "schedule"}, lambda_context)
    c = make_edge_account("444444444444")
    fan["targets"].put(c.target("c"))
    fan["sts"].required[c.role_arn] = EXTERNAL_ID
    result = module.handler({"source": "schedule"}, lambda_context)
    assert result["targets"]["c"]["puts"] == 1 and result["targets"]["a"]["puts"] == 0
    assert set(emulator.items(c.kvs_arn)) == {"0a01"}


def test_the_functions_own_store_is_local_until_a_local_target_is_registered(
    bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    emulator = install_kvs_emulator()
    emulator.reset()
    try:
        own = boto3.client("cloudfront").create_key_value_store(Name="own")["KeyValueStore"]["ARN"]
        topic = boto3.client("sns").create_topic(Name="n")["TopicArn"]
        env = {**bootstrapped.env, "KVS_ARN": own, "NOTIFICATION_TOPIC_ARN": topic}
        module = load_handler("sync_kvs", env, monkeypatch)
        assert [t.name for t in module.sync.targets()] == ["local"] and module.sync.targets()[0].edge is None
        a = make_edge_account(WORKLOAD)
        DynamoDbTargetStore(bootstrapped.dynamodb, bootstrapped.table).put(a.target("local"))
        (local,) = module.sync.targets()
        assert local.edge is not None and local.kvs_arn == a.kvs_arn
    finally:
        uninstall_kvs_emulator()
