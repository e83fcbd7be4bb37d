"""The sandbox with several accounts: the CA account, workload accounts, the edge stack in each.

moto keeps accounts apart by the credentials' account; the sandbox gives each account its own
administrator, refuses resource ARNs of another account, and evaluates role trust policies for
``sts:AssumeRole`` (external id, principals, principal account) besides the caller's identity
policy. The edge stack (edge/template.yaml) is nested by template.yaml and deployed into a
workload account, and its role can do exactly what the CA needs there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.csr import csr_pem, make_csr
from utils.sandbox.accounts import check_workload_accounts
from utils.sandbox.context import SandboxError
from utils.sandbox.server import Sandbox

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = "222222222222"
OTHER = "333333333333"
EXTERNAL_ID = "edge-external-id-0123456789"
#: An identity policy that allows nothing (IAM refuses an empty Statement).
NOTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(REPO, stack_name="accounts", workload_accounts=(WORKLOAD, OTHER)) as running:
        yield running


def credentials_client(sandbox: Sandbox, credentials: dict[str, str], service: str, region: str | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=region or sandbox.region,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
    )


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def assume(sandbox: Sandbox, credentials: dict[str, str], role_arn: str, external_id: str | None) -> dict[str, str]:
    sts = credentials_client(sandbox, credentials, "sts")
    kwargs = {"ExternalId": external_id} if external_id else {}
    session = sts.assume_role(RoleArn=role_arn, RoleSessionName="test", **kwargs)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
        "AWS_SESSION_TOKEN": session["SessionToken"],
    }


def allow_assume(role_pattern: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_pattern}],
    }


@pytest.fixture(scope="module")
def ca_caller(sandbox: Sandbox) -> dict[str, str]:
    """A CA-account principal allowed to assume any edge role (as the CA functions will be)."""
    return sandbox.create_caller(
        sandbox.ca_account_id, "ca-caller", allow_assume("arn:aws:iam::*:role/kmsca-dev-edge-*")
    ).credentials


@pytest.fixture(scope="module")
def edge(sandbox: Sandbox, ca_caller: dict[str, str]) -> dict[str, str]:
    """edge/template.yaml deployed in the workload account, trusting the CA caller."""
    caller_arn = f"arn:aws:iam::{sandbox.ca_account_id}:user/ca-caller"
    return sandbox.deploy_stack(
        REPO / "edge" / "template.yaml",
        WORKLOAD,
        {"CaAccountId": sandbox.ca_account_id, "CaRoleArns": caller_arn, "ExternalId": EXTERNAL_ID},
    )


# Accounts ------------------------------------------------------------------------------------


def test_workload_accounts_are_checked() -> None:
    assert check_workload_accounts([WORKLOAD], "123456789012") == (WORKLOAD,)
    for bad in (["12345"], ["123456789012"], [WORKLOAD, WORKLOAD]):
        with pytest.raises(SandboxError):
            check_workload_accounts(bad, "123456789012")


def test_each_account_has_its_own_administrator(sandbox: Sandbox) -> None:
    assert set(sandbox.admins) == {sandbox.ca_account_id, WORKLOAD, OTHER}
    for account in sandbox.admins:
        identity = sandbox.admin_client("sts", account).get_caller_identity()
        assert identity["Account"] == account
    with pytest.raises(SandboxError, match="not an account of the sandbox"):
        sandbox.admin_client("sts", "444444444444")


def test_accounts_are_kept_apart(sandbox: Sandbox) -> None:
    bucket = f"apart-{uuid.uuid4().hex[:8]}"
    sandbox.admin_client("sqs", WORKLOAD).create_queue(QueueName=bucket)
    assert sandbox.admin_client("sqs", WORKLOAD).list_queues(QueueNamePrefix=bucket).get("QueueUrls")
    assert not sandbox.admin_client("sqs", OTHER).list_queues(QueueNamePrefix=bucket).get("QueueUrls")
    assert not sandbox.admin_client("sqs").list_queues(QueueNamePrefix=bucket).get("QueueUrls")


def test_a_caller_is_created_in_its_account(sandbox: Sandbox) -> None:
    caller = sandbox.create_caller(OTHER, "lister", NOTHING)
    assert caller.arn == f"arn:aws:iam::{OTHER}:user/lister"
    identity = credentials_client(sandbox, caller.credentials, "sts").get_caller_identity()
    assert identity["Account"] == OTHER


# sts:AssumeRole across accounts ---------------------------------------------------------------


def test_the_ca_assumes_the_edge_role_with_the_external_id(
    sandbox: Sandbox, ca_caller: dict[str, str], edge: dict[str, str]
) -> None:
    session = assume(sandbox, ca_caller, edge["EdgeRoleArn"], EXTERNAL_ID)
    identity = credentials_client(sandbox, session, "sts").get_caller_identity()
    assert identity["Account"] == WORKLOAD
    assert identity["Arn"].startswith(f"arn:aws:sts::{WORKLOAD}:assumed-role/kmsca-dev-edge-{sandbox.region}/")


@pytest.mark.parametrize("external_id", [None, "edge-external-id-wrong000000"])
def test_a_wrong_or_missing_external_id_is_refused(
    sandbox: Sandbox, ca_caller: dict[str, str], edge: dict[str, str], external_id: str | None
) -> None:
    assert error_code(lambda: assume(sandbox, ca_caller, edge["EdgeRoleArn"], external_id)) == "AccessDenied"


def test_a_caller_of_an_account_the_trust_does_not_name_is_refused(sandbox: Sandbox, edge: dict[str, str]) -> None:
    outsider = sandbox.create_caller(OTHER, "outsider", allow_assume("*")).credentials
    assert error_code(lambda: assume(sandbox, outsider, edge["EdgeRoleArn"], EXTERNAL_ID)) == "AccessDenied"


def test_a_named_caller_without_an_identity_policy_is_refused_cross_account(
    sandbox: Sandbox, edge: dict[str, str]
) -> None:
    """Cross-account, both sides must allow: the role's trust and the caller's identity policy."""
    caller = sandbox.create_caller(sandbox.ca_account_id, "no-policy", NOTHING)
    sandbox.deploy_stack(
        REPO / "edge" / "template.yaml",
        OTHER,
        {
            "CaAccountId": sandbox.ca_account_id,
            "CaRoleArns": caller.arn,
            "ExternalId": EXTERNAL_ID,
            "CaEnvironmentName": "nopolicy",
        },
        stack_name="edge-no-policy",
    )
    role = f"arn:aws:iam::{OTHER}:role/kmsca-nopolicy-edge-{sandbox.region}"
    assert error_code(lambda: assume(sandbox, caller.credentials, role, EXTERNAL_ID)) == "AccessDenied"


def test_same_account_trust_naming_the_role_needs_no_identity_policy(sandbox: Sandbox) -> None:
    """In the role's account a trust policy naming the caller's role suffices; an assumed-role
    session matches its role's ARN; naming only the account needs the identity policy too."""
    iam = sandbox.admin_client("iam", WORKLOAD)
    caller = sandbox.create_caller(WORKLOAD, "same-account", NOTHING)
    for name, principal in (("names-user", caller.arn), ("names-account", f"arn:aws:iam::{WORKLOAD}:root")):
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=(
                '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",'
                f' "Principal": {{"AWS": "{principal}"}}}}]}}'
            ),
        )
    assume(sandbox, caller.credentials, f"arn:aws:iam::{WORKLOAD}:role/names-user", None)
    denied = lambda: assume(sandbox, caller.credentials, f"arn:aws:iam::{WORKLOAD}:role/names-account", None)  # noqa: E731
    assert error_code(denied) == "AccessDenied"


def test_the_lambda_service_still_assumes_function_roles(sandbox: Sandbox) -> None:
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()), "accounts-client")
    result = sandbox.invoke("IssueFunction", {"csr": csr_pem(csr)})
    assert "BEGIN CERTIFICATE" in json.dumps(result)


# The nested edge stack (single-account case) ---------------------------------------------------


def test_the_ca_stack_nests_the_edge_stack_in_its_own_account(sandbox: Sandbox) -> None:
    (nested,) = [s for s in sandbox.stacks.values() if s.account_id == sandbox.ca_account_id]
    assert nested.stack_name.startswith("accounts-EdgeStack-")
    assert sandbox.outputs["RevokedSerialsStoreArn"] == nested.outputs["RevokedSerialsStoreArn"]
    assert sandbox.outputs["RevocationCheckFunctionArn"] == nested.outputs["RevocationCheckFunctionArn"]
    assert f":{sandbox.ca_account_id}:" in sandbox.outputs["RevokedSerialsStoreArn"]
    callers = sandbox.outputs["EdgeCallerRoleArns"].split(",")
    assert len(callers) == 5 and all(f":{sandbox.ca_account_id}:role/" in arn for arn in callers)
    assert sandbox.functions["SyncKvsFunction"].role_arn in callers
    assert sandbox.functions["SyncKvsFunction"].spec.environment["KVS_ARN"] == sandbox.outputs["RevokedSerialsStoreArn"]
    assert "RevocationCheckFunction" in sandbox.connection_functions


def test_the_nested_edge_role_trusts_the_ca_functions_with_the_stack_id(sandbox: Sandbox) -> None:
    (nested,) = [s for s in sandbox.stacks.values() if s.account_id == sandbox.ca_account_id]
    role = sandbox.admin_client("iam").get_role(RoleName=nested.physical["EdgeRole"].ref)["Role"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert sorted(statement["Principal"]["AWS"]) == sorted(sandbox.outputs["EdgeCallerRoleArns"].split(","))
    external_id = statement["Condition"]["StringEquals"]["sts:ExternalId"]
    assert external_id == sandbox.stack_id.rsplit("/", 1)[1]


# The edge stack in a workload account -----------------------------------------------------------


def test_deploy_stack_puts_the_edge_resources_in_the_workload_account(sandbox: Sandbox, edge: dict[str, str]) -> None:
    assert edge["AccountId"] == WORKLOAD
    for key in ("EdgeRoleArn", "RevokedSerialsStoreArn", "RevocationCheckFunctionArn"):
        assert f":{WORKLOAD}:" in edge[key], key
    assert "TrustStoreId" not in edge  # no trust store named
    stack = sandbox.stacks[f"edge-{WORKLOAD}"]
    assert stack.connection_functions["RevocationCheckFunction"].key_value_store_arns == (
        edge["RevokedSerialsStoreArn"],
    )
    assert sandbox.state()["stacks"][f"edge-{WORKLOAD}"]["outputs"] == edge


def test_deploy_stack_checks_parameters_and_names(sandbox: Sandbox, edge: dict[str, str]) -> None:
    with pytest.raises(SandboxError, match="ExternalId"):
        sandbox.deploy_stack(
            REPO / "edge" / "template.yaml",
            OTHER,
            {"CaAccountId": sandbox.ca_account_id, "CaRoleArns": "arn:aws:iam::1:role/x", "ExternalId": "short"},
            stack_name="edge-bad",
        )
    with pytest.raises(SandboxError, match="Invalid principal"):  # IAM checks trust principals exist
        sandbox.deploy_stack(
            REPO / "edge" / "template.yaml",
            OTHER,
            {
                "CaAccountId": sandbox.ca_account_id,
                "CaRoleArns": f"arn:aws:iam::{sandbox.ca_account_id}:role/not-yet",
                "ExternalId": EXTERNAL_ID,
                "CaEnvironmentName": "notyet",
            },
            stack_name="edge-not-yet",
        )
    assert "edge-not-yet" not in sandbox.stacks
    with pytest.raises(SandboxError, match="exists already"):
        sandbox.deploy_stack(REPO / "edge" / "template.yaml", WORKLOAD, {})
    with pytest.raises(SandboxError, match="not an account"):
        sandbox.deploy_stack(REPO / "edge" / "template.yaml", "444444444444", {})


def test_the_edge_role_writes_its_store_and_no_other(
    sandbox: Sandbox, ca_caller: dict[str, str], edge: dict[str, str]
) -> None:
    session = assume(sandbox, ca_caller, edge["EdgeRoleArn"], EXTERNAL_ID)
    kvs = credentials_client(sandbox, session, "cloudfront-keyvaluestore", "us-east-1")
    arn = edge["RevokedSerialsStoreArn"]
    etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
    kvs.update_keys(KvsARN=arn, IfMatch=etag, Puts=[{"Key": "0a1b", "Value": "2026-11-21T08:00:00Z 1"}])
    assert sandbox.kvs.items(arn) == {"0a1b": "2026-11-21T08:00:00Z 1"}
    assert kvs.get_key(KvsARN=arn, Key="0a1b")["Value"] == "2026-11-21T08:00:00Z 1"
    ca_store = sandbox.outputs["RevokedSerialsStoreArn"]  # the CA account's (nested) store
    assert error_code(lambda: kvs.describe_key_value_store(KvsARN=ca_store)) == "AccessDeniedException"
    assert error_code(lambda: kvs.put_key(KvsARN=arn, Key="0c", Value="x", IfMatch="E")) == "AccessDeniedException"


def test_a_ca_principal_cannot_touch_the_workload_store_without_the_role(
    sandbox: Sandbox, edge: dict[str, str]
) -> None:
    kvs = sandbox.admin_client("cloudfront-keyvaluestore", region="us-east-1")  # CA admin: allowed "*"
    arn = edge["RevokedSerialsStoreArn"]
    assert error_code(lambda: kvs.describe_key_value_store(KvsARN=arn)) == "AccessDeniedException"
    own = sandbox.admin_client("cloudfront-keyvaluestore", WORKLOAD, "us-east-1")
    assert own.describe_key_value_store(KvsARN=arn)["KvsARN"] == arn


def _self_signed_client_certificate(name: str) -> tuple[bytes, bytes]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def test_the_edge_role_imports_tagged_certificates_only(
    sandbox: Sandbox, ca_caller: dict[str, str], edge: dict[str, str]
) -> None:
    session = assume(sandbox, ca_caller, edge["EdgeRoleArn"], EXTERNAL_ID)
    acm = credentials_client(sandbox, session, "acm", "us-east-1")
    certificate, key = _self_signed_client_certificate("origin.example.com")
    tags = [
        {"Key": "managed-by", "Value": "kmsca"},
        {"Key": "kmsca:serial-number", "Value": "0a1b"},
        {"Key": "kmsca:ca", "Value": "issuing"},
    ]
    arn = acm.import_certificate(Certificate=certificate, PrivateKey=key, Tags=tags)["CertificateArn"]
    assert f":{WORKLOAD}:" in arn
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["CertificateArn"] == arn
    # not in the CA account's ACM
    ca_acm = sandbox.admin_client("acm", region="us-east-1")
    assert arn not in [c["CertificateArn"] for c in ca_acm.list_certificates()["CertificateSummaryList"]]
    # an untagged certificate of the workload account: neither described nor re-imported nor tagged
    foreign = sandbox.admin_client("acm", WORKLOAD, "us-east-1").import_certificate(
        Certificate=certificate, PrivateKey=key
    )["CertificateArn"]
    assert error_code(lambda: acm.describe_certificate(CertificateArn=foreign)) == "AccessDeniedException"
    reimport = lambda: acm.import_certificate(CertificateArn=foreign, Certificate=certificate, PrivateKey=key)  # noqa: E731
    assert error_code(reimport) == "AccessDeniedException"
    tag = lambda: acm.add_tags_to_certificate(CertificateArn=foreign, Tags=[{"Key": "owner", "Value": "kmsca"}])  # noqa: E731
    assert error_code(tag) == "AccessDeniedException"
    untagged = lambda: acm.import_certificate(Certificate=certificate, PrivateKey=key)  # noqa: E731
    assert error_code(untagged) == "AccessDeniedException"


def test_a_ca_function_assumes_the_nested_edge_role_through_the_trust_alone(sandbox: Sandbox) -> None:
    """Same account: the nested edge role's trust names the function's role, which is enough."""
    (nested,) = [s for s in sandbox.stacks.values() if s.account_id == sandbox.ca_account_id]
    role_arn = nested.outputs["EdgeRoleArn"]
    external_id = sandbox.stack_id.rsplit("/", 1)[1]
    function_credentials = sandbox.functions["SyncKvsFunction"].credentials
    session = assume(sandbox, function_credentials, role_arn, external_id)
    kvs = credentials_client(sandbox, session, "cloudfront-keyvaluestore", "us-east-1")
    arn = sandbox.outputs["RevokedSerialsStoreArn"]
    assert kvs.describe_key_value_store(KvsARN=arn)["KvsARN"] == arn
    assert (
        error_code(lambda: assume(sandbox, function_credentials, role_arn, "wrong-external-id-000")) == "AccessDenied"
    )
    # the issue function's role is trusted too; the OCSP responder's is not
    assume(sandbox, sandbox.functions["IssueFunction"].credentials, role_arn, external_id)
    ocsp = sandbox.functions["OcspFunction"].credentials
    assert error_code(lambda: assume(sandbox, ocsp, role_arn, external_id)) == "AccessDenied"


def test_deploy_edge_stack_trusts_the_ca_functions_only(sandbox: Sandbox) -> None:
    outputs = sandbox.deploy_edge_stack(OTHER, external_id=EXTERNAL_ID)
    assert outputs["AccountId"] == OTHER
    stack = sandbox.stacks[f"edge-{OTHER}"]
    assert stack.parameters["CaRoleArns"] == sandbox.outputs["EdgeCallerRoleArns"]
    assert stack.parameters["CaAccountId"] == sandbox.ca_account_id
    # the CA administrator may call sts:AssumeRole on anything, but the trust does not name it
    admin = sandbox.admins[sandbox.ca_account_id].credentials
    assert error_code(lambda: assume(sandbox, admin, outputs["EdgeRoleArn"], EXTERNAL_ID)) == "AccessDenied"


def test_a_trust_may_name_the_callers_organisation(sandbox: Sandbox, ca_caller: dict[str, str]) -> None:
    org = sandbox.admin_client("organizations", region="us-east-1").create_organization(FeatureSet="ALL")
    org_id = org["Organization"]["Id"]
    sandbox.admin_client("iam", WORKLOAD).create_role(
        RoleName="kmsca-dev-edge-org",
        AssumeRolePolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",'
            f' "Principal": {{"AWS": "*"}}, "Condition": {{"StringEquals": {{"aws:PrincipalOrgID": "{org_id}"}}}}}}]}}'
        ),
    )
    role = f"arn:aws:iam::{WORKLOAD}:role/kmsca-dev-edge-org"
    assume(sandbox, ca_caller, role, None)  # the CA account manages the organisation
    outsider = sandbox.create_caller(OTHER, "org-outsider", allow_assume("*")).credentials
    assert error_code(lambda: assume(sandbox, outsider, role, None)) == "AccessDenied"


def test_describe_stacks_shows_a_deployed_stack_to_its_account_only(sandbox: Sandbox, edge: dict[str, str]) -> None:
    name = f"edge-{WORKLOAD}"
    (stack,) = sandbox.admin_client("cloudformation", WORKLOAD).describe_stacks(StackName=name)["Stacks"]
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == edge
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["ExternalId"] == "****"  # NoEcho
    ca_cloudformation = sandbox.admin_client("cloudformation")
    assert error_code(lambda: ca_cloudformation.describe_stacks(StackName=name)) == "ValidationError"
