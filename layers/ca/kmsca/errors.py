"""One error hierarchy for the CA, and its translation to the wire.

Every refusal is a subclass of :class:`CaError`. The class name *is* the machine-readable
error code: the Lambda runtime puts the class name of the exception a handler raises in the
invoke response's ``errorType`` and ``str(exc)`` in ``errorMessage``, so the names below are part
of the public contract: never rename them.

The translation happens in one place, :func:`wire_errors`, the outermost decorator of every
handler: a :class:`CaError` goes out as itself; anything else (an AWS failure such as a
``ClientError`` or ``KMSInternalException``, a bug) goes out as :class:`InternalError`, whose
message says to retry. Every message ends with the Lambda request id, and the exception raised is
a fresh one, without the cause, context or frames of the original (those go to the log only).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar


class CaError(Exception):
    """Base class of all CA refusals.

    Attributes:
        code: the error code sent to clients (the class name).
        message: one sentence a person understands; never contains secrets or keys.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__


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


class InternalError(CaError):
    """An infrastructure failure (AWS throttling or outage, an unexpected fault). Retry with backoff
    (with the same ``idempotency_key`` for an issue request)."""


class ConfigurationError(Exception):
    """A required setting is missing or invalid; raised at cold start, names the setting."""


def to_wire(exc: BaseException, request_id: str) -> CaError:
    """The exception a caller receives for ``exc``: a new one, with no traceback, cause or context.

    A :class:`CaError` keeps its class (the code) and message; anything else becomes
    :class:`InternalError`. The message ends with ``(request id <id>)``.
    """
    suffix = f" (request id {request_id})"
    if isinstance(exc, CaError):
        wire: CaError = type(exc).__new__(type(exc))
        CaError.__init__(wire, exc.message + suffix)
    else:
        wire = InternalError(f"an internal error occurred (an AWS service failed or was throttled); retry{suffix}")
    wire.__suppress_context__ = True
    return wire


Handler = TypeVar("Handler", bound=Callable[..., Any])


def wire_errors(logger: Any = None) -> Callable[[Handler], Handler]:
    """Decorate a Lambda handler (outermost) so that it raises only :func:`to_wire` exceptions.

    Infrastructure failures are logged with their stack trace (``logger.exception``); callers see
    ``InternalError`` and the request id, never a stack of the CA's code.
    """
    log = logger if logger is not None else logging.getLogger(__name__)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            request_id = str(getattr(context, "aws_request_id", "") or "unknown")
            try:
                return handler(event, context)
            except CaError as exc:
                wire = to_wire(exc, request_id)
            except Exception as exc:  # every infrastructure failure: retryable, logged, not shown
                log.exception("internal error", extra={"error_type": type(exc).__name__})
                wire = to_wire(exc, request_id)
            raise wire  # outside the except block: no __context__, one frame (this line)

        return wrapper  # type: ignore[return-value]

    return decorate
