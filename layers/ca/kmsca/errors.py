"""One error hierarchy for the CA.

Every refusal is a subclass of :class:`CaError`. The class name *is* the machine-readable
error code: a Lambda handler lets the exception propagate, and the Lambda runtime puts the
class name in the invoke response's ``errorType`` and ``str(exc)`` in ``errorMessage``.
So the wire translation happens in exactly one place (the runtime), and the names below are
part of the public contract: never rename them.
"""

from __future__ import annotations


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


class ConfigurationError(Exception):
    """A required setting is missing or invalid; raised at cold start, names the setting."""
