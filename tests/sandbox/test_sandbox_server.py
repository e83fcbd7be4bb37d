"""The local sandbox, on a throwaway template and functions (independent of the CA code)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.wait import wait_until
from utils.sandbox.server import FunctionError, Sandbox, SandboxError
from utils.sandbox.template import Template, TemplateError

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = "sbx-test"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: Throwaway template for the sandbox tests.
Parameters:
  Greeting:
    Type: String
    Default: hello
  SetupMode:
    Type: String
    Default: ok
    AllowedValues: [ok, fail, silent, crash]
  KeySpec:
    Type: String
    Default: ECC_NIST_P256
Conditions:
  IsOk: !Equals [!Ref SetupMode, ok]
Globals:
  Function:
    Runtime: python3.12
    Timeout: 20
    MemorySize: 256
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        SHARED: !Sub "${AWS::StackName}-${Greeting}-${AWS::Region}"
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeySpec: !Ref KeySpec
      KeyUsage: SIGN_VERIFY
      Description: !Sub "${AWS::StackName} test key"
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: kind, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: ByKind
          KeySchema:
            - {AttributeName: kind, KeyType: HASH}
          Projection: {ProjectionType: ALL}
      StreamSpecification:
        StreamViewType: NEW_AND_OLD_IMAGES
      TimeToLiveSpecification:
        AttributeName: expires_at
        Enabled: true
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration:
        Status: Enabled
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument: {}
  Topic:
    Type: AWS::SNS::Topic
  TopicSubscription:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Topic
      Protocol: email
      Endpoint: ops@example.com
  Alarm:
    Type: AWS::CloudWatch::Alarm
  InvokeEchoPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: lambda:InvokeFunction
            Resource: !GetAtt EchoFunction.Arn
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      Handler: app.handler
      Environment:
        Variables:
          ONLY_ECHO: "1"
          KEY_ARN: !GetAtt Key.Arn
          BUCKET: !Ref Bucket
      Policies:
        - DynamoDBCrudPolicy:  # a SAM policy template: the sandbox takes roles from the SAM transform
            TableName: !Ref Table
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
  OtherFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/other/
      Handler: main.run
      Timeout: 5
      Environment:
        Variables:
          ONLY_OTHER: "2"
          POWERTOOLS_METRICS_NAMESPACE: custom-ns
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/broken/
      Handler: app.missing
  SetupFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/setup/
      Handler: app.handler
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt Table.Arn
  Setup:
    Type: Custom::Setup
    DependsOn: [BucketPolicy]
    Properties:
      ServiceToken: !GetAtt SetupFunction.Arn
      Mode: !Ref SetupMode
      Count: 3
      Flag: true
      Nested: {Values: [1, 2]}
      Table: !Ref Table
Outputs:
  EchoFunctionName:
    Value: !Ref EchoFunction
  EchoFunctionArn:
    Description: ARN of the echo function.
    Value: !GetAtt EchoFunction.Arn
  TableName:
    Value: !Ref Table
  BucketName:
    Value: !Ref Bucket
  KeyArn:
    Value: !GetAtt Key.Arn
  SetupAnswer:
    Value: !GetAtt Setup.Answer
  SetupId:
    Value: !Ref Setup
  OnlyWhenOk:
    Condition: IsOk
    Value: !Sub "s3://${Bucket}/ok"
"""

ECHO_APP = """\
import os

import boto3
import helper

COLD_STARTS = []
COLD_STARTS.append(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class InvalidRequest(Exception):
    pass


def handler(event, context):
    if event.get("fail"):
        raise InvalidRequest(f"bad request: {event['fail']}")
    if event.get("put"):
        boto3.client("dynamodb").put_item(
            TableName=os.environ["TABLE_NAME"], Item={"pk": {"S": event["put"]}, "kind": {"S": "echo"}}
        )
    names = ["TABLE_NAME", "SHARED", "ONLY_ECHO", "ONLY_OTHER", "KEY_ARN", "BUCKET", "AWS_ENDPOINT_URL",
             "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_LAMBDA_FUNCTION_NAME",
             "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE", "AWS_PROFILE", "SANDBOX_TEST_HOST_VAR"]
    return {
        "event": event,
        "env": {name: os.environ.get(name) for name in names},
        "helper": helper.WHO,
        "cold_starts": len(COLD_STARTS),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
"""

OTHER_APP = """\
import os

import helper


def run(event, context):
    names = ["ONLY_ECHO", "ONLY_OTHER", "TABLE_NAME", "POWERTOOLS_METRICS_NAMESPACE"]
    return {"env": {name: os.environ.get(name) for name in names}, "helper": helper.WHO,
            "not_json": set() if event.get("set") else None}
"""

SETUP_APP = """\
import json
import os
import urllib.request

import boto3


def handler(event, context):
    props = event["ResourceProperties"]
    boto3.client("dynamodb").put_item(
        TableName=props["Table"], Item={"pk": {"S": "setup-event"}, "event": {"S": json.dumps(event)}}
    )
    mode = props["Mode"]
    if mode == "crash":
        raise RuntimeError("setup crashed before responding")
    if mode == "silent":
        return None
    body = {
        "Status": "SUCCESS" if mode == "ok" else "FAILED",
        "Reason": "the setup was told to fail",
        "PhysicalResourceId": "setup-" + event["LogicalResourceId"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Answer": "42"},
    }
    data = json.dumps(body).encode()
    request = urllib.request.Request(event["ResponseURL"], data=data, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(data))})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
"""


def write_project(root: Path) -> Path:
    """A minimal SAM project: template.yaml + four functions (two with a same-named helper module)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.yaml").write_text(TEMPLATE)
    files = {
        "functions/echo/app.py": ECHO_APP,
        "functions/echo/helper.py": 'WHO = "echo"\n',
        "functions/other/main.py": OTHER_APP,
        "functions/other/helper.py": 'WHO = "other"\n',
        "functions/broken/app.py": "HANDLER = None\n",
        "functions/setup/app.py": SETUP_APP,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def sandbox(project: Path) -> Iterator[Sandbox]:
    os.environ["SANDBOX_TEST_HOST_VAR"] = "host"
    try:
        with Sandbox(project, stack_name=STACK, ) as running:
            yield running
    finally:
        del os.environ["SANDBOX_TEST_HOST_VAR"]


def lambda_client(sandbox: Sandbox) -> Any:
    assert sandbox.admin is not None
    return boto3.client(
        "lambda",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id=sandbox.admin.access_key_id,
        aws_secret_access_key=sandbox.admin.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}),
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- template ------------------------------------------------------------------------------------


def test_template_reads_the_real_template() -> None:
    template = Template(REPO_ROOT / "template.yaml", stack_name="kmsca-dev", region="eu-west-1")
    order = template.creation_order()
    for logical_id in order:
        assert all(order.index(dep) < order.index(logical_id) for dep in template.dependencies(logical_id))
    assert "CaHierarchy" in {r.logical_id for r in template.custom_resources}
    for custom in template.custom_resources:
        service_function = custom.properties["ServiceToken"]["Fn::GetAtt"][0]
        assert template.resources[service_function].type == "AWS::Serverless::Function"
        assert order.index(service_function) < order.index(custom.logical_id)
    with pytest.raises(TemplateError, match="not one of"):
        Template(
            REPO_ROOT / "template.yaml",
            stack_name="x",
            region="eu-west-1",
            parameter_overrides={"RootCaKeySpec": "DSA"},
        )
    with pytest.raises(TemplateError, match="do not exist"):
        Template(REPO_ROOT / "template.yaml", stack_name="x", region="eu-west-1", parameter_overrides={"Nope": "1"})


# -- invocation ----------------------------------------------------------------------------------


def test_invoke_success_runs_the_handler_against_moto(sandbox: Sandbox) -> None:
    result = sandbox.invoke("EchoFunction", {"put": "item-1", "n": 1})
    assert result["event"] == {"put": "item-1", "n": 1}
    env = result["env"]
    assert env["TABLE_NAME"] == sandbox.outputs["TableName"]
    assert env["SHARED"] == f"{STACK}-hello-eu-west-1"
    assert env["KEY_ARN"] == sandbox.outputs["KeyArn"]
    assert env["BUCKET"] == sandbox.outputs["BucketName"]
    assert env["AWS_ENDPOINT_URL"] == sandbox.endpoint_url
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    # the function runs with a session of its own execution role, as Lambda gives it
    assert env["AWS_ACCESS_KEY_ID"] == sandbox.functions["EchoFunction"].credentials["AWS_ACCESS_KEY_ID"]
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["POWERTOOLS_METRICS_NAMESPACE"]
    context = result["context"]
    assert context["function_name"] == f"{STACK}-EchoFunction" == env["AWS_LAMBDA_FUNCTION_NAME"]
    assert context["invoked_function_arn"] == sandbox.outputs["EchoFunctionArn"]
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "256"
    assert context["log_group_name"] == f"/aws/lambda/{STACK}-EchoFunction"
    assert 0 < context["remaining_ms"] <= 20_000
    item = sandbox.client("dynamodb").get_item(TableName=sandbox.outputs["TableName"], Key={"pk": {"S": "item-1"}})
    assert item["Item"]["kind"] == {"S": "echo"}


def test_handler_module_is_loaded_once(sandbox: Sandbox) -> None:
    first = sandbox.invoke("EchoFunction", {})
    second = sandbox.invoke("EchoFunction", {})
    assert first["cold_starts"] == second["cold_starts"] == 1


def test_invoke_error_is_reported_like_lambda(sandbox: Sandbox) -> None:
    response = lambda_client(sandbox).invoke(
        FunctionName=sandbox.function_names["EchoFunction"], Payload=json.dumps({"fail": "nope"})
    )
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "InvalidRequest"
    assert error["errorMessage"] == "bad request: nope"
    assert isinstance(error["stackTrace"], list)
    assert error["stackTrace"]
    assert "app.py" in error["stackTrace"][-1]
    with pytest.raises(FunctionError) as caught:
        sandbox.invoke("EchoFunction", {"fail": "again"})
    assert caught.value.error_type == "InvalidRequest"
    assert caught.value.error_message == "bad request: again"


def test_invoke_by_arn_and_partial_arn(sandbox: Sandbox) -> None:
    client = lambda_client(sandbox)
    arn = sandbox.outputs["EchoFunctionArn"]
    for name in (arn, f"{arn}:$LATEST", f"{sandbox.account_id}:function:{STACK}-EchoFunction"):
        response = client.invoke(FunctionName=name, Payload=b'{"via": "arn"}')
        assert "FunctionError" not in response
        assert json.loads(response["Payload"].read())["event"] == {"via": "arn"}


def test_unknown_function_goes_to_moto(sandbox: Sandbox) -> None:
    with pytest.raises(ClientError) as caught:
        lambda_client(sandbox).invoke(FunctionName=f"{STACK}-Nope", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_event_invocation_runs_in_background(sandbox: Sandbox) -> None:
    response = lambda_client(sandbox).invoke(
        FunctionName=sandbox.function_names["EchoFunction"],
        InvocationType="Event",
        Payload=json.dumps({"put": "async-item"}),
    )
    assert response["StatusCode"] == 202
    dynamodb = sandbox.client("dynamodb")
    wait_until(
        lambda: "Item" in dynamodb.get_item(TableName=sandbox.outputs["TableName"], Key={"pk": {"S": "async-item"}}),
        timeout=10, what="the Event invocation's write",
    )


def test_import_failures_are_runtime_errors(sandbox: Sandbox) -> None:
    with pytest.raises(FunctionError) as caught:
        sandbox.invoke("BrokenFunction", {})
    assert caught.value.error_type == "Runtime.HandlerNotFound"


def test_unserialisable_result_is_a_marshal_error(sandbox: Sandbox) -> None:
    with pytest.raises(FunctionError) as caught:
        sandbox.invoke("OtherFunction", {"set": True})
    assert caught.value.error_type == "Runtime.MarshalError"


def test_invalid_json_payload_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ClientError) as caught:
        lambda_client(sandbox).invoke(FunctionName=sandbox.function_names["EchoFunction"], Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"


# -- isolation -----------------------------------------------------------------------------------


def test_environment_is_isolated_between_functions(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "must-not-leak")
    before = dict(os.environ)
    echo = sandbox.invoke("EchoFunction", {})
    other = sandbox.invoke("OtherFunction", {})
    assert echo["env"]["ONLY_ECHO"] == "1"
    assert echo["env"]["ONLY_OTHER"] is None
    assert other["env"]["ONLY_OTHER"] == "2"
    assert other["env"]["ONLY_ECHO"] is None
    assert other["env"]["TABLE_NAME"] == echo["env"]["TABLE_NAME"]  # from Globals
    assert other["env"]["POWERTOOLS_METRICS_NAMESPACE"] == "custom-ns"  # the template's value wins
    assert echo["env"]["AWS_PROFILE"] is None  # the host's AWS setup does not reach functions
    assert echo["env"]["SANDBOX_TEST_HOST_VAR"] == "host"  # other host variables do
    # same-named modules next to each handler stay private to it
    assert echo["helper"] == "echo"
    assert other["helper"] == "other"
    assert dict(os.environ) == before
    assert "helper" not in sys.modules


def test_concurrent_invocations_are_serialised(sandbox: Sandbox) -> None:
    results: list[Any] = []

    def call(i: int) -> None:
        results.append(sandbox.invoke("EchoFunction" if i % 2 else "OtherFunction", {"i": i}))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    for result in results:
        if "event" in result:
            assert result["env"]["ONLY_OTHER"] is None
        else:
            assert result["env"]["ONLY_ECHO"] is None


# -- CloudFormation view -------------------------------------------------------------------------


def test_describe_stacks_returns_resolved_outputs(sandbox: Sandbox) -> None:
    cfn = sandbox.client("cloudformation")
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackName"] == STACK
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs == sandbox.outputs
    assert outputs["EchoFunctionName"] == f"{STACK}-EchoFunction"
    assert outputs["SetupAnswer"] == "42"
    assert outputs["OnlyWhenOk"] == f"s3://{outputs['BucketName']}/ok"
    described = {o["OutputKey"]: o.get("Description") for o in stack["Outputs"]}
    assert described["EchoFunctionArn"] == "ARN of the echo function."
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["Greeting"] == "hello"
    assert cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackName"] == STACK
    with pytest.raises(ClientError):
        cfn.describe_stacks(StackName="some-other-stack")


def test_resources_are_created_as_declared(sandbox: Sandbox) -> None:
    table = sandbox.client("dynamodb").describe_table(TableName=sandbox.outputs["TableName"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["ByKind"]
    ttl = sandbox.client("dynamodb").describe_time_to_live(TableName=sandbox.outputs["TableName"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    versioning = sandbox.client("s3").get_bucket_versioning(Bucket=sandbox.outputs["BucketName"])
    assert versioning["Status"] == "Enabled"
    key = sandbox.client("kms").describe_key(KeyId=sandbox.outputs["KeyArn"])["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert sandbox.physical["Table"].attrs["StreamArn"] == table["LatestStreamArn"]
    subscriptions = sandbox.client("sns").list_subscriptions_by_topic(TopicArn=sandbox.physical["Topic"].ref)
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions["Subscriptions"]] == [("email", "ops@example.com")]


# -- custom resources ----------------------------------------------------------------------------


def test_custom_resource_gets_a_cloudformation_event(sandbox: Sandbox) -> None:
    item = sandbox.client("dynamodb").get_item(
        TableName=sandbox.outputs["TableName"], Key={"pk": {"S": "setup-event"}}
    )["Item"]
    event = json.loads(item["event"]["S"])
    assert event["RequestType"] == "Create"
    assert event["LogicalResourceId"] == "Setup"
    assert event["ResourceType"] == "Custom::Setup"
    assert event["StackId"] == sandbox.stack_id
    assert event["ServiceToken"] == sandbox.functions["SetupFunction"].arn
    assert event["ResponseURL"].startswith(sandbox.endpoint_url)
    assert event["RequestId"]
    # CloudFormation passes every property value as a string
    assert event["ResourceProperties"] == {
        "ServiceToken": sandbox.functions["SetupFunction"].arn,
        "Mode": "ok",
        "Count": "3",
        "Flag": "true",
        "Nested": {"Values": ["1", "2"]},
        "Table": sandbox.outputs["TableName"],
    }
    assert sandbox.physical["Setup"].ref == "setup-Setup"
    assert sandbox.outputs["SetupId"] == "setup-Setup"


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "Setup (Custom::Setup) failed: the setup was told to fail"),
        ("crash", "RuntimeError: setup crashed before responding"),
        ("silent", "returned without sending a response"),
    ],
)
def test_custom_resource_failure_stops_startup(
    project: Path, sandbox: Sandbox, mode: str, message: str, tmp_path: Path
) -> None:
    other = write_project(tmp_path)
    failing = Sandbox(other, stack_name="sbx-fail", parameter_overrides={"SetupMode": mode})
    with pytest.raises(SandboxError, match=re.escape(message)):
        failing.start()
    assert failing._server is None
    # the sandbox started by the fixture is unaffected
    assert sandbox.invoke("OtherFunction", {})["helper"] == "other"


@pytest.mark.e2e
def test_a_bad_lifetime_combination_fails_the_start_naming_both_parameters() -> None:
    """The real template: Custom::ParameterCheck runs before the CA hierarchy and fails the start."""
    failing = Sandbox(REPO_ROOT, stack_name="sbx-params", parameter_overrides={"MaxLifetimeDays": "30"})
    with pytest.raises(SandboxError, match=re.escape("DefaultLifetimeDays (90) is above MaxLifetimeDays (30)")):
        failing.start()
    assert failing._server is None


def test_ml_dsa_key_spec_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="ML-DSA"):
        Sandbox(write_project(tmp_path), parameter_overrides={"KeySpec": "ML_DSA_65"}).start()


# -- lifecycle -----------------------------------------------------------------------------------


def test_clean_stop_releases_the_port(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    before = {t.name for t in threading.enumerate()}
    box = Sandbox(project, stack_name="sbx-stop").start()
    port = int(box.endpoint_url.rsplit(":", 1)[1])
    assert box.invoke("OtherFunction", {})["env"]["ONLY_OTHER"] == "2"
    assert not port_is_free(port)
    box.stop()
    box.stop()  # idempotent
    assert port_is_free(port)

    def ours_left() -> set[str]:
        leftovers = {t.name for t in threading.enumerate() if t.is_alive()} - before
        return {name for name in leftovers if name.startswith(("sandbox", "event-", "cfn-"))}

    wait_until(lambda: not ours_left(), timeout=10, what="the sandbox's threads ended")
    assert not ours_left()
    with pytest.raises(SandboxError):
        _ = box.endpoint_url


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SandboxError, match=f"cannot listen on 127.0.0.1:{port}"):
            Sandbox(write_project(tmp_path), port=port).start()


def test_command_line_writes_state_and_stops_on_sigterm(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    state_file = tmp_path / "state" / "sandbox.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "layers" / "ca")])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "utils.sandbox",
            "--repo-root",
            str(project),
            "--port",
            "0",
            "--stack-name",
            "sbx-cli",
            "--parameter-overrides",
            "Greeting=hi",
            "--state-file",
            str(state_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:

        def started() -> bool:
            assert process.poll() is None, process.communicate()
            return state_file.exists()

        wait_until(started, timeout=60, what="the state file")
        state = json.loads(state_file.read_text())
        assert state["stack_name"] == "sbx-cli"
        assert state["pid"] == process.pid
        assert state["functions"]["EchoFunction"] == "sbx-cli-EchoFunction"
        operator = state["operator"]  # the template's managed policies, nothing else
        client = boto3.client(
            "lambda",
            endpoint_url=state["endpoint_url"],
            region_name=state["region"],
            aws_access_key_id=operator["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=operator["AWS_SECRET_ACCESS_KEY"],
        )
        response = client.invoke(FunctionName=state["outputs"]["EchoFunctionName"], Payload=b"{}")
        assert json.loads(response["Payload"].read())["env"]["SHARED"] == "sbx-cli-hi-eu-west-1"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "export AWS_ENDPOINT_URL=" in stdout
    assert state["endpoint_url"] in stdout
    assert not state_file.exists()


def test_command_line_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "utils.sandbox", "--repo-root", str(project), "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
