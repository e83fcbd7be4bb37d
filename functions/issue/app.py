"""Issue function: sign an end-entity certificate for a CSR.

Adapter only: parse the event into :class:`kmsca.models.IssueRequest`, call
:meth:`kmsca.issuance.Issuer.issue`, return its response. Refusals propagate as
:class:`kmsca.errors.CaError` subclasses, so the invoke response carries ``FunctionError`` with
``errorType`` = the error code and ``errorMessage`` = the reason.

Two paths reach it (:mod:`kmsca.function_url`): the function URL (``AuthType: AWS_IAM``; the
verified caller's issuance policy applies, :mod:`kmsca.caller_policy`, answers are HTTP with
``{"error", "message"}`` on refusal) and a direct Invoke (administrators with
``lambda:InvokeFunction``; no policy, refusals raised as before).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.acm import ACM_REGION, AcmImporter
from kmsca.acm_targets import AcmTargets
from kmsca.caller_policy import grant_for
from kmsca.edge_session import EdgeSessions
from kmsca.errors import CaError, wire_errors
from kmsca.function_url import FUNCTION_URL, parse_invocation
from kmsca.issuance import Issuer
from kmsca.models import IssueRequest, parse_request
from kmsca.policy_store import DynamoDbPolicyStore
from kmsca.settings import IssueSettings
from kmsca.store import DynamoDbCertificateStore
from kmsca.targets import DynamoDbTargetStore
from kmsca.wiring import build_issuer

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = IssueSettings.from_env()
kms = boto3.client("kms")
dynamodb = boto3.client("dynamodb")
store = DynamoDbCertificateStore(dynamodb, SETTINGS.table_name)
# CloudFront reads ACM in us-east-1 only, of the distribution's account: a cloudfront-origin request
# names its edge target (default local). Clients are made on the first such request only.
acm = AcmTargets(
    AcmImporter(lambda: boto3.client("acm", region_name=ACM_REGION)),
    DynamoDbTargetStore(dynamodb, SETTINGS.table_name),
    EdgeSessions(lambda: boto3.client("sts")),
)
policies = DynamoDbPolicyStore(dynamodb, SETTINGS.table_name)
_issuer: Issuer | None = None


def get_issuer() -> Issuer:
    """The issuer for this container: CA records and KMS public key are read on first use only."""
    global _issuer
    if _issuer is None:
        _issuer = build_issuer(SETTINGS, store, kms, acm)
    return _issuer


@wire_errors(logger, FUNCTION_URL)
@logger.inject_lambda_context(clear_state=True)
# not the response (certificate and chain, several KB per request) in the X-Ray segment's metadata
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        invocation = parse_invocation(event)
        request = parse_request(IssueRequest, invocation.request)
        caller = invocation.caller
        logger.append_keys(profile=request.profile, caller=caller.arn if caller else "direct-invoke")
        if caller is None:  # direct Invoke: administrators (lambda:InvokeFunction), no policy
            outcome = get_issuer().issue(request, datetime.now(UTC))
        else:
            stored = policies.load()
            grant = grant_for(stored.document if stored else None, caller, context.invoked_function_arn.split(":")[4])
            logger.append_keys(policy_rule=grant.rule.name if grant.rule else None)
            outcome = get_issuer().issue(request, datetime.now(UTC), caller, grant)
    except CaError as exc:
        logger.warning("request refused", extra={"error_code": exc.code, "reason": exc.message})
        metrics.add_metric(name="CertificatesRejected", unit=MetricUnit.Count, value=1)
        raise
    response = outcome.response
    logger.append_keys(serial_number=response["serial_number"], acm_certificate_arn=response.get("acm_certificate_arn"))
    if outcome.replayed:
        logger.info("idempotent replay of an issued certificate")
        metrics.add_metric(name="IdempotentReplays", unit=MetricUnit.Count, value=1)
    else:
        logger.info("certificate issued", extra={"subject": response["subject"], "not_after": response["not_after"]})
        metrics.add_metric(name="CertificatesIssued", unit=MetricUnit.Count, value=1)
    return response
