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
from typing import Any, Protocol, TypeVar


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


class NotAuthorized(CaError):
    """The verified caller's issuance policy does not allow the request (a profile, a name, an IP
    address, a lifetime, or a revocation outside its rule), or no rule names the caller. The
    message names the rule (``rule``) and what failed (``reason``). Nothing was signed or stored.

    Attributes:
        rule: the name of the policy rule that decided, or ``(none)`` when no rule names the caller.
        reason: what the rule does not allow.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"not authorized by issuance policy rule {rule!r}: {reason}")
        self.rule = rule
        self.reason = reason


class InvalidIssuancePolicy(CaError):
    """The issuance policy document is not valid (unknown key, bad pattern, wrong type), or the
    stored one cannot be read: then every function-URL request is refused (fail closed) until an
    administrator stores a valid one (utils/issuance-policy.py)."""


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
                log.exception("internal error", extra={"error_type": type(exc).__name__})
                wire = to_wire(exc, request_id)
            if answers and responder is not None:
                return responder.refused(wire)
            raise wire  # outside the except block: no __context__, one frame (this line)

        return wrapper  # type: ignore[return-value]

    return decorate
