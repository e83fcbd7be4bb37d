"""Bootstrap custom resource: create the CA hierarchy once and publish it.

CloudFormation custom-resource protocol (AWS CloudFormation User Guide, "Custom resources"):
the handler always answers the pre-signed ``ResponseURL`` with SUCCESS or FAILED, so a stack
never waits for a time-out. Create and Update run :func:`kmsca.bootstrap.bootstrap_ca` (idempotent);
Delete does nothing: a CA is never deleted by a stack operation.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.bootstrap import CaHierarchyConfig, bootstrap_ca
from kmsca.settings import BootstrapSettings
from kmsca.store import DynamoDbCertificateStore

logger = Logger()
metrics = Metrics()

SETTINGS = BootstrapSettings.from_env()
kms = boto3.client("kms")
s3 = boto3.client("s3")
store = DynamoDbCertificateStore(boto3.client("dynamodb"), SETTINGS.table_name)
PHYSICAL_RESOURCE_ID = f"{SETTINGS.table_name}/ca-hierarchy"


def send_response(event: dict[str, Any], status: str, reason: str, data: dict[str, str]) -> None:
    """PUT the custom-resource result to the pre-signed ``ResponseURL`` (at most 4 KB of body)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_RESOURCE_ID),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's pre-signed S3 URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def run(event: dict[str, Any]) -> dict[str, str]:
    """Create/Update: bootstrap and return the custom resource's attributes; Delete: nothing."""
    if event["RequestType"] == "Delete":
        logger.info("delete requested: the CA hierarchy is kept")
        metrics.add_metric(name="CaDeletesRefused", unit=MetricUnit.Count, value=1)
        return {}
    config = CaHierarchyConfig.from_properties(event.get("ResourceProperties", {}))
    result = bootstrap_ca(store, kms, s3, SETTINGS, config, datetime.now(UTC))
    logger.info(
        "CA hierarchy ready",
        extra={
            "root_serial_number": result.root.serial_number,
            "issuing_serial_number": result.issuing.serial_number,
            "ca_records_created": list(result.created),
            "objects_published": list(result.published),
        },
    )
    metrics.add_metric(name="CaCertificatesCreated", unit=MetricUnit.Count, value=len(result.created))
    return {
        "RootCaSerialNumber": result.root.serial_number,
        "IssuingCaSerialNumber": result.issuing.serial_number,
        "CaBundleS3Uri": result.bundle_uri,
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    try:
        data = run(event)
    except Exception as exc:
        logger.exception("bootstrap failed")
        send_response(event, "FAILED", f"{type(exc).__name__}: {exc}", {})
        raise
    send_response(event, "SUCCESS", "CA hierarchy ready", data)
    return data
