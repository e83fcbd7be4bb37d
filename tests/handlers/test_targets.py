"""Edge targets: validation of a target, the registry item, role sessions, and registration
(every check before anything is written), through the targets function too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kmsca.edge_session import REFRESH_BEFORE_EXPIRY, EdgeSessions, session_name
from kmsca.errors import (
    EdgeRoleRefused,
    EdgeRoleUnsafe,
    EdgeTargetUnavailable,
    InvalidRequest,
    InvalidTarget,
    TargetAlreadyRegistered,
    TargetNotFound,
)
from kmsca.target_registration import TargetRegistry, parse_targets_request
from kmsca.targets import DynamoDbTargetStore, EdgeTarget

from tests.support.aws import REGION, FakeContext, create_ca_table, load_handler
from tests.support.edge_accounts import (
    EDGE_PREFIX,
    EXTERNAL_ID,
    OTHER,
    WORKLOAD,
    EdgeAccount,
    TrustingSts,
    make_edge_account,
)
from utils.sandbox.kvs import install_kvs_emulator, uninstall_kvs_emulator

TABLE = "ca-table"


@pytest.fixture
def edge(aws: None) -> Any:
    install_kvs_emulator().reset()
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_ca_table(dynamodb, TABLE)
    account = make_edge_account()
    sts = TrustingSts({account.role_arn: EXTERNAL_ID})
    store = DynamoDbTargetStore(dynamodb, TABLE)
    registry = TargetRegistry(store, EdgeSessions(sts, "kmsca-dev-targets"), EDGE_PREFIX)
    yield {"account": account, "sts": sts, "store": store, "registry": registry, "dynamodb": dynamodb}
    uninstall_kvs_emulator()


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "prod",
        "account_id": WORKLOAD,
        "role_arn": f"arn:aws:iam::{WORKLOAD}:role/kmsca-dev-edge-us-east-1",
        "external_id": EXTERNAL_ID,
        "kvs_arn": f"arn:aws:cloudfront::{WORKLOAD}:key-value-store/0a1b2c3d-0000-4000-8000-000000000000",
        "trust_store_id": None,
        "registered_at": datetime(2026, 11, 21, tzinfo=UTC),
    }
    fields.update(overrides)
    return fields


# EdgeTarget validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Prod"}, "target name"),
        ({"name": "-prod"}, "target name"),
        ({"name": "a" * 64}, "target name"),
        ({"name": ""}, "target name"),
        ({"account_id": "22222222222"}, "12-digit"),
        ({"account_id": "2222222222222"}, "12-digit"),
        ({"role_arn": "arn:aws:iam::222222222222:user/kmsca-dev-edge-x"}, "IAM role ARN"),
        ({"role_arn": f"arn:aws:iam::{OTHER}:role/kmsca-dev-edge-x"}, f"in account {OTHER}"),
        ({"kvs_arn": f"arn:aws:cloudfront::{OTHER}:key-value-store/0a1b"}, f"in account {OTHER}"),
        ({"kvs_arn": "arn:aws:s3:::bucket"}, "KeyValueStore ARN"),
        ({"kvs_arn": f"arn:aws-cn:cloudfront::{WORKLOAD}:key-value-store/0a1b"}, "different AWS partitions"),
        ({"external_id": "short"}, "external_id"),
        ({"external_id": "x" * 15}, "external_id"),
        ({"external_id": "with space in it....."}, "external_id"),
        ({"trust_store_id": "ts 1"}, "trust_store_id"),
        ({"registered_by": "x" * 257}, "registered_by"),
        # A trailing newline: "$" in a pattern would match before it.
        ({"name": "prod\n"}, "target name"),
        ({"account_id": f"{WORKLOAD}\n"}, "12-digit"),
        ({"role_arn": f"arn:aws:iam::{WORKLOAD}:role/kmsca-dev-edge-x\n"}, "IAM role ARN"),
        ({"kvs_arn": f"arn:aws:cloudfront::{WORKLOAD}:key-value-store/0a1b\n"}, "KeyValueStore ARN"),
        ({"external_id": "x" * 20 + "\n"}, "external_id"),
        ({"trust_store_id": "ts_1\n"}, "trust_store_id"),
    ],
)
def test_a_malformed_target_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTarget, match=message):
        EdgeTarget(**_fields(**overrides))


def test_public_view_has_no_external_id() -> None:
    public = EdgeTarget(**_fields(trust_store_id="ts_1")).public()
    assert EXTERNAL_ID not in json.dumps(public)
    assert public["trust_store_id"] == "ts_1" and public["registered_at"] == "2026-11-21T00:00:00Z"


# The registry item -------------------------------------------------------------------------------


def test_register_list_deregister(edge: Any) -> None:
    store, account = edge["store"], edge["account"]
    assert store.list_targets() == []
    store.put(account.target("prod"))
    store.put(account.target("staging"))
    assert [t.name for t in store.list_targets()] == ["prod", "staging"]
    assert store.get("prod") == account.target("prod")
    with pytest.raises(TargetAlreadyRegistered):
        store.put(account.target("prod"))
    store.put(account.target("prod", registered_by="again"), replace=True)
    assert store.get("prod").registered_by == "again"
    store.delete("prod")
    assert [t.name for t in store.list_targets()] == ["staging"]
    with pytest.raises(TargetNotFound):
        store.delete("prod")
    with pytest.raises(TargetNotFound):
        store.get("prod")


# Sessions ----------------------------------------------------------------------------------------


def test_session_name_names_the_function() -> None:
    assert session_name("kmsca-dev-SyncKvsFunction-AbC12") == "kmsca-dev-SyncKvsFunction-AbC12"
    assert session_name("a" * 80) == "a" * 64
    assert session_name("") == "kmsca"


def test_credentials_are_cached_until_five_minutes_before_expiry(edge: Any) -> None:
    account, sts = edge["account"], edge["sts"]
    now = [datetime.now(UTC)]
    sessions = EdgeSessions(sts, "kmsca-dev-sync", clock=lambda: now[0])
    target = account.target()
    first = sessions.client(target, "cloudfront-keyvaluestore", "us-east-1")
    assert sessions.client(target, "cloudfront-keyvaluestore", "us-east-1") is first
    assert sessions.client(target, "acm", "us-east-1") is not first
    assert len(sts.calls) == 1 and sts.calls[0]["ExternalId"] == EXTERNAL_ID and sts.calls[0]["RoleSessionName"] == "kmsca-dev-sync"
    expiry = sessions.credentials(target).expiration
    now[0] = expiry - REFRESH_BEFORE_EXPIRY - timedelta(seconds=1)
    assert sessions.client(target, "cloudfront-keyvaluestore", "us-east-1") is first and len(sts.calls) == 1
    now[0] = expiry - REFRESH_BEFORE_EXPIRY
    assert sessions.client(target, "cloudfront-keyvaluestore", "us-east-1") is not first and len(sts.calls) == 2


def test_the_client_acts_in_the_target_account(edge: Any) -> None:
    sessions = EdgeSessions(edge["sts"], "f")
    identity = sessions.client(edge["account"].target(), "sts", "us-east-1").get_caller_identity()
    assert identity["Account"] == WORKLOAD


@pytest.mark.parametrize(("code", "error"), [("AccessDenied", EdgeRoleRefused), ("Throttling", EdgeTargetUnavailable)])
def test_assume_role_failures_name_the_target(edge: Any, code: str, error: type[Exception]) -> None:
    edge["sts"].fail_with = code
    with pytest.raises(error, match="edge target 'prod'"):
        EdgeSessions(edge["sts"], "f").client(edge["account"].target(), "acm", "us-east-1")


# Registration ------------------------------------------------------------------------------------


def _registry_item(edge: Any) -> Any:
    return edge["dynamodb"].get_item(TableName=TABLE, Key={"pk": {"S": "TARGET#registry"}}).get("Item")


def test_registration_checks_the_role_both_ways_and_the_store(edge: Any) -> None:
    target = edge["registry"].register(edge["account"].target())
    assert edge["store"].list_targets() == [target]
    calls = edge["sts"].calls
    assert [c.get("ExternalId", "")[:12] for c in calls] == [EXTERNAL_ID[:12], "", "kmsca-check-"]


def test_a_role_assumable_without_the_external_id_is_unsafe(edge: Any) -> None:
    edge["sts"].required[edge["account"].role_arn] = None  # a trust policy without sts:ExternalId
    with pytest.raises(EdgeRoleUnsafe, match="without the external id"):
        edge["registry"].register(edge["account"].target())
    assert _registry_item(edge) is None


def test_a_role_accepting_any_external_id_is_unsafe(edge: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sts = edge["sts"]
    real = sts.assume_role

    def like_star(**kwargs: Any) -> Any:  # a trust policy with StringLike sts:ExternalId "*"
        if "ExternalId" in kwargs:
            kwargs = {**kwargs, "ExternalId": EXTERNAL_ID}
        return real(**kwargs)

    monkeypatch.setattr(sts, "assume_role", like_star)
    with pytest.raises(EdgeRoleUnsafe, match="with another external id"):
        edge["registry"].register(edge["account"].target())
    assert _registry_item(edge) is None


def test_a_wrong_external_id_is_refused(edge: Any) -> None:
    with pytest.raises(EdgeRoleRefused, match="refused AssumeRole with the registered external id"):
        edge["registry"].register(edge["account"].target(external_id="not-the-right-one-123"))
    assert _registry_item(edge) is None


def test_a_store_the_role_cannot_describe_is_refused(edge: Any) -> None:
    account = edge["account"]
    missing = account.kvs_arn.rsplit("/", 1)[0] + "/ffffffff-0000-4000-8000-000000000000"
    with pytest.raises(EdgeTargetUnavailable, match="DescribeKeyValueStore failed with ResourceNotFoundException"):
        edge["registry"].register(account.target(kvs_arn=missing))
    assert _registry_item(edge) is None


def test_a_trust_store_the_role_cannot_read_is_refused(edge: Any) -> None:
    # moto has no trust stores: GetTrustStore fails as it does for an unknown id.
    with pytest.raises(EdgeTargetUnavailable, match="GetTrustStore failed"):
        edge["registry"].register(edge["account"].target(trust_store_id="ts_missing"))
    assert _registry_item(edge) is None


def test_a_role_the_ca_may_not_assume_is_refused_before_any_call(edge: Any) -> None:
    target = edge["account"].target(role_arn=f"arn:aws:iam::{WORKLOAD}:role/admin")
    with pytest.raises(InvalidTarget, match="kmsca-dev-edge-"):
        edge["registry"].register(target)
    assert edge["sts"].calls == [] and _registry_item(edge) is None


def test_a_taken_name_is_refused_before_any_call(edge: Any) -> None:
    edge["registry"].register(edge["account"].target())
    calls = len(edge["sts"].calls)
    with pytest.raises(TargetAlreadyRegistered):
        edge["registry"].register(edge["account"].target())
    assert len(edge["sts"].calls) == calls


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ([], InvalidRequest),
        ({"operation": "drop"}, InvalidRequest),
        ({"operation": "list", "extra": 1}, InvalidRequest),
        ({"operation": "deregister"}, InvalidRequest),
        ({"operation": "register", "name": "prod"}, InvalidRequest),
    ],
)
def test_malformed_requests(event: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_targets_request(event)


# The function -----------------------------------------------------------------------------------


def test_the_targets_function(edge: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> None:
    module = load_handler("targets", {"CA_TABLE_NAME": TABLE, "EDGE_ROLE_NAME_PREFIX": EDGE_PREFIX}, monkeypatch)
    monkeypatch.setattr(module.registry, "_sessions", EdgeSessions(edge["sts"], "f"))
    account: EdgeAccount = edge["account"]
    register = {
        "operation": "register",
        "name": "prod",
        "account_id": WORKLOAD,
        "role_arn": account.role_arn,
        "external_id": EXTERNAL_ID,
        "kvs_arn": account.kvs_arn,
        "registered_by": "operator",
    }
    response = module.handler(register, lambda_context)
    assert response["target"]["name"] == "prod" and "external_id" not in response["target"]
    listed = module.handler({"operation": "list"}, lambda_context)["targets"]
    assert [t["kvs_arn"] for t in listed] == [account.kvs_arn]
    with pytest.raises(Exception) as refused:
        module.handler(register, lambda_context)
    assert type(refused.value).__name__ == "TargetAlreadyRegistered"
    assert module.handler({"operation": "deregister", "name": "prod"}, lambda_context) == {"deregistered": "prod"}
    with pytest.raises(Exception) as unknown:
        module.handler({"operation": "deregister", "name": "prod"}, lambda_context)
    assert type(unknown.value).__name__ == "TargetNotFound"


def test_the_custom_resource_registers_and_deregisters_local(
    edge: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    module = load_handler("targets", {"CA_TABLE_NAME": TABLE, "EDGE_ROLE_NAME_PREFIX": EDGE_PREFIX}, monkeypatch)
    monkeypatch.setattr(module.registry, "_sessions", EdgeSessions(edge["sts"], "f"))
    pauses: list[float] = []
    monkeypatch.setattr(module.registry, "_sleep", pauses.append)  # IAM propagation: retried, not slept here
    answers: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "kmsca.custom_resource.send_response",
        lambda event, status, reason, data, pid: answers.append({"status": status, "reason": reason, "data": data}),
    )
    account: EdgeAccount = edge["account"]
    properties = {"Name": "local", "AccountId": WORKLOAD, "RoleArn": account.role_arn,
                  "ExternalId": EXTERNAL_ID, "KvsArn": account.kvs_arn, "TrustStoreId": ""}  # fmt: skip
    base = {"ResponseURL": "https://x", "StackId": "s", "RequestId": "r", "LogicalResourceId": "LocalEdgeTarget",
            "ResourceType": "Custom::EdgeTarget", "ResourceProperties": properties}  # fmt: skip
    for request_type in ("Create", "Update"):
        module.handler({**base, "RequestType": request_type}, lambda_context)
    assert [a["status"] for a in answers] == ["SUCCESS", "SUCCESS"]
    assert [t.name for t in edge["store"].list_targets()] == ["local"]
    with pytest.raises(Exception):
        module.handler({**base, "RequestType": "Update",
                        "ResourceProperties": {**properties, "ExternalId": "wrong-external-id-1234"}}, lambda_context)  # fmt: skip
    assert answers[-1]["status"] == "FAILED" and answers[-1]["reason"].startswith("EdgeRoleRefused:")
    assert pauses == [5.0, 10.0, 15.0, 20.0]  # a new role's trust policy gets 50 s to take effect
    module.handler({**base, "RequestType": "Delete"}, lambda_context)
    assert edge["store"].list_targets() == []


# The operator CLI (utils/edge-targets.py) against the function ------------------------------------


class HandlerLambda:
    """A Lambda client whose Invoke runs the loaded handler (errors as the Lambda runtime shapes them)."""

    def __init__(self, module: Any, context: FakeContext) -> None:
        self.module, self.context, self.payloads = module, context, []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        import io

        request = json.loads(Payload)
        self.payloads.append(request)
        try:
            body, error = self.module.handler(request, self.context), None
        except Exception as exc:
            body, error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}, "Unhandled"
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}
        if error:
            response["FunctionError"] = error
        return response


def test_the_cli_registers_lists_and_deregisters(
    edge: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    import io

    from certcli import AwsClients
    from certcli.targets import targets_main

    module = load_handler("targets", {"CA_TABLE_NAME": TABLE, "EDGE_ROLE_NAME_PREFIX": EDGE_PREFIX}, monkeypatch)
    monkeypatch.setattr(module.registry, "_sessions", EdgeSessions(edge["sts"], "f"))
    fake = HandlerLambda(module, lambda_context)
    account: EdgeAccount = edge["account"]

    def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        clients = AwsClients(region="us-east-1", lambda_client=fake)  # type: ignore[arg-type]
        code = targets_main([*argv, "--function-name", "targets"], clients=clients, environ=environ or {},
                            stdout=out, stderr=err)  # fmt: skip
        return code, out.getvalue(), err.getvalue()

    register = ("register", "prod", "--account-id", WORKLOAD, "--role-arn", account.role_arn,
                "--kvs-arn", account.kvs_arn, "--registered-by", "ops")  # fmt: skip
    code, _, err = run(*register)
    assert code == 2 and "KMSCA_EDGE_EXTERNAL_ID" in err and fake.payloads == []
    code, out, err = run(*register, "--json", environ={"KMSCA_EDGE_EXTERNAL_ID": EXTERNAL_ID})
    assert code == 0, err
    assert json.loads(out)["target"]["account_id"] == WORKLOAD and EXTERNAL_ID not in out
    assert fake.payloads[-1] == {
        "operation": "register", "name": "prod", "account_id": WORKLOAD, "role_arn": account.role_arn,
        "external_id": EXTERNAL_ID, "kvs_arn": account.kvs_arn, "registered_by": "ops",
    }  # fmt: skip
    code, out, _ = run("list")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["NAME", "ACCOUNT_ID"] and "prod" in out
    code, _, err = run(*register, "--external-id", "wrong-external-id-12345")
    assert code == 2 and err.startswith("error: TargetAlreadyRegistered:") and "deregister it first" in err
    code, out, _ = run("deregister", "prod")
    assert code == 0 and out.strip() == "deregistered prod"
    code, _, err = run(*register, "--external-id", "wrong-external-id-12345")
    assert code == 2 and err.startswith("error: EdgeRoleRefused:") and "CaRoleArns" in err


def test_the_script_runs_on_its_own() -> None:
    import subprocess
    import sys

    from tests.support.aws import REPO

    script = str(REPO / "utils" / "edge-targets.py")
    shown = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and "register" in shown.stdout and "deregister" in shown.stdout
    refused = subprocess.run(
        [sys.executable, script, "register", "prod", "--account-id", WORKLOAD, "--role-arn", "r", "--kvs-arn", "k",
         "--function-name", "f", "--region", "us-east-1"],
        capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.startswith("error: InvalidArgument:")


def test_an_unreachable_sts_is_unavailable_not_internal(edge: Any) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Down:
        def assume_role(self, **kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://sts.eu-west-1.amazonaws.com")

    with pytest.raises(EdgeTargetUnavailable, match="AssumeRole failed with EndpointConnectionError"):
        EdgeSessions(Down(), "kmsca-dev-f").client(edge["account"].target(), "acm", "us-east-1")


def test_sts_is_made_on_first_use_only(edge: Any) -> None:
    made: list[str] = []

    def factory() -> Any:
        made.append("sts")
        return edge["sts"]

    sessions = EdgeSessions(factory, "kmsca-dev-f")
    assert made == []
    sessions.client(edge["account"].target(), "acm", "us-east-1")
    sessions.client(edge["account"].target(), "cloudfront", "us-east-1")
    assert made == ["sts"]
