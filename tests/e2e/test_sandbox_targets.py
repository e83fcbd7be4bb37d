"""Edge targets end to end in the sandbox with two accounts (IAM and role trust enforced): the stack
registers its own edge stack as ``local``; a workload account's edge stack is registered with its
external id (a wrong one is refused, nothing written); a revocation reaches the workload account's
KeyValueStore through its edge role; a cloudfront-origin certificate lands in the workload account's
ACM us-east-1, not the CA account's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.csr import csr_pem, make_csr
from tests.support.wait import wait_until
from utils.sandbox.runtime import FunctionError
from utils.sandbox.server import Sandbox

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = "222222222222"
EXTERNAL_ID = "workload-external-id-0123456789"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(REPO, stack_name="targets", workload_accounts=(WORKLOAD,)) as running:
        yield running


@pytest.fixture(scope="module")
def edge(sandbox: Sandbox) -> dict[str, str]:
    """The workload account's edge stack, trusting the CA functions' roles with its external id."""
    return sandbox.deploy_stack(
        REPO / "edge" / "template.yaml",
        WORKLOAD,
        {"CaAccountId": sandbox.ca_account_id, "CaRoleArns": sandbox.outputs["EdgeCallerRoleArns"],
         "ExternalId": EXTERNAL_ID},
    )  # fmt: skip


def register(sandbox: Sandbox, edge: dict[str, str], name: str, external_id: str) -> Any:
    return sandbox.invoke(
        "TargetsFunction",
        {"operation": "register", "name": name, "account_id": WORKLOAD, "role_arn": edge["EdgeRoleArn"],
         "external_id": external_id, "kvs_arn": edge["RevokedSerialsStoreArn"], "registered_by": "e2e"},
    )  # fmt: skip


def test_the_stack_registers_its_own_edge_stack_as_local(sandbox: Sandbox) -> None:
    (local,) = sandbox.invoke("TargetsFunction", {"operation": "list"})["targets"]
    assert local["name"] == "local" and local["account_id"] == sandbox.ca_account_id
    assert local["kvs_arn"] == sandbox.outputs["RevokedSerialsStoreArn"] and "external_id" not in local


def test_a_wrong_external_id_is_refused_and_nothing_is_written(sandbox: Sandbox, edge: dict[str, str]) -> None:
    with pytest.raises(FunctionError) as refused:
        register(sandbox, edge, "wrong", "not-the-external-id-0000")
    assert refused.value.error_type == "EdgeRoleRefused"
    names = [t["name"] for t in sandbox.invoke("TargetsFunction", {"operation": "list"})["targets"]]
    assert "wrong" not in names


def test_a_revocation_reaches_the_workload_accounts_store(sandbox: Sandbox, edge: dict[str, str]) -> None:
    assert register(sandbox, edge, "workload", EXTERNAL_ID)["target"]["account_id"] == WORKLOAD
    issued = sandbox.invoke("IssueFunction", {"csr": csr_pem(make_csr(ec.generate_private_key(ec.SECP256R1()),
                                                                          "targets-e2e"))})  # fmt: skip
    serial = issued["serial_number"]
    sandbox.invoke("RevokeFunction", {"serial_number": serial, "reason": "keyCompromise"})
    workload_store, local_store = edge["RevokedSerialsStoreArn"], sandbox.outputs["RevokedSerialsStoreArn"]
    wait_until(
        lambda: serial in sandbox.kvs.items(workload_store), timeout=20, what="the serial in the workload account's store"
    )
    wait_until(lambda: serial in sandbox.kvs.items(local_store), timeout=20, what="the serial in the CA account's own store")
    report = sandbox.trigger_schedule("SyncKvsFunction", "Reconcile").raise_for_error()
    assert report["failed"] == {} and set(report["targets"]) == {"local", "workload"}


def test_an_origin_certificate_lands_in_the_workload_accounts_acm(sandbox: Sandbox, edge: dict[str, str]) -> None:
    names = [t["name"] for t in sandbox.invoke("TargetsFunction", {"operation": "list"})["targets"]]
    if "workload" not in names:
        register(sandbox, edge, "workload", EXTERNAL_ID)
    issued = sandbox.invoke(
        "IssueFunction",
        {"profile": "cloudfront-origin", "target": "workload", "subject": {"common_name": "origin.example.com"},
         "sans": [{"type": "dns", "value": "origin.example.com"}], "lifetime_days": 20},
    )  # fmt: skip
    arn = issued["acm_certificate_arn"]
    assert f":{WORKLOAD}:" in arn and issued["acm_target"] == "workload" and issued["acm_account_id"] == WORKLOAD
    workload_acm = sandbox.admin_client("acm", WORKLOAD, "us-east-1")
    ca_acm = sandbox.admin_client("acm", region="us-east-1")
    assert arn in [c["CertificateArn"] for c in workload_acm.list_certificates()["CertificateSummaryList"]]
    assert arn not in [c["CertificateArn"] for c in ca_acm.list_certificates()["CertificateSummaryList"]]
    rotated = sandbox.trigger_schedule("RotateAcmFunction").raise_for_error()
    assert rotated["failed"] == [] and [r["acm_certificate_arn"] for r in rotated["rotated"]] == [arn]


def test_a_role_without_the_external_id_condition_is_unsafe(sandbox: Sandbox, edge: dict[str, str]) -> None:
    """A role the CA may assume (its name) whose trust names the CA account but no sts:ExternalId:
    registration proves the confused deputy and refuses it; nothing is written."""
    iam = sandbox.admin_client("iam", WORKLOAD)
    trust = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",'
             f' "Principal": {{"AWS": "arn:aws:iam::{sandbox.ca_account_id}:root"}}}}]}}')  # fmt: skip
    role = iam.create_role(RoleName="kmsca-dev-edge-unsafe", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    describe = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action":'
                f' "cloudfront-keyvaluestore:DescribeKeyValueStore", "Resource": "{edge["RevokedSerialsStoreArn"]}"}}]}}')
    iam.put_role_policy(RoleName="kmsca-dev-edge-unsafe", PolicyName="describe", PolicyDocument=describe)
    with pytest.raises(FunctionError) as refused:
        sandbox.invoke(
            "TargetsFunction",
            {"operation": "register", "name": "unsafe", "account_id": WORKLOAD, "role_arn": role,
             "external_id": EXTERNAL_ID, "kvs_arn": edge["RevokedSerialsStoreArn"]},
        )  # fmt: skip
    assert refused.value.error_type == "EdgeRoleUnsafe", refused.value.error_message
    names = [t["name"] for t in sandbox.invoke("TargetsFunction", {"operation": "list"})["targets"]]
    assert "unsafe" not in names
