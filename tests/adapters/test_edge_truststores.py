"""Every edge target's trust store follows the CA bundle (kmsca.edge_truststores): UpdateTrustStore
through each target's edge role; a failing target is reported and does not stop the others."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from kmsca.edge_session import EdgeSessions
from kmsca.edge_truststores import update_edge_trust_stores
from kmsca.targets import DynamoDbTargetStore

from tests.support.aws import REGION, create_ca_table
from tests.support.edge_accounts import EXTERNAL_ID, OTHER, WORKLOAD, TrustingSts, make_edge_account

LOCATION = {"CaCertificatesBundleS3Location": {"Bucket": "ca-public", "Key": "ca-bundle.pem", "Region": REGION}}


@pytest.fixture
def registry(aws: None) -> Any:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_ca_table(dynamodb, "ca-table")
    a, b, c = make_edge_account(WORKLOAD), make_edge_account(OTHER), make_edge_account("444444444444")
    store = DynamoDbTargetStore(dynamodb, "ca-table")
    store.put(a.target("a", trust_store_id="ts_a"))
    store.put(b.target("b", trust_store_id="ts_b"))
    store.put(c.target("c"))  # no trust store: skipped
    sts = TrustingSts({a.role_arn: EXTERNAL_ID, b.role_arn: EXTERNAL_ID, c.role_arn: EXTERNAL_ID})
    return {"store": store, "sts": sts, "accounts": {"a": a, "b": b}}


def test_each_trust_store_is_updated_through_its_role_and_one_failure_stops_nothing(registry: Any) -> None:
    stubs: dict[str, Stubber] = {}
    made: list[str] = []

    def factory(service: str, **kwargs: Any) -> Any:
        client = boto3.client(service, **kwargs)
        account = boto3.client("sts", region_name="us-east-1", **{k: v for k, v in kwargs.items() if k != "region_name"})
        made.append(account.get_caller_identity()["Account"])
        stubber = Stubber(client)
        if made[-1] == WORKLOAD:
            stubber.add_response("get_trust_store", {"ETag": "e1"}, {"Identifier": "ts_a"})
            stubber.add_response("update_trust_store", {"ETag": "e2"},
                                 {"Id": "ts_a", "IfMatch": "e1", "CaCertificatesBundleSource": LOCATION})  # fmt: skip
        else:
            stubber.add_client_error("get_trust_store", "AccessDenied", http_status_code=403)
        stubber.activate()
        stubs[made[-1]] = stubber
        return client

    sessions = EdgeSessions(registry["sts"], "kmsca-dev-BootstrapFunction", client_factory=factory)
    report = update_edge_trust_stores(registry["store"], sessions, "ca-public", "ca-bundle.pem", REGION)
    assert report.updated == ["a"] and report.failed == {"b": "AccessDenied"}
    assert made == [WORKLOAD, OTHER]  # c has no trust store: no session at all
    stubs[WORKLOAD].assert_no_pending_responses()


def test_a_refused_role_is_reported(registry: Any) -> None:
    for name in ("a", "b"):
        registry["sts"].required[registry["accounts"][name].role_arn] = "another-external-id-00"
    sessions = EdgeSessions(registry["sts"], "kmsca-dev-f", client_factory=lambda *a, **k: pytest.fail("no client"))
    report = update_edge_trust_stores(registry["store"], sessions, "ca-public", "ca-bundle.pem", REGION)
    assert report.failed == {"a": "EdgeRoleRefused", "b": "EdgeRoleRefused"} and report.updated == []
