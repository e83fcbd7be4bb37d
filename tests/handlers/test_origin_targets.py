"""cloudfront-origin certificates in an edge target's ACM us-east-1 (kmsca.acm_targets): imported
through the target's edge role into the workload account, recorded with target and account, and
rotated there; refusals before anything is signed or stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kmsca.acm import ACM_REGION, AcmImporter
from kmsca.acm_targets import AcmTargets
from kmsca.edge_session import EdgeSessions
from kmsca.notify import Notifier
from kmsca.rotation import OriginCertificateRotation
from kmsca.store import DynamoDbCertificateStore
from kmsca.table_keys import certificate_key
from kmsca.targets import DynamoDbTargetStore
from kmsca.wiring import build_issuer

from tests.support.aws import REGION, CaResources, FakeContext, load_handler
from tests.support.edge_accounts import EXTERNAL_ID, WORKLOAD, TrustingSts, make_edge_account
from tests.support.settings import issue_settings

DNS = [{"type": "dns", "value": "origin.example.com"}]


@pytest.fixture
def edge_origin(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    account = make_edge_account(WORKLOAD)
    targets = DynamoDbTargetStore(bootstrapped.dynamodb, bootstrapped.table)
    targets.put(account.target("prod"))
    sts = TrustingSts({account.role_arn: EXTERNAL_ID})
    topic = boto3.client("sns").create_topic(Name="n")["TopicArn"]
    module = load_handler("issue", {**bootstrapped.env, "NOTIFICATION_TOPIC_ARN": topic}, monkeypatch)
    sessions = EdgeSessions(sts, "kmsca-dev-IssueFunction")
    monkeypatch.setattr(module.acm, "_sessions", sessions)

    class EdgeOrigin:
        resources = bootstrapped
        workload_acm = account.client("acm")
        ca_acm = boto3.client("acm", region_name=ACM_REGION)

        def issue(self, **request: Any) -> dict[str, Any]:
            return module.handler({"profile": "cloudfront-origin", "sans": DNS, **request}, lambda_context)

        def item(self, serial: str) -> dict[str, Any]:
            key = {"pk": {"S": certificate_key(serial)}}
            return bootstrapped.dynamodb.get_item(TableName=bootstrapped.table, Key=key).get("Item", {})

        def rotation(self) -> OriginCertificateRotation:
            store = DynamoDbCertificateStore(bootstrapped.dynamodb, bootstrapped.table)
            acm = AcmTargets(AcmImporter(self.ca_acm), targets, EdgeSessions(sts, "kmsca-dev-RotateAcmFunction"))
            issuer = build_issuer(issue_settings(bootstrapped.table, bootstrapped.issuing_key), store, bootstrapped.kms, acm)
            notifier = Notifier(boto3.client("sns", region_name=REGION), topic)
            return OriginCertificateRotation(issuer, store, acm, notifier, timedelta(days=30))

    origin = EdgeOrigin()
    origin.sts = sts  # type: ignore[attr-defined]
    origin.account = account  # type: ignore[attr-defined]
    return origin


def _arns(acm: Any) -> list[str]:
    return [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]]


def test_the_certificate_lands_in_the_workload_accounts_acm_not_the_cas(edge_origin: Any) -> None:
    response = edge_origin.issue(target="prod", subject={"common_name": "origin"})
    arn = response["acm_certificate_arn"]
    assert arn.startswith(f"arn:aws:acm:us-east-1:{WORKLOAD}:certificate/")
    assert response["acm_target"] == "prod" and response["acm_account_id"] == WORKLOAD
    assert _arns(edge_origin.workload_acm) == [arn] and _arns(edge_origin.ca_acm) == []
    tags = {t["Key"]: t["Value"] for t in edge_origin.workload_acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags["managed-by"] == "kmsca" and tags["kmsca:serial-number"] == response["serial_number"]
    item = edge_origin.item(response["serial_number"])
    assert (item["acm_target"]["S"], item["acm_account_id"]["S"], item["acm_certificate_arn"]["S"]) == (
        "prod", WORKLOAD, arn)  # fmt: skip
    from kmsca.inventory import Inventory
    from kmsca.store import DynamoDbCertificateStore

    inventory = Inventory(DynamoDbCertificateStore(edge_origin.resources.dynamodb, edge_origin.resources.table))
    shown = inventory.show(response["serial_number"], datetime.now(UTC))
    assert (shown["acm_target"], shown["acm_account_id"]) == ("prod", WORKLOAD)
    (call,) = edge_origin.sts.calls
    assert call["RoleArn"] == edge_origin.account.role_arn and call["ExternalId"] == EXTERNAL_ID


def test_local_without_a_registered_local_target_is_the_cas_own_acm(edge_origin: Any) -> None:
    response = edge_origin.issue(subject={"common_name": "origin"})
    assert response["acm_target"] == "local" and _arns(edge_origin.ca_acm) == [response["acm_certificate_arn"]]
    assert response["acm_account_id"] == response["acm_certificate_arn"].split(":")[4]
    assert edge_origin.sts.calls == []


def test_rotation_reimports_through_the_same_target(edge_origin: Any) -> None:
    first = edge_origin.issue(target="prod", subject={"common_name": "origin"}, lifetime_days=20)
    arn = first["acm_certificate_arn"]
    report = edge_origin.rotation().run(datetime.now(UTC))
    assert not report.failed, report.failed
    (rotated,) = report.rotated
    served = edge_origin.workload_acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    assert served.replace(":", "").lower().lstrip("0") == rotated["new_serial_number"].lstrip("0")
    new = edge_origin.item(rotated["new_serial_number"])
    assert new["acm_target"]["S"] == "prod" and new["acm_account_id"]["S"] == WORKLOAD
    assert _arns(edge_origin.ca_acm) == []


@pytest.mark.parametrize(
    ("request_fields", "code"),
    [
        ({"target": "nope"}, "TargetNotFound"),
        ({"target": "Bad_Name"}, "InvalidTarget"),
        ({"target": ""}, "InvalidTarget"),
    ],
)
def test_a_bad_target_is_refused_and_nothing_is_stored(edge_origin: Any, request_fields: dict[str, Any], code: str) -> None:
    with pytest.raises(Exception) as refused:
        edge_origin.issue(subject={"common_name": "origin"}, **request_fields)
    assert type(refused.value).__name__ == code
    assert edge_origin.resources.certificate_count() == 0
    assert _arns(edge_origin.workload_acm) == [] and _arns(edge_origin.ca_acm) == []


def test_a_refused_role_is_refused_before_signing(edge_origin: Any) -> None:
    edge_origin.sts.required[edge_origin.account.role_arn] = "rotated-external-id-000"
    with pytest.raises(Exception) as refused:
        edge_origin.issue(target="prod", subject={"common_name": "origin"})
    assert type(refused.value).__name__ == "EdgeRoleRefused"
    assert edge_origin.resources.certificate_count() == 0 and _arns(edge_origin.workload_acm) == []


def test_target_is_refused_for_other_profiles(edge_origin: Any) -> None:
    with pytest.raises(Exception) as refused:
        edge_origin.issue(profile="client", target="prod", csr="x")
    assert type(refused.value).__name__ == "InvalidRequest" and "target applies only" in str(refused.value)
    assert edge_origin.resources.certificate_count() == 0
