"""Wire models: the issue request, parsed once at the handler boundary.

Parsing is strict: no type coercion ("30" is not 30, true is not 1), unknown fields are refused,
and every failure becomes the domain error of the field it concerns, so a client gets the
documented code (``InvalidCsr`` for a bad ``csr``, ``InvalidLifetime`` for a bad
``lifetime_days``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from .errors import (
    CaError,
    InvalidCsr,
    InvalidLifetime,
    InvalidRequest,
    InvalidSubject,
    InvalidSubjectAlternativeName,
    InvalidTarget,
    KeyPolicyViolation,
    UnknownProfile,
)
from .names import SanEntry

MAX_CSR_BYTES = 32 * 1024
MAX_IDEMPOTENCY_KEY = 128


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SubjectFields(_Strict):
    """Subject attributes that override the CSR's (RFC 5280 names in comments)."""

    common_name: StrictStr | None = None  # commonName
    organization: StrictStr | None = None  # organizationName
    organizational_unit: StrictStr | None = None  # organizationalUnitName
    country: StrictStr | None = None  # countryName, two letters
    state: StrictStr | None = None  # stateOrProvinceName
    locality: StrictStr | None = None  # localityName
    email_address: StrictStr | None = None  # emailAddress (PKCS #9)

    def overrides(self) -> dict[str, str]:
        """The fields that were given, as ``{field: value}``."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SanModel(_Strict):
    type: StrictStr
    value: StrictStr = Field(max_length=2048)


class IssueRequest(_Strict):
    """The issue function's request.

    Attributes:
        csr: PEM text of a PKCS#10 CSR, at most 32 KiB; required except for profiles whose key
            the CA generates (``cloudfront-origin``), which refuse one.
        profile: certificate profile name, default ``client``.
        key_type: for ``cloudfront-origin`` only: ``ec-p256`` or ``rsa-2048``, of the issuing CA's
            algorithm; by default the one that matches it (``ec-p256`` under EC, ``rsa-2048`` under RSA).
        subject: attributes overriding the CSR's subject.
        sans: SANs; when absent, the CSR's SAN extension is used.
        lifetime_days: validity in days; when absent, the configured default.
        idempotency_key: 1-128 printable ASCII characters; a retry with the same key and request
            returns the same certificate.
        requested_by: 1-256 printable ASCII characters stored with the certificate, for a direct
            Invoke only (administrators; a label, not a verified identity: direct Invoke does not
            tell the function who called). Through the function URL the CA records the verified
            caller's ARN and refuses this field (``InvalidRequest``).
        renews: serial number (hex, any case, colons allowed) of an ``issued`` certificate of the
            same profile that this one renews: the new certificate takes its subject and SANs
            (``subject`` and ``sans`` are refused) and is linked to it.
        revoke_renewed_after_hours: with ``renews``, revoke the renewed certificate as
            ``superseded`` this many hours (0-8760) after the renewal; absent: never.
        target: for ``cloudfront-origin`` only: the edge target (workload account) whose ACM
            us-east-1 receives the certificate; absent: ``local`` (the CA stack's own account).
    """

    csr: StrictStr | None = Field(default=None, max_length=MAX_CSR_BYTES)
    profile: StrictStr = "client"
    key_type: StrictStr | None = Field(default=None, max_length=32)
    subject: SubjectFields | None = None
    sans: list[SanModel] | None = None
    lifetime_days: StrictInt | None = None
    idempotency_key: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=r"^[\x21-\x7e]+$"
    )

    requested_by: StrictStr | None = Field(default=None, min_length=1, max_length=256, pattern=r"^[\x20-\x7e]+$")
    renews: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    revoke_renewed_after_hours: StrictInt | None = Field(default=None, ge=0, le=8760)
    target: StrictStr | None = Field(default=None, min_length=1, max_length=63)

    def san_entries(self) -> list[SanEntry] | None:
        """The requested SANs as domain values, or None when the request has no ``sans``."""
        return None if self.sans is None else [SanEntry(s.type, s.value) for s in self.sans]


_FIELD_ERRORS: dict[str, type[CaError]] = {
    "csr": InvalidCsr,
    "profile": UnknownProfile,
    "subject": InvalidSubject,
    "sans": InvalidSubjectAlternativeName,
    "lifetime_days": InvalidLifetime,
    "key_type": KeyPolicyViolation,
    "target": InvalidTarget,
}


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "request"
    if error["type"] == "missing":
        return f"{location} is required"
    if error["type"] == "extra_forbidden":
        return f"{location} is not a field of this request"
    if error["type"] == "string_too_long" and error["loc"][:1] == ("csr",):
        return f"csr is larger than {MAX_CSR_BYTES} bytes"
    return f"{location}: {error['msg']}"


def parse_request(model: type[_Strict], event: object) -> Any:
    """Validate a raw Lambda event against ``model``.

    Raises:
        InvalidRequest: the event is not a JSON object, or has an unknown field.
        CaError subclass: the first invalid field's error (see ``_FIELD_ERRORS``).
    """
    if not isinstance(event, dict):
        raise InvalidRequest("the request must be a JSON object")
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        top_level_extra = first["type"] == "extra_forbidden" and len(first["loc"]) == 1
        error_class = InvalidRequest if top_level_extra else _FIELD_ERRORS.get(field, InvalidRequest)
        if field == "csr" and first["type"] == "string_type":
            raise InvalidCsr("csr is required and must be the PEM text of a PKCS#10 request") from None
        raise error_class(_describe(first)) from None


class ShowRequest(_Strict):
    """``{"operation": "show", "serial_number": hex (any case, colons allowed)}``."""

    operation: StrictStr
    serial_number: StrictStr = Field(min_length=1, max_length=64)


class ListRequest(_Strict):
    """``{"operation": "list", ...}``: the filters of :class:`kmsca.inventory.ListQuery`; times
    ISO 8601 with an offset; ``page_size`` 1-100 (default 50)."""

    operation: StrictStr
    ca: StrictStr = Field(default="issuing", max_length=32)
    status: Literal["issued", "revoked"] | None = None
    profile: StrictStr | None = Field(default=None, max_length=64)
    name_contains: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    requested_by: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    expiring_before: StrictStr | None = Field(default=None, max_length=40)
    expiring_after: StrictStr | None = Field(default=None, max_length=40)
    acm_certificate_arn: StrictStr | None = Field(default=None, max_length=2048)
    page_size: StrictInt = Field(default=50, ge=1, le=100)
    next_token: StrictStr | None = Field(default=None, max_length=2048)

    def query(self) -> Any:
        """The :class:`kmsca.inventory.ListQuery` (times parsed).

        Raises:
            InvalidRequest: a time that is not ISO 8601 with an offset, or outside 1950-9999.
        """
        from .inventory import ListQuery
        from .records import parse_iso

        times: dict[str, Any] = {}
        for name in ("expiring_before", "expiring_after"):
            text = getattr(self, name)
            try:
                times[name] = parse_iso(text) if text is not None else None
            except ValueError as exc:
                raise InvalidRequest(f"{name}: {exc}") from None
        values = self.model_dump(exclude={"operation", "expiring_before", "expiring_after"})
        return ListQuery(**values, **times)


def parse_inventory_request(event: object) -> ShowRequest | ListRequest:
    """The inventory function's request: ``operation`` ``list`` or ``show``.

    Raises:
        InvalidRequest: not a JSON object, an unknown ``operation`` or field, a bad value.
    """
    operation = event.get("operation") if isinstance(event, dict) else None
    models: dict[str, type[_Strict]] = {"show": ShowRequest, "list": ListRequest}
    if operation not in models:
        raise InvalidRequest('operation must be "list" or "show"')
    try:
        return models[str(operation)].model_validate(event)  # type: ignore[return-value]
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc.errors()[0])) from None
