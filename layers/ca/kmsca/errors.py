"""One error hierarchy for the CA, and its translation to the wire.

Every error the CA raises is a :class:`KmscaError`, with structured fields: ``code`` (the class
name), ``message`` (one sentence a person understands) and ``details`` (the values that explain
it: limits, serial numbers, names of settings; never secrets or keys). Two branches:

- :class:`CaError`: a refusal of the caller's request (a bad input, a state that forbids it). The
  class name *is* the machine-readable error code on the wire: the Lambda runtime puts the class
  name of the exception a handler raises in the invoke response's ``errorType`` and ``str(exc)``
  in ``errorMessage``, so the names below are part of the public contract: never rename them.
- :class:`InternalFailure`: a failure the CA detects that is not the caller's (a concurrent
  writer, an inconsistent record, an unusable key, a missing setting). Callers never see these by
  name: on the wire they are :class:`InternalError`, like an AWS failure.

The translation happens in one place, :func:`wire_errors`, the outermost decorator of every
handler: a :class:`CaError` goes out as itself; anything else (an :class:`InternalFailure`, an
AWS failure such as a ``ClientError`` or ``KMSInternalException``, a bug) goes out as
:class:`InternalError`, whose message says to retry. Every message ends with the Lambda request
id, and the exception raised is a fresh one, without the cause, context or frames of the original
(those go to the log only, with the error's ``details``).

AWS errors (botocore's ``ClientError`` and ``BotoCoreError``) belong to the adapters (the modules
that wrap one AWS API: the store, ACM, KMS, S3, SNS, STS, KeyValueStore modules; the allow-list is
``tests/unit/test_adapter_imports.py``). They translate the ones that mean something (a failed
condition, a missing ARN) into the errors below, and every other one into :class:`AwsCallFailed`
(:mod:`kmsca.aws_errors`); domain modules catch those and never import botocore.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, TypeVar


class KmscaError(Exception):
    """Base class of every error the CA raises.

    Args:
        message: one sentence a person understands; never contains secrets or keys.
        **details: the values that explain the error (JSON-serialisable: str, int, bool, None, or
            lists of them), e.g. ``LifetimeExceeded(..., lifetime_days=400, max_lifetime_days=365)``.

    Attributes:
        code: the error code (the class name).
        message: as given.
        details: read-only mapping of the values given.
    """

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, object] = MappingProxyType(dict(details))

    @property
    def code(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, object]:
        """``{"code", "message", "details"}``, for logs and reports."""
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


class CaError(KmscaError):
    """Base class of all CA refusals: the caller sees the code (class name) and the message."""


class InternalFailure(KmscaError):
    """Base class of the failures the CA detects that are not the caller's fault; on the wire they
    are :class:`InternalError` (retryable), in the logs they keep their code and details."""


class InvalidRequest(CaError):
    """The request is not a JSON object of the documented shape (wrong type, unknown field)."""


class InvalidCsr(CaError):
    """``csr`` is missing, not PEM text of a PKCS#10 request, too large, or its signature is invalid."""


class KeyPolicyViolation(CaError):
    """The subject public key is of a type or size the CA does not certify."""


class InvalidSubject(CaError):
    """A subject attribute is unsupported, empty, too long or malformed (RFC 5280 appendix A bounds)."""


class InvalidSubjectAlternativeName(CaError):
    """A SAN entry is malformed or not allowed (RFC 5280 section 4.2.1.6)."""


class InvalidLifetime(CaError):
    """``lifetime_days`` is not a positive integer."""


class LifetimeExceeded(CaError):
    """``lifetime_days`` is above the configured maximum or the certificate would outlive its issuer."""


class UnknownProfile(CaError):
    """``profile`` names no certificate profile of this CA."""


class IdempotencyKeyReused(CaError):
    """An ``idempotency_key`` was used before with a different request."""


class CaNotReady(CaError):
    """The CA hierarchy has not been bootstrapped, or its records do not match its KMS keys."""


class SerialNumberCollision(CaError):
    """The random serial number is already recorded (should never happen; nothing was issued)."""


class CertificateNotFound(CaError):
    """No certificate with that serial number was issued by this CA."""


class InvalidRevocationReason(CaError):
    """``reason`` is not an RFC 5280 CRLReason this CA accepts for an end entity (section 5.3.1)."""


class RenewalRefused(CaError):
    """A renewal cannot proceed: the certificate to renew is unknown, revoked, expired, already
    renewed, of another profile than requested, or of a profile the CA renews itself
    (``cloudfront-origin``: ACM rotation). Nothing was issued."""


class InvalidTarget(CaError):
    """An edge target's registration is malformed: a name not ``^[a-z0-9][a-z0-9-]{0,62}$``, an
    account id not 12 digits, a role or KeyValueStore ARN that is malformed or of another account,
    a role the CA's functions may not assume (not ``<project>-<environment>-edge-*``), an external id
    not 16-1224 characters of ``[\\w+=,.@:/-]``. Nothing was written."""


class TargetNotFound(CaError):
    """No edge target is registered under that name (``target`` of a request, ``deregister``)."""


class TargetAlreadyRegistered(CaError):
    """An edge target with that name is registered already; deregister it first (nothing was written)."""


class EdgeRoleRefused(CaError):
    """The target's edge role refused the CA's ``sts:AssumeRole`` with the registered external id
    (wrong external id, or a trust policy that does not name this CA function's role)."""


class EdgeRoleUnsafe(CaError):
    """The target's edge role can be assumed WITHOUT the external id: any principal its trust policy
    names could make the CA act on it (a confused deputy). Nothing was written; add the
    ``sts:ExternalId`` condition to the role's trust policy (the edge template does)."""


class EdgeTargetUnavailable(CaError):
    """A call to an edge target (through its role) failed: its KeyValueStore, ACM or trust store is
    missing, not allowed to the role, throttled or down. The message names the target and the AWS
    error code; retry later or fix the edge stack."""
class NotAuthorized(CaError):
    """The verified caller's issuance policy does not allow the request (a profile, a name, an IP
    address, a lifetime, or a revocation outside its rule), or no rule names the caller. The
    message names the rule (``rule``) and what failed (``reason``). Nothing was signed or stored.

    Attributes:
        rule: the name of the policy rule that decided, or ``(none)`` when no rule names the caller.
        reason: what the rule does not allow.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"not authorized by issuance policy rule {rule!r}: {reason}", rule=rule, reason=reason)
        self.rule = rule
        self.reason = reason


class InvalidIssuancePolicy(CaError):
    """The issuance policy document is not valid (unknown key, bad pattern, wrong type), or the
    stored one cannot be read: then every function-URL request is refused (fail closed) until an
    administrator stores a valid one (utils/issuance-policy.py)."""


class PolicyRevisionConflict(CaError):
    """The stored issuance policy changed since it was read (another administrator wrote it): read
    it again, merge the change, write again. Nothing was written."""


class InternalError(CaError):
    """An infrastructure failure (AWS throttling or outage, an unexpected fault). Retry with backoff
    (with the same ``idempotency_key`` for an issue request)."""


class IdempotencyKeyInProgress(CaError):
    """Another request with the same ``idempotency_key`` is being processed and has not stored its
    result yet. Retryable: send the same request again (it then returns that certificate)."""


class ConfigurationError(InternalFailure):
    """A required setting is missing or invalid; raised at cold start, names the setting."""


class UnsupportedCaKey(InternalFailure):
    """The KMS key is not a signing key, or of a key spec a CA cannot sign with (the CA loader turns
    it into :class:`CaNotReady` for callers)."""


class InventoryInconsistent(InternalFailure):
    """Two records of the inventory disagree (e.g. an ACM index entry without its certificate)."""


class IdempotencyKeyInUse(InternalFailure):
    """Another request stored a result for the same idempotency key first (within its window); the
    issuer answers with that request's certificate."""


class WriteConflict(InternalFailure):
    """DynamoDB cancelled a transaction because another one was writing the same item
    (``TransactionConflict``): nothing was written; retrying is safe."""


class PendingImportGone(InternalFailure):
    """The certificate is no longer pending its ACM import (another run finished or failed it)."""


class AcmCertificateGone(InternalFailure):
    """The ACM ARN does not exist any more (deleted outside this CA)."""


class TrustStoreOcspUnavailable(InternalFailure):
    """OCSP checking was asked for the trust store, but a CA certificate of the chain has no AIA
    OCSP URL (CloudFront would refuse every client chain through it)."""


class PublicationConflict(InternalFailure):
    """An S3 object kept changing under a conditional write (``If-Match`` / ``If-None-Match``
    refused every attempt): nothing was overwritten; the next publication repairs it.

    Details: ``key`` (the S3 object key), ``attempts``."""


class AwsCallFailed(InternalFailure):
    """An AWS call failed: what an adapter raises for a botocore ``ClientError`` or ``BotoCoreError``
    that means nothing more precise (throttling, an outage, a refusal the CA did not expect). Made by
    :func:`kmsca.aws_errors.aws_call_failed`; the botocore exception is its ``__cause__``.

    Args:
        message: the botocore exception's text (``str(exc)``: AWS's code and message; no secrets).
        service: the boto3 service name (``dynamodb``, ``kms``, ``acm``, ...).
        operation: the API operation (``PutItem``, ``Sign``, ...), or "" when unknown.
        error_code: the AWS error code (``ThrottlingException``); for a failure without a response
            (``BotoCoreError``: timeout, connection error) the botocore class name.
        error_type: the botocore class name (``ClientError``, ``EndpointConnectionError``, ...):
            what reports name the failure by (:func:`error_name`).
        http_status_code: the HTTP status of AWS's answer, None when it has none.
        answered: AWS answered (a ``ClientError``); False for a failure without an answer
            (``BotoCoreError``: the call may or may not have been applied).

    Attributes:
        the arguments, also in ``details`` (but ``message``).
    """

    def __init__(
        self,
        message: str,
        *,
        service: str,
        operation: str,
        error_code: str,
        error_type: str,
        http_status_code: int | None = None,
        answered: bool = True,
    ) -> None:
        super().__init__(
            message,
            service=service,
            operation=operation,
            error_code=error_code,
            error_type=error_type,
            http_status_code=http_status_code,
            answered=answered,
        )
        self.service = service
        self.operation = operation
        self.error_code = error_code
        self.error_type = error_type
        self.http_status_code = http_status_code
        self.answered = answered


def error_name(exc: BaseException) -> str:
    """The name a report (rotation failures, notifications, logs) gives ``exc``: for an
    :class:`AwsCallFailed` the botocore class name it translates (``ClientError``, ...), else the
    exception's class name."""
    return exc.error_type if isinstance(exc, AwsCallFailed) else type(exc).__name__


def to_wire(exc: BaseException, request_id: str) -> CaError:
    """The exception a caller receives for ``exc``: a new one, with no traceback, cause or context.

    A :class:`CaError` keeps its class (the code) and message; anything else becomes
    :class:`InternalError`. The message ends with ``(request id <id>)``.
    """
    suffix = f" (request id {request_id})"
    if isinstance(exc, CaError):
        wire: CaError = type(exc).__new__(type(exc))
        KmscaError.__init__(wire, exc.message + suffix, **exc.details)
    else:
        wire = InternalError(f"an internal error occurred (an AWS service failed or was throttled); retry{suffix}")
    wire.__suppress_context__ = True
    return wire


Handler = TypeVar("Handler", bound=Callable[..., Any])


class Responder(Protocol):
    """Another wire for some events (a function URL's HTTP answers: :mod:`kmsca.function_url`)."""

    def applies(self, event: Any) -> bool:
        """Whether ``event`` is answered by this responder."""

    def ok(self, result: Any) -> Any:
        """The answer for a handler's result."""

    def refused(self, wire: CaError) -> Any:
        """The answer for a refusal (already made by :func:`to_wire`)."""


def wire_errors(logger: Any = None, responder: Responder | None = None) -> Callable[[Handler], Handler]:
    """Decorate a Lambda handler (outermost) so that it raises only :func:`to_wire` exceptions.

    Infrastructure failures are logged with their stack trace (``logger.exception``); callers see
    ``InternalError`` and the request id, never a stack of the CA's code. With a ``responder``, an
    event it applies to gets the responder's answers instead (returned, not raised).
    """
    log = logger if logger is not None else logging.getLogger(__name__)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            request_id = str(getattr(context, "aws_request_id", "") or "unknown")
            answers = responder is not None and responder.applies(event)
            try:
                result = handler(event, context)
                return responder.ok(result) if answers and responder is not None else result
            except CaError as exc:
                wire = to_wire(exc, request_id)
            except Exception as exc:  # every infrastructure failure: retryable, logged, not shown
                extra: dict[str, object] = {"error_type": error_name(exc)}
                if isinstance(exc, KmscaError):
                    extra["error_details"] = dict(exc.details)
                log.exception("internal error", extra=extra)
                wire = to_wire(exc, request_id)
            if answers and responder is not None:
                return responder.refused(wire)
            raise wire  # outside the except block: no __context__, one frame (this line)

        return wrapper  # type: ignore[return-value]

    return decorate
