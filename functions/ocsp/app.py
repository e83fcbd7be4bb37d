"""OCSP responder function (RFC 6960, RFC 5019), behind a Lambda function URL and CloudFront.

Adapter only: read the function URL event (payload format 2.0), let
:class:`kmsca.responder.OcspResponder` answer, render the HTTP response. Every answer is HTTP 200
``application/ocsp-response`` (RFC 6960 A.1), errors included: ``malformedRequest``,
``unauthorized``, and ``tryLater`` for a backend failure (counted in ``OcspBackendFailures``, which
an alarm watches). A successful GET is cacheable until its nextUpdate (RFC 5019 6.2); errors
are ``no-store``. Nothing about the caller (address, headers, the request bytes or the serial
number asked about) is logged.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from cryptography import x509
from cryptography.x509 import ocsp
from kmsca import wiring
from kmsca.ca import CaSigner
from kmsca.certificates import ISSUING, ROOT
from kmsca.ocsp import MAX_REQUEST_BYTES, OCSP_RESPONSE_TYPE, OcspRefusal, error_response
from kmsca.responder import OcspAnswer, OcspResponder, S3PresignedSource
from kmsca.settings import OcspSettings
from kmsca.store import DynamoDbCertificateStore

logger = Logger()
metrics = Metrics()
tracer = Tracer()

SETTINGS = OcspSettings.from_env()
#: The distribution routes ``/ocsp`` and ``/ocsp/*`` here; the GET request follows the prefix.
PATH_PREFIX = "/ocsp"
kms = boto3.client("kms")
store = DynamoDbCertificateStore(boto3.client("dynamodb"), SETTINGS.table_name)
_cas: dict[str, Any] = {}


def issuing_signer() -> CaSigner:
    """The issuing CA record and KMS key (one BatchGetItem, one GetPublicKey per container)."""
    if ISSUING not in _cas:
        _cas[ISSUING] = wiring.issuing_signer(SETTINGS, store, kms)
    signer: CaSigner = _cas[ISSUING]
    return signer


def root_certificate() -> x509.Certificate:
    """The root CA certificate (one BatchGetItem per container)."""
    if ROOT not in _cas:
        _cas[ROOT] = store.get_cas([ROOT])[ROOT].certificate
    certificate: x509.Certificate = _cas[ROOT]
    return certificate


responder = OcspResponder(
    store=store,
    load_issuing=issuing_signer,
    load_root_certificate=root_certificate,
    presigned=S3PresignedSource(boto3.client("s3"), SETTINGS.public_bucket, lambda: datetime.now(UTC)),
    validity=timedelta(minutes=SETTINGS.validity_minutes),
)


def _body(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    if len(raw) > MAX_REQUEST_BYTES * 2:
        raise OcspRefusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "body too large")
    return base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("latin-1", "replace")


def _http(answer: OcspAnswer, method: str, now: datetime) -> dict[str, Any]:
    headers = {"Content-Type": OCSP_RESPONSE_TYPE}
    if answer.next_update is not None and answer.this_update is not None and method == "GET":
        max_age = max(0, int((answer.next_update - now).total_seconds()))
        headers |= {
            "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
            "Last-Modified": format_datetime(answer.this_update, usegmt=True),
            "Expires": format_datetime(answer.next_update, usegmt=True),
            "ETag": '"' + hashlib.sha256(answer.body).hexdigest()[:32] + '"',
        }
    else:
        headers["Cache-Control"] = "no-store"
    return {
        "statusCode": 200,
        "headers": headers,
        "body": base64.b64encode(answer.body).decode("ascii"),
        "isBase64Encoded": True,
    }


def respond(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Answer one function URL event; never raises."""
    method = str(event.get("requestContext", {}).get("http", {}).get("method", ""))
    path = str(event.get("rawPath", ""))
    tail = path[len(PATH_PREFIX) :] if path.startswith(PATH_PREFIX) else path
    try:
        answer = responder.answer(method, tail, _body(event) if method == "POST" else b"", now)
    except OcspRefusal as exc:
        answer = OcspAnswer(error_response(exc.status), exc.status.name)
        logger.info("OCSP request refused", extra={"ocsp_status": exc.status.name, "problem": exc.problem})
    except Exception:
        metrics.add_metric(name="OcspBackendFailures", unit=MetricUnit.Count, value=1)
        logger.exception("OCSP backend failure; answering tryLater")
        answer = OcspAnswer(error_response(ocsp.OCSPResponseStatus.TRY_LATER), "TRY_LATER")
    metrics.add_metric(
        name=f"OcspResponses{answer.cert_status or answer.status}".replace("_", ""), unit=MetricUnit.Count, value=1
    )
    return _http(answer, method, now)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return respond(event, datetime.now(UTC))
