"""template.yaml: lint-clean, least privilege on the CA keys, the outputs the tools rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import REPO, TEMPLATE

KEY_SPECS = [
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
]


def _functions() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in function["Properties"].get("Policies", []):
        if "Fn::If" in policy:  # a conditional policy: check the branch that is not AWS::NoValue
            policy = next(branch for branch in policy["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"})
        assert isinstance(policy, dict) and "Statement" in policy, "policies are inline statements only"
        found.extend(policy["Statement"])
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(action: str, key_logical_id: str) -> set[str]:
    holders = set()
    for name, function in _functions().items():
        for statement in _statements(function):
            resources = _as_list(statement["Resource"])
            targets = [{"Fn::GetAtt": f"{key_logical_id}.Arn"}, {"Fn::GetAtt": [key_logical_id, "Arn"]}]
            if action in _as_list(statement["Action"]) and any(t in resources for t in targets):
                holders.add(name)
    return holders


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(REPO / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_issuance_rotation_crl_publication_and_the_ocsp_responder_sign_with_the_issuing_key() -> None:
    # the OCSP responder: its delegated responder certificate, about once a day
    assert _grants("kms:Sign", "IssuingCaKey") == {
        "IssueFunction",
        "RotateAcmFunction",
        "PublishCrlFunction",
        "OcspFunction",
    }


def test_only_bootstrap_and_crl_publication_sign_with_the_root_key() -> None:
    assert _grants("kms:Sign", "RootCaKey") == {"BootstrapFunction", "PublishCrlFunction"}


def test_revocations_reach_crl_publication_through_the_filtered_stream() -> None:
    events = TEMPLATE["Resources"]["PublishCrlFunction"]["Properties"]["Events"]
    stream = events["Revocations"]["Properties"]
    assert stream["Stream"] in ({"Fn::GetAtt": "CaTable.StreamArn"}, {"Fn::GetAtt": ["CaTable", "StreamArn"]})
    pattern = json.loads(stream["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern["dynamodb"]["NewImage"]["status"] == {"S": ["revoked"]}
    assert events["Hourly"]["Type"] == "ScheduleV2"


#: Actions that have no resource type (Service Authorization Reference): grantable only on "*".
UNSCOPABLE = {("RotateAcmFunction", "acm:ListCertificates")}


def test_no_wildcard_actions_or_resources_in_function_policies() -> None:
    for name, function in _functions().items():
        for statement in _statements(function):
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{name} grants {action}"
            if all((name, action) in UNSCOPABLE for action in _as_list(statement["Action"])):
                continue
            assert "*" not in _as_list(statement["Resource"]), f"{name} grants on every resource"


@pytest.mark.parametrize("key", ["RootCaKey", "IssuingCaKey"])
def test_ca_key_policies_name_their_actions(key: str) -> None:
    resource = TEMPLATE["Resources"][key]
    assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
        assert "kms:*" not in _as_list(statement["Action"])
        assert all("*" not in action for action in _as_list(statement["Action"]))


def test_key_spec_parameters() -> None:
    params = TEMPLATE["Parameters"]
    assert params["RootCaKeySpec"]["AllowedValues"] == KEY_SPECS
    assert params["IssuingCaKeySpec"]["AllowedValues"] == KEY_SPECS
    assert params["RootCaKeySpec"]["Default"] == "ECC_NIST_P384"
    assert params["IssuingCaKeySpec"]["Default"] == "ECC_NIST_P256"
    assert params["MaxLifetimeDays"]["Default"] == 365


def test_outputs_the_tools_rely_on() -> None:
    assert {"PublicBucketName", "InternalBucketName", "IssueFunctionName", "IssueFunctionArn", "CaBundleS3Uri"} <= set(
        TEMPLATE["Outputs"]
    )


def test_the_inventory_table_has_the_sparse_revoked_index() -> None:
    props = TEMPLATE["Resources"]["CaTable"]["Properties"]
    index = next(i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == "RevokedByCa")
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["crl_entry"]}
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["revoked_ca", "not_after"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def _attached_statements(function_name: str) -> list[dict[str, Any]]:
    """Statements of AWS::IAM::Policy resources attached to the function's SAM-generated role."""
    role = {"Ref": f"{function_name}Role"}
    return [
        statement
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy" and role in resource["Properties"].get("Roles", [])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _holders(action: str) -> set[str]:
    return {
        name
        for name, f in _functions().items()
        for st in _statements(f) + _attached_statements(name)
        if action in _as_list(st["Action"])
    }


def test_acm_import_is_limited_to_issuance_and_rotation() -> None:
    assert _holders("acm:ImportCertificate") == {"IssueFunction", "RotateAcmFunction"}
    assert _holders("acm:DeleteCertificate") == {"IssueFunction"}


def test_only_the_sync_function_writes_the_key_value_store() -> None:
    assert _holders("cloudfront-keyvaluestore:UpdateKeys") == {"SyncKvsFunction"}


def test_viewer_mtls_resources_are_behind_one_parameter() -> None:
    for name in ("EdgeStack", "SyncKvsFunction", "SyncKvsFunctionStorePolicy", "KvsSyncFailedAlarm"):
        assert TEMPLATE["Resources"][name]["Condition"] == "ViewerMtls"
    assert TEMPLATE["Conditions"]["ViewerMtls"] == {"Fn::Equals": [{"Ref": "EnableViewerMtls"}, "true"]}


def test_the_edge_stack_is_nested_from_the_local_edge_template() -> None:
    edge = TEMPLATE["Resources"]["EdgeStack"]
    assert edge["Type"] == "AWS::Serverless::Application"
    properties = edge["Properties"]
    assert properties["Location"] == "edge/template.yaml" and (REPO / "edge" / "template.yaml").is_file()
    parameters = properties["Parameters"]
    assert parameters["CaAccountId"] == {"Ref": "AWS::AccountId"}
    assert parameters["ExternalId"] == {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    callers = parameters["CaRoleArns"]["Fn::Join"][1]
    expected = ["SyncKvsFunction", "IssueFunction", "RotateAcmFunction", "BootstrapFunction", "TargetsFunction"]
    assert callers == [{"Fn::GetAtt": [f"{name}Role", "Arn"]} for name in expected]
    assert TEMPLATE["Outputs"]["EdgeCallerRoleArns"]["Value"] == {"Fn::Join": [",", callers]}
    for output in ("RevokedSerialsStoreArn", "RevocationCheckFunctionArn"):
        assert TEMPLATE["Outputs"][output]["Value"] == {"Fn::GetAtt": ["EdgeStack", f"Outputs.{output}"]}


def test_no_function_role_depends_on_the_edge_stack() -> None:
    """The edge stack needs the function roles' ARNs (its trust policy): a role that needed the
    edge stack would be a circular dependency. Permissions on its resources are separate policies."""
    for name, function in _functions().items():
        assert "EdgeStack" not in json.dumps(function["Properties"].get("Policies", [])), name
    assert TEMPLATE["Resources"]["SyncKvsFunction"]["DependsOn"] == "SyncKvsFunctionStorePolicy"


def test_every_schedule_omits_its_fixed_name() -> None:
    """SAM names a ScheduleV2 schedule after its logical id unless OmitName: a second stack (dev and
    prod) in the same account and region would fail with "already exists"."""
    schedules = [
        (name, event_name, event["Properties"])
        for name, function in _functions().items()
        for event_name, event in function["Properties"].get("Events", {}).items()
        if event["Type"] == "ScheduleV2"
    ]
    assert {(name, event) for name, event, _ in schedules} == {
        ("PublishCrlFunction", "Hourly"),
        ("RotateAcmFunction", "Daily"),
        ("SyncKvsFunction", "Reconcile"),
        ("ExpiryFunction", "Daily"),
    }
    for name, event, properties in schedules:
        assert properties.get("OmitName") is True and "Name" not in properties, (name, event)


def test_the_notification_topic_has_a_key_cloudwatch_alarms_can_use() -> None:
    resources = TEMPLATE["Resources"]
    assert resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "NotificationTopicKey"}
    key = resources["NotificationTopicKey"]["Properties"]
    assert key.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    assert key.get("KeyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    account_root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    admin = next(s for s in statements if s["Sid"] == "KeyAdministrationByAccountIam")
    assert admin["Principal"] == {"AWS": account_root}
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation"} <= set(admin["Action"])
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source_arn == "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
    for statement in statements:
        assert "kms:*" not in _as_list(statement["Action"])
        if statement is not cloudwatch and statement is not admin:  # use by the account: only through SNS
            assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
                "Fn::Sub": "sns.${AWS::Region}.amazonaws.com"
            }
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms and all(a["Properties"]["AlarmActions"] == [{"Ref": "NotificationTopic"}] for a in alarms)
    assert all("AlarmName" not in a["Properties"] for a in alarms)  # generated: "<stack name>-<logical id>-..."


def test_functions_that_publish_to_the_topic_may_use_its_key() -> None:
    for name, function in _functions().items():
        statements = _statements(function)
        publishes = any("sns:Publish" in _as_list(s["Action"]) for s in statements)
        key_actions = {
            action
            for s in statements
            for action in _as_list(s["Action"])
            if {"Fn::GetAtt": ["NotificationTopicKey", "Arn"]} in _as_list(s["Resource"])
        }
        assert key_actions == ({"kms:GenerateDataKey", "kms:Decrypt"} if publishes else set()), name


# Table-stream consumers: a poison record must neither block its shard nor vanish -----------------


def _stream_events() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, event["Properties"])
        for name, function in _functions().items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "DynamoDB"
    ]


def _alarms() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def _lambda_metrics(alarm: dict[str, Any]) -> list[tuple[str, Any]]:
    """(metric name, FunctionName dimension) of the AWS/Lambda metrics an alarm watches."""
    props = alarm["Properties"]
    stats = (
        [props] if "MetricName" in props else [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
    )
    return [
        (s["MetricName"], next(d["Value"] for d in s["Dimensions"] if d["Name"] == "FunctionName"))
        for s in stats
        if s["Namespace"] == "AWS/Lambda"
    ]


def test_the_stream_consumers_are_the_crl_publication_and_the_kvs_sync() -> None:
    assert sorted(name for name, _ in _stream_events()) == ["PublishCrlFunction", "SyncKvsFunction"]


@pytest.mark.parametrize(("function", "properties"), _stream_events(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_poison_record_is_isolated_retried_a_bounded_time_and_kept(function: str, properties: dict[str, Any]) -> None:
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 <= properties["MaximumRetryAttempts"] <= 5  # -1 (the default) retries until the record expires
    assert 60 <= properties["MaximumRecordAgeInSeconds"] <= 3600  # the hourly schedules repair what was dropped
    on_failure = properties["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"  # SAM then adds sqs:SendMessage on the destination to the function's role
    assert on_failure["Destination"] == {"Fn::GetAtt": ["StreamFailuresQueue", "Arn"]}
    # no fixed name: two stacks (dev, prod) in one account and region must not collide
    assert "QueueName" not in TEMPLATE["Resources"]["StreamFailuresQueue"]["Properties"]


def test_the_stream_failures_queue_is_encrypted_and_alarmed() -> None:
    queue = TEMPLATE["Resources"]["StreamFailuresQueue"]
    assert queue["Type"] == "AWS::SQS::Queue" and "Condition" not in queue
    props = queue["Properties"]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props
    (alarm,) = [
        a["Properties"]
        for a in _alarms().values()
        if a["Properties"].get("Namespace") == "AWS/SQS"
        and a["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StreamFailuresQueue", "QueueName"]}}]
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("function", sorted(_functions()))
def test_every_function_has_an_errors_alarm(function: str) -> None:
    watching = [a for a in _alarms().values() if ("Errors", {"Ref": function}) in _lambda_metrics(a)]
    assert len(watching) == 1, f"{function}: {len(watching)} Errors alarms"
    assert watching[0].get("Condition") == TEMPLATE["Resources"][function].get("Condition")


@pytest.mark.parametrize("function", ["IssueFunction", "RevokeFunction", "InventoryFunction"])
def test_refused_requests_do_not_raise_the_errors_alarm(function: str) -> None:
    """Refusals are raised (errorType = code), so Lambda counts them in Errors: the alarm subtracts them."""
    (alarm,) = [a for a in _alarms().values() if ("Errors", {"Ref": function}) in _lambda_metrics(a)]
    metrics = alarm["Properties"]["Metrics"]
    (expression,) = [m for m in metrics if m.get("ReturnData")]
    refused = next(
        m for m in metrics if m.get("MetricStat", {}).get("Metric", {}).get("Namespace") == {"Ref": "ProjectName"}
    )
    assert refused["MetricStat"]["Metric"]["MetricName"] in (
        "CertificatesRejected",
        "RevocationsRejected",
        "InventoryRequestsRejected",
    )
    assert expression["Expression"] == f"FILL(errors, 0) - FILL({refused['Id']}, 0)"


@pytest.mark.parametrize("function", ["PublishCrlFunction", "SyncKvsFunction"])
def test_stream_consumers_have_an_iterator_age_alarm(function: str) -> None:
    (alarm,) = [a for a in _alarms().values() if ("IteratorAge", {"Ref": function}) in _lambda_metrics(a)]
    assert alarm["Properties"]["Statistic"] == "Maximum" and alarm["Properties"]["Threshold"] <= 15 * 60 * 1000
    assert alarm.get("Condition") == TEMPLATE["Resources"][function].get("Condition")


def test_edge_roles_named_in_edge_role_arns_may_read_the_bundle_and_nothing_else() -> None:
    """UpdateTrustStore in a workload account reads the bundle with its edge role's permissions:
    the public bucket's policy grants exactly the named roles (no wildcard principal, which the
    public access block would refuse as public), the bundle object only, only when some are named."""
    assert TEMPLATE["Conditions"]["HasEdgeRoleReaders"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "EdgeRoleArns"}]}, ""]}]
    }
    statements = TEMPLATE["Resources"]["TlsOnlyPublicBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (conditional,) = [s for s in statements if "Fn::If" in s]
    condition, statement, otherwise = conditional["Fn::If"]
    assert (condition, otherwise) == ("HasEdgeRoleReaders", {"Ref": "AWS::NoValue"})
    assert statement["Principal"] == {"AWS": {"Ref": "EdgeRoleArns"}}
    assert statement["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statement["Resource"] == {"Fn::Sub": "${PublicBucket.Arn}/ca-bundle.pem"}
    assert TEMPLATE["Resources"]["EdgeStack"]["Properties"]["Parameters"]["CaBundleBucketName"] == {"Ref": "PublicBucket"}


#: Failure metrics whose handler fails the invocation instead (its Errors alarm fires).
FAILURES_RAISED = {"ExpiryNoticeFailures"}


def test_every_failure_metric_a_function_emits_is_alarmed() -> None:
    """Every failure path alarms: a metric named for a failure (Fail*, Missing, Unreadable,
    Exceeded) that a handler emits is watched by an alarm (MetricName or a Metrics Insights query),
    unless the handler raises with it, which its Errors alarm watches."""
    import re

    emitted = set()
    for path in [*REPO.glob("functions/*/app.py"), *REPO.glob("layers/ca/kmsca/**/*.py")]:
        emitted |= set(re.findall(r'(?:add_metric|single_metric)\(\s*name="([A-Za-z]+)"', path.read_text()))
    failures = {m for m in emitted if re.search(r"Fail|Missing|Unreadable|Exceeded", m)}
    assert {"AcmRotationFailures", "KvsSyncFailures", "EdgeTrustStoreUpdateFailed"} <= failures
    watched = json.dumps([r["Properties"] for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"])
    unalarmed = {m for m in failures - FAILURES_RAISED if m not in watched}
    assert not unalarmed, f"failure metrics without an alarm: {sorted(unalarmed)}"
