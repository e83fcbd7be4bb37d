"""botocore clients with Stubber answers for the CLI tests (tests/cli/): no AWS, no moto."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
from botocore.stub import Stubber

from tests.support.aws import REGION


def stub_client(service: str) -> Any:
    """A real botocore client of ``service`` with fixed test credentials (answers come from a Stubber)."""
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def cfn_stub(stack_name: str, outputs: dict[str, str]) -> tuple[Any, Stubber]:
    """A CloudFormation client whose one ``DescribeStacks`` of ``stack_name`` answers ``outputs``
    (OutputKey -> OutputValue); the Stubber is active."""
    client = stub_client("cloudformation")
    stubber = Stubber(client)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": stack_name,
                    "CreationTime": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": stack_name},
    )
    stubber.activate()
    return client, stubber
