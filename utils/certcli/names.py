"""Names in a request: subject alternative names (``--san``) and subject attributes."""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import Refused

try:  # IDNA 2008 (RFC 5891) and UTS 46; optional: without it non-ASCII DNS names are refused
    import idna
except ModuleNotFoundError:  # pragma: no cover - the tests run with idna installed
    idna = None  # type: ignore[assignment]

_SAN_TYPES = ("dns", "ip", "email", "uri")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class San:
    """One subject alternative name as the issue function's request spells it.

    Attributes:
        type: ``dns``, ``ip``, ``email`` or ``uri``.
        value: the name; for ``ip`` the canonical text of the address; for ``dns`` the
            A-label form (``xn--...``) of an internationalised name.
        unicode: the name as given when it was converted to A-labels, else None.
    """

    type: str
    value: str
    unicode: str | None = field(default=None, compare=False)

    def to_request(self) -> dict[str, str]:
        """The request form ``{"type": ..., "value": ...}``."""
        return {"type": self.type, "value": self.value}

    def to_general_name(self) -> x509.GeneralName:
        """The X.509 ``GeneralName`` (RFC 5280 section 4.2.1.6) for the CSR's SAN extension."""
        if self.type == "dns":
            return x509.DNSName(self.value)
        if self.type == "ip":
            return x509.IPAddress(ipaddress.ip_address(self.value))
        if self.type == "email":
            return x509.RFC822Name(self.value)
        return x509.UniformResourceIdentifier(self.value)


def _san_error(text: str, why: str) -> Refused:
    return Refused("InvalidSubjectAlternativeName", f"--san {text!r}: {why}")


def parse_san(text: str) -> San:
    """Parse a ``--san`` argument: ``dns:NAME``, ``ip:ADDRESS``, ``email:ADDRESS``, ``uri:URI``.

    A value without a known ``type:`` prefix is a DNS name. Only the shape is checked here
    (the issue function applies the CA's full name rules, e.g. wildcards and public
    suffixes): DNS names are LDH labels with an optional ``*.`` first label and no trailing dot
    (non-ASCII names become IDNA 2008 A-labels, see :func:`idna_dns_name`), IP addresses are IPv4 or IPv6, email
    addresses have one ``@`` with text on both sides, URIs have a scheme. Values are passed on
    as given, except IP addresses (canonical text) and IDNA conversion.

    Returns:
        The :class:`San`.

    Raises:
        Refused: code ``InvalidSubjectAlternativeName`` naming the argument and the reason.
    """
    san = _parse_san(text)
    try:
        san.to_general_name()
    except ValueError as exc:
        raise _san_error(text, str(exc)) from None
    return san


def _parse_san(text: str) -> San:
    raw = text.strip()
    prefix, sep, rest = raw.partition(":")
    if sep and prefix.lower() in _SAN_TYPES:
        san_type, value = prefix.lower(), rest.strip()
    else:
        san_type, value = "dns", raw
    if not value:
        raise _san_error(text, "empty value")
    if any(ch.isspace() for ch in value):
        raise _san_error(text, "contains white space")
    if not value.isprintable():
        raise _san_error(text, "contains control characters")
    if san_type in ("email", "uri", "ip") and not value.isascii():
        raise _san_error(text, "must be ASCII (write international domain names as IDNA A-labels, xn--...)")

    if san_type == "ip":
        if "%" in value:
            raise _san_error(text, "an IPv6 zone (%...) has no meaning in a certificate")
        try:
            return San("ip", str(ipaddress.ip_address(value)))
        except ValueError:
            raise _san_error(text, f"{value!r} is not an IPv4 or IPv6 address") from None
    if san_type == "email":
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain or "@" in local:
            raise _san_error(text, "an email address needs exactly one '@' with text on both sides")
        return San("email", value)
    if san_type == "uri":
        try:
            parts = urlsplit(value)
        except ValueError as exc:
            raise _san_error(text, f"not a URI ({exc})") from None
        if not parts.scheme or not (parts.netloc or parts.path):
            raise _san_error(text, "a URI needs a scheme, e.g. spiffe://example.org/service")
        return San("uri", value)

    if _is_ip_address(value):
        raise _san_error(text, f"looks like an IP address; write ip:{value}")
    if "@" in value:
        raise _san_error(text, f"looks like an email address; write email:{value}")
    if ":" in value:
        raise _san_error(text, "unknown SAN type; write dns:, ip:, email: or uri: before the value")
    name = _check_dns_name(text, value)
    return San("dns", name, value if name != value else None)


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_dns_name(text: str, value: str) -> str:
    """LDH labels, ``*`` allowed only as the whole first label; IDNA 2008 A-label form for non-ASCII."""
    name = idna_dns_name(text, value) if not value.isascii() else value
    if len(name) > 253:
        raise _san_error(text, "DNS names are at most 253 characters")
    labels = name.split(".")
    for i, label in enumerate(labels):
        if label == "*" and i == 0 and len(labels) > 1:
            continue
        if not _DNS_LABEL.match(label):
            shown = "an empty label (or a trailing dot)" if not label else f"label {label!r}"
            raise _san_error(text, f"{value!r} is not a DNS name: {shown}")
        if label[:4].lower() == "xn--":
            _check_a_label(text, label)
    return name


def idna_dns_name(text: str, value: str) -> str:
    """The IDNA 2008 A-label form of a non-ASCII DNS name (``straße.example.com`` ->
    ``xn--strae-oqa.example.com``), never a silent rewrite.

    The name must already be in the form IDNA 2008 registers (lowercase, NFC, no compatibility
    characters). A name that only UTS 46 mapping would make valid (uppercase ``Straße``, full-width
    letters, the IDNA 2003 ``ß`` -> ``ss``) is refused with the name it maps to, so the operator
    decides. Python's own ``idna`` codec (IDNA 2003) is not used: it turns ``ß`` into ``ss``.

    Raises:
        Refused: ``InvalidSubjectAlternativeName``: not a valid IDNA 2008 name, one UTS 46 would
            change, or the ``idna`` package is not installed.
    """
    if idna is None:
        raise _san_error(
            text,
            "is not ASCII: write it as IDNA A-labels (xn--...), or pip install idna to convert it",
        )
    wildcard, rest = ("*.", value[2:]) if value.startswith("*.") else ("", value)
    try:
        return wildcard + idna.encode(rest, uts46=False).decode("ascii")
    except idna.IDNAError as strict_error:
        try:
            mapped = idna.encode(rest, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            raise _san_error(text, f"not a valid internationalised domain name (IDNA 2008: {strict_error})") from None
        shown = wildcard + idna.decode(mapped)
        raise _san_error(
            text,
            f"not in IDNA 2008 form (case, width or Unicode normalisation); UTS 46 would map it to {shown!r} "
            f"({wildcard + mapped}): "
            "write that name if you mean it",
        ) from None


def _check_a_label(text: str, label: str) -> None:
    """An ``xn--`` label must decode to a valid IDNA 2008 U-label (not just look like one)."""
    if idna is None:
        return  # the CA checks the LDH shape; without idna the CLI cannot check more
    try:
        idna.decode(label.lower(), uts46=False)
    except (idna.IDNAError, UnicodeError):
        raise _san_error(text, f"label {label!r} is not a valid IDNA A-label") from None


def idn_notes(sans: Iterable[San]) -> list[str]:
    """One ``--san <as given> -> <A-label form>`` line per name converted to A-labels, for stderr."""
    return [f"--san dns:{san.unicode} -> {san.value}" for san in sans if san.unicode]


@dataclass(frozen=True)
class RequestedSubject:
    """The subject the operator asks for: written into the CSR (client, server, renewal), or sent as the
    issue function's ``subject`` (cloudfront-origin). RFC 5280 appendix A bounds apply.
    Unlike ``kmsca.models.SubjectFields`` (the function's optional overrides of a CSR's subject),
    the common name is required.

    Attributes:
        common_name: commonName; at most 64 characters.
        organization, organizational_unit, state, locality: optional, at most 64/64/128/128.
        country: optional two-letter ISO 3166 code.
        email_address: optional emailAddress attribute.
    """

    common_name: str
    organization: str | None = None
    organizational_unit: str | None = None
    country: str | None = None
    state: str | None = None
    locality: str | None = None
    email_address: str | None = None

    def to_request(self) -> dict[str, str]:
        """The issue function's ``subject`` object: the attributes that are set, by field name."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def to_name(self) -> x509.Name:
        """The X.509 subject name, most significant attribute first.

        Raises:
            Refused: code ``InvalidSubject`` when an attribute is empty, too long or malformed.
        """
        ordered = (
            (NameOID.COUNTRY_NAME, self.country, "--country"),
            (NameOID.STATE_OR_PROVINCE_NAME, self.state, "--state"),
            (NameOID.LOCALITY_NAME, self.locality, "--locality"),
            (NameOID.ORGANIZATION_NAME, self.organization, "--organization"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit, "--organizational-unit"),
            (NameOID.COMMON_NAME, self.common_name, "common name"),
            (NameOID.EMAIL_ADDRESS, self.email_address, "--email-address"),
        )
        attributes = []
        for oid, value, option in ordered:
            if value is None:
                continue
            if not value.strip():
                raise Refused("InvalidSubject", f"{option} is empty")
            try:
                attributes.append(x509.NameAttribute(oid, value))
            except ValueError as exc:
                raise Refused("InvalidSubject", f"{option} {value!r}: {exc}") from None
        return x509.Name(attributes)


def add_name_arguments(group: argparse._ArgumentGroup, *, common_name_help: str, lifetime_help: str) -> None:
    """COMMON_NAME / --common-name, repeatable --san and --lifetime-days, shared by the issuing CLIs."""
    group.add_argument("common_name", nargs="?", metavar="COMMON_NAME", help=common_name_help)
    group.add_argument("--common-name", "--cn", dest="common_name_option", metavar="CN", help="same as COMMON_NAME")
    group.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="TYPE:VALUE",
        help="subject alternative name, repeatable: dns:NAME, ip:ADDRESS, email:ADDRESS, uri:URI "
        "(a bare value is a DNS name)",
    )
    group.add_argument("--lifetime-days", type=int, metavar="DAYS", help=lifetime_help)


def add_subject_arguments(group: argparse._ArgumentGroup) -> None:
    """The subject attribute options other than the common name (``--organization`` and friends)."""
    group.add_argument("--organization", "-O", metavar="O", help="subject organizationName")
    group.add_argument("--organizational-unit", "--ou", metavar="OU", help="subject organizationalUnitName")
    group.add_argument("--country", "-C", metavar="CC", help="subject countryName (two letters)")
    group.add_argument("--state", metavar="ST", help="subject stateOrProvinceName")
    group.add_argument("--locality", "-L", metavar="L", help="subject localityName")
    group.add_argument(
        "--email-address", metavar="EMAIL", help="subject emailAddress attribute (prefer --san email:...)"
    )


def subject_from_args(args: argparse.Namespace, common_name: str) -> RequestedSubject:
    """The subject of the parsed options, checked.

    Raises:
        Refused: ``InvalidSubject`` for an empty, too long or malformed attribute.
    """
    subject = RequestedSubject(
        common_name=common_name,
        organization=args.organization,
        organizational_unit=args.organizational_unit,
        country=args.country,
        state=args.state,
        locality=args.locality,
        email_address=args.email_address,
    )
    subject.to_name()  # refuse a malformed attribute now
    return subject
