"""Bootstrap custom resource: create the CA hierarchy once and publish it; and the
``Custom::ParameterCheck`` resource, which fails the deploy on a bad parameter combination first
(:mod:`kmsca.parameter_check`).

Create and Update run :func:`kmsca.bootstrap.bootstrap_ca` (idempotent); Delete does nothing: a CA
is never deleted by a stack operation. CloudFormation is always answered (see
:mod:`kmsca.custom_resource`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.bootstrap import CaHierarchyConfig, bootstrap_ca
from kmsca.custom_resource import run_custom_resource
from kmsca.edge_session import EdgeSessions
from kmsca.edge_truststores import update_edge_trust_stores
from kmsca.parameter_check import RESOURCE_TYPE as PARAMETER_CHECK
from kmsca.parameter_check import check_parameters
from kmsca.publish import CA_BUNDLE_KEY
from kmsca.settings import BootstrapSettings
from kmsca.store import DynamoDbCertificateStore
from kmsca.targets import DynamoDbTargetStore
from kmsca.truststore import require_ocsp_urls, update_trust_store

logger = Logger()
metrics = Metrics()

SETTINGS = BootstrapSettings.from_env()
kms = boto3.client("kms")
s3 = boto3.client("s3")
cloudfront = boto3.client("cloudfront") if SETTINGS.trust_store_id else None
dynamodb = boto3.client("dynamodb")
store = DynamoDbCertificateStore(dynamodb, SETTINGS.table_name)
targets = DynamoDbTargetStore(dynamodb, SETTINGS.table_name)
sessions = EdgeSessions(lambda: boto3.client("sts"))
PHYSICAL_RESOURCE_ID = f"{SETTINGS.table_name}/ca-hierarchy"


def create_or_update(event: Mapping[str, Any]) -> dict[str, str]:
    """Bootstrap and return the custom resource's attributes."""
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
    if result.trust_store_problems:
        logger.warning(
            "THE CA BUNDLE CANNOT BE A CLOUDFRONT TRUST STORE (viewer mTLS); choose RSA or P-256/P-384 CA keys",
            extra={"problems": list(result.trust_store_problems)},
        )
    elif SETTINGS.trust_store_id and cloudfront is not None:
        if SETTINGS.trust_store_ocsp:
            require_ocsp_urls([result.issuing.certificate, result.root.certificate])  # FAILED names the parameter
        update_trust_store(cloudfront, SETTINGS.trust_store_id, SETTINGS.public_bucket, CA_BUNDLE_KEY, SETTINGS.region,
                           use_ocsp=SETTINGS.trust_store_ocsp)  # fmt: skip
        logger.info(
            "CloudFront trust store updated",
            extra={"trust_store_id": SETTINGS.trust_store_id, "ocsp": SETTINGS.trust_store_ocsp},
        )
    edge = {"updated": [], "failed": {}} if result.trust_store_problems else edge_trust_stores()
    return {
        "EdgeTrustStoresUpdated": ",".join(edge["updated"]),
        "EdgeTrustStoresFailed": ",".join(f"{k}:{v}" for k, v in edge["failed"].items()),
        "RootCaSerialNumber": result.root.serial_number,
        "IssuingCaSerialNumber": result.issuing.serial_number,
        "CaBundleS3Uri": result.bundle_uri,
        "CloudFrontTrustStoreReady": "yes"
        if not result.trust_store_problems
        else "NO: " + "; ".join(result.trust_store_problems)[:400],
    }


def edge_trust_stores() -> dict[str, Any]:
    """Every registered edge target's trust store re-reads the bundle (kmsca.edge_truststores); a
    target's failure is logged and counted (``EdgeTrustStoreUpdateFailed``), never fails the deploy."""
    # OCSP checking of a workload's trust store is its owner's choice (use_ocsp None: left as it is).
    report = update_edge_trust_stores(targets, sessions, SETTINGS.public_bucket, CA_BUNDLE_KEY, SETTINGS.region)
    for name, code in report.failed.items():
        logger.error("edge target's trust store not updated; the next deploy retries", extra={"target": name,
                                                                                              "error": code})
    if report.failed:
        metrics.add_metric(name="EdgeTrustStoreUpdateFailed", unit=MetricUnit.Count, value=len(report.failed))
    if report.updated:
        logger.info("edge trust stores updated", extra={"targets": report.updated})
    return {"updated": report.updated, "failed": report.failed}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    if event.get("RequestType") == "Delete":
        logger.info("delete requested: the CA hierarchy is kept")
    try:
        if event.get("ResourceType") == PARAMETER_CHECK:
            return run_custom_resource(
                event, lambda e: check_parameters(e.get("ResourceProperties", {})), f"{PHYSICAL_RESOURCE_ID}/check"
            )
        return run_custom_resource(event, create_or_update, PHYSICAL_RESOURCE_ID)
    except Exception:
        logger.exception("bootstrap failed")
        raise
