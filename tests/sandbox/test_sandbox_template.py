"""Template reading and intrinsic-function resolution of the local sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils.sandbox.template import Physical, Template, TemplateError, stringify

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Env:
    Type: String
    Default: dev
    AllowedPattern: "^[a-z]+$"
  Days:
    Type: Number
    Default: 30
    MinValue: 1
    MaxValue: 90
  Names:
    Type: CommaDelimitedList
    Default: "a,b,c"
  Url:
    Type: String
    Default: ""
Mappings:
  Sizes:
    dev: {Memory: 128}
    prod: {Memory: 1024}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  HasUrl: !Not [!Equals [!Ref Url, ""]]
  ProdWithUrl: !And [!Condition IsProd, !Condition HasUrl]
Globals:
  Function:
    Timeout: 30
    Layers: [!Ref Layer]
    Environment:
      Variables:
        TABLE: !Ref Table
        SHARED: global
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      Tags: &tags
        - {Key: env, Value: !Ref Env}
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  ProdOnly:
    Type: AWS::SNS::Topic
    Condition: IsProd
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: pkg.app.handler
      Timeout: 10
      Layers: [extra-layer]
      MemorySize: !FindInMap [Sizes, !Ref Env, Memory]
      Tags: *tags
      Environment:
        Variables:
          SHARED: own
          SECOND: !Select [1, !Ref Names]
          JOINED: !Join ["-", [!Ref Env, !GetAtt Table.Arn, 7]]
          SUB: !Sub ["${Table}/${Var}/${!Literal}/${AWS::Region}/${Table.Arn}", {Var: !Ref Days}]
          PROD: !If [IsProd, "yes", "no"]
          DROPPED: !If [HasUrl, !Ref Url, !Ref AWS::NoValue]
          SPLIT: !Select [0, !Split [",", "x,y"]]
          FLAG: true
          DATE: 2024-01-02
      Events:
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
Outputs:
  TableName:
    Value: !Ref Table
    Export: {Name: !Sub "${AWS::StackName}-table"}
  Prod:
    Condition: IsProd
    Value: !GetAtt ProdOnly.TopicArn
  Names:
    Value: !Ref Names
"""

PHYSICAL = {
    "Table": Physical("tbl", {"Arn": "arn:tbl"}),
    "Layer": Physical("arn:layer"),
    "ProdOnly": Physical("arn:topic", {"TopicArn": "arn:topic"}),
}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "template.yaml"
    target.write_text(TEMPLATE)
    return target


def make(path: Path, **overrides: str) -> Template:
    return Template(path, stack_name="stk", region="eu-west-1", parameter_overrides=overrides)


def test_function_is_resolved_with_globals(path: Path) -> None:
    fn = make(path).function("Fn", PHYSICAL)
    assert fn.code_uri == path.parent / "fn"
    assert (fn.module, fn.attribute) == ("pkg.app", "handler")
    assert fn.module_path == path.parent / "fn" / "pkg" / "app.py"
    assert fn.timeout == 10
    assert fn.memory_size == 128
    assert fn.properties["Layers"] == [{"Ref": "Layer"}, "extra-layer"]  # SAM: lists concatenate
    assert fn.events["Tick"]["Type"] == "Schedule"
    assert fn.environment == {
        "TABLE": "tbl",
        "SHARED": "own",
        "SECOND": "b",
        "JOINED": "dev-arn:tbl-7",
        "SUB": "tbl/30/${Literal}/eu-west-1/arn:tbl",
        "PROD": "no",
        "SPLIT": "x",
        "FLAG": "true",
        "DATE": "2024-01-02",
    }


def test_conditions_and_overrides(path: Path) -> None:
    dev = make(path)
    assert dev.conditions == {"IsProd": False, "HasUrl": False, "ProdWithUrl": False}
    assert "ProdOnly" not in dev.resources
    assert "Prod" not in dev.outputs(PHYSICAL)
    prod = make(path, Env="prod", Url="https://x")
    assert prod.conditions == {"IsProd": True, "HasUrl": True, "ProdWithUrl": True}
    assert [r.logical_id for r in prod.of_type("AWS::SNS::*")] == ["ProdOnly"]
    assert prod.outputs(PHYSICAL)["Prod"].value == "arn:topic"
    env = prod.function("Fn", PHYSICAL).environment
    assert (env["PROD"], env["DROPPED"]) == ("yes", "https://x")
    assert prod.function("Fn", PHYSICAL).memory_size == 1024


def test_outputs(path: Path) -> None:
    outputs = make(path).outputs(PHYSICAL)
    assert outputs["TableName"].value == "tbl"
    assert outputs["TableName"].export_name == "stk-table"
    assert outputs["Names"].value == "a,b,c"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Env": "Dev1"}, "does not match"),
        ({"Days": "0"}, "below"),
        ({"Days": "91"}, "above"),
        ({"Days": "many"}, "not a number"),
        ({"Unknown": "x"}, "do not exist"),
    ],
)
def test_parameters_are_validated(path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        make(path, **overrides)


def test_order_and_missing_resources(path: Path) -> None:
    template = make(path)
    order = template.creation_order()
    assert order.index("Fn") > order.index("Table")
    assert order.index("Fn") > order.index("Layer")
    with pytest.raises(TemplateError, match="not created"):
        template.function("Fn", {"Layer": PHYSICAL["Layer"]})
    with pytest.raises(TemplateError, match="attribute not available"):
        template.resolve({"Fn::GetAtt": ["Table", "StreamArn"]}, PHYSICAL)


def test_circular_dependencies_are_reported(tmp_path: Path) -> None:
    target = tmp_path / "template.yaml"
    target.write_text(
        "Resources:\n"
        "  A: {Type: AWS::SNS::Topic, Properties: {TopicName: !GetAtt B.TopicName}}\n"
        "  B: {Type: AWS::SNS::Topic, DependsOn: A}\n"
    )
    with pytest.raises(TemplateError, match="circular"):
        Template(target, stack_name="s", region="eu-west-1").creation_order()


def test_stringify_is_what_cloudformation_sends_custom_resources() -> None:
    assert stringify({"a": 1, "b": [True, 2.5], "c": {"d": None}}) == {
        "a": "1",
        "b": ["true", "2.5"],
        "c": {"d": None},
    }
