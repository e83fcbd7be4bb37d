"""Subject and subject-alternative-name rules.

Every name that goes into a certificate passes through here. Nothing is coerced or dropped: a
value that does not conform is refused with :class:`InvalidSubject` or
:class:`InvalidSubjectAlternativeName` and a sentence saying why.

Sources: RFC 5280 section 4.1.2.6 (subject), 4.2.1.6 (subjectAltName) and appendix A
(upper bounds); RFC 1034/1123 (host name syntax); the Public Suffix List for wildcards.

Rules that hold for every name:

- patterns match the whole value (``re.fullmatch``; never ``$``, which also matches before a final
  newline);
- one character policy (:func:`check_characters`): no C0 or C1 control characters, no line or
  paragraph separators, no bidirectional embeddings, overrides, isolates or marks (U+061C,
  U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), no surrogates, no unassigned code points;
- one length rule: characters (not UTF-8 bytes), RFC 5280 appendix A upper bounds, the same for a
  value from the CSR and a value from the request;
- the CA encodes every subject attribute itself (RFC 5280 4.1.2.4, 4.1.2.6): countryName and
  serialNumber as PrintableString when the value fits it (else UTF8String), emailAddress and
  domainComponent as IA5String, everything else as UTF8String. Nothing of the CSR's string types
  is copied.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .errors import InvalidSubject, InvalidSubjectAlternativeName

# Request field -> (OID, upper bound in characters from RFC 5280 appendix A).
SUBJECT_FIELDS: dict[str, tuple[ObjectIdentifier, int]] = {
    "country": (NameOID.COUNTRY_NAME, 2),
    "state": (NameOID.STATE_OR_PROVINCE_NAME, 128),
    "locality": (NameOID.LOCALITY_NAME, 128),
    "organization": (NameOID.ORGANIZATION_NAME, 64),
    "organizational_unit": (NameOID.ORGANIZATIONAL_UNIT_NAME, 64),
    "common_name": (NameOID.COMMON_NAME, 64),
    "email_address": (NameOID.EMAIL_ADDRESS, 255),
}
# Attributes a CSR's subject may carry, with their bounds, in the order the subject is written.
_CSR_SUBJECT_ORDER: list[tuple[ObjectIdentifier, int]] = [
    (NameOID.DOMAIN_COMPONENT, 63),
    *SUBJECT_FIELDS.values(),
    (NameOID.SERIAL_NUMBER, 64),
]
_ALLOWED_OIDS = {oid: bound for oid, bound in _CSR_SUBJECT_ORDER}
_RANK = {oid: i for i, (oid, _) in enumerate(_CSR_SUBJECT_ORDER)}

MAX_SANS = 100
SAN_TYPES = ("dns", "ip", "email", "uri")
# Matched with fullmatch only.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")  # PrintableString (X.680 41.4)
# Bidirectional formatting characters (Unicode UAX #9): marks, embeddings, overrides, isolates.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Unicode general categories refused anywhere in a name: controls (C0, DEL, C1), surrogates,
# unassigned code points, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Cn", "Zl", "Zp"})


def check_characters(value: str) -> str | None:
    """The character policy for every name: None when ``value`` complies, else why not."""
    for char in value:
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or char in _BIDI:
            kind = "a bidirectional formatting character" if char in _BIDI else {
                "Cc": "a control character",
                "Cs": "a surrogate",
                "Cn": "an unassigned code point",
            }.get(category, "a line or paragraph separator")
            return f"contains {kind} (U+{ord(char):04X})"
    return None


@lru_cache(maxsize=1)
def _public_suffix_list():  # type: ignore[no-untyped-def]
    # Loaded on first use (it costs a few ms), then kept for the warm container.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@dataclass(frozen=True)
class SanEntry:
    """One requested SAN: ``type`` is dns, ip, email or uri; ``value`` its text."""

    type: str
    value: str


def _oid_name(oid: ObjectIdentifier) -> str:
    return getattr(oid, "_name", None) or oid.dotted_string


def _check_attribute_value(oid: ObjectIdentifier, value: str) -> None:
    name = _oid_name(oid)
    bound = _ALLOWED_OIDS[oid]
    problem = check_characters(value)
    if problem:
        raise InvalidSubject(f"subject {name} {problem}")
    if not value or value != value.strip():
        raise InvalidSubject(f"subject {name} must be non-empty and have no leading or trailing spaces")
    if len(value) > bound:
        raise InvalidSubject(
            f"subject {name} is longer than {bound} characters (RFC 5280 appendix A)", attribute=name, max_length=bound
        )
    if oid == NameOID.COUNTRY_NAME and not re.fullmatch(r"[A-Z]{2}", value):
        raise InvalidSubject(f"subject countryName {value!r} is not a two-letter ISO 3166 code such as 'DE'")
    if oid == NameOID.EMAIL_ADDRESS:
        try:
            validate_email(value)
        except InvalidSubjectAlternativeName as exc:
            raise InvalidSubject(f"subject emailAddress: {exc.message}") from None
    if oid == NameOID.DOMAIN_COMPONENT and not _LABEL.fullmatch(value):
        raise InvalidSubject(f"subject domainComponent {value!r} is not a DNS label")


def build_subject(csr_subject: x509.Name, overrides: Mapping[str, str]) -> x509.Name:
    """The certificate subject: the CSR's subject with request fields replacing attributes.

    Args:
        csr_subject: the subject of the CSR.
        overrides: request fields (keys of :data:`SUBJECT_FIELDS`) to set; each replaces every
            attribute of its type in the CSR subject.

    Returns:
        The subject, attributes in the order DC, C, ST, L, O, OU, CN, emailAddress, serialNumber
        (same-type attributes keep their relative order), one attribute per RDN.

    Raises:
        InvalidSubject: an attribute type outside that list, a multi-valued RDN, or a value that
            is empty, too long, or malformed.
    """
    attributes: list[x509.NameAttribute] = []
    for rdn in csr_subject.rdns:
        if len(rdn) != 1:
            raise InvalidSubject("multi-valued RDNs in the CSR subject are not supported")
        (attribute,) = list(rdn)
        if attribute.oid not in _ALLOWED_OIDS:
            raise InvalidSubject(
                f"subject attribute {_oid_name(attribute.oid)} is not supported; allowed: "
                + ", ".join(_oid_name(oid) for oid, _ in _CSR_SUBJECT_ORDER)
            )
        if not isinstance(attribute.value, str):
            raise InvalidSubject(f"subject attribute {_oid_name(attribute.oid)} is not a string")
        attributes.append(make_attribute(attribute.oid, attribute.value))  # re-encoded, checked
    for field, value in overrides.items():
        oid, _ = SUBJECT_FIELDS[field]
        attributes = [a for a in attributes if a.oid != oid]
        attributes.append(make_attribute(oid, value))
    attributes.sort(key=lambda a: _RANK[a.oid])
    return x509.Name(attributes)


def string_type(oid: ObjectIdentifier, value: str) -> _ASN1Type:
    """The ASN.1 string type the CA writes an attribute in (RFC 5280 4.1.2.4, 4.1.2.6, appendix A):
    PrintableString for countryName and serialNumber when the value fits it, IA5String for
    emailAddress and domainComponent, UTF8String for everything else."""
    if oid in (NameOID.COUNTRY_NAME, NameOID.SERIAL_NUMBER) and _PRINTABLE.fullmatch(value):
        return _ASN1Type.PrintableString
    if oid in (NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT):
        return _ASN1Type.IA5String
    return _ASN1Type.UTF8String


def make_attribute(oid: ObjectIdentifier, value: str) -> x509.NameAttribute:
    """One checked subject attribute in the CA's encoding (:func:`string_type`), whatever path the
    value came by (the CSR or the request): one character policy, one length rule (characters).

    Raises:
        InvalidSubject: see :func:`build_subject`.
    """
    _check_attribute_value(oid, value)
    # Lengths were checked in characters above (X.680: the SIZE of a character string type counts
    # characters); cryptography's own check counts UTF-8 bytes for commonName, so it is not repeated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x509.NameAttribute(oid, value, string_type(oid, value), _validate=False)


def validate_dns_name(value: str, *, allow_wildcard: bool = True) -> str:
    """Check a DNS name for a dNSName SAN (RFC 5280 4.2.1.6, RFC 1123 host names).

    Labels are letters, digits and hyphens (internationalised names as A-labels, ``xn--``);
    at most 63 characters a label and 253 in all; no trailing dot. A wildcard is allowed only as
    the whole left-most label, never more than one, and never directly above a public suffix
    (``*.com``, ``*.co.uk``, and any single-label name such as ``*.internal`` are refused).

    Returns:
        The name, unchanged.

    Raises:
        InvalidSubjectAlternativeName: the name breaks one of these rules.
    """
    if not value or len(value) > 253:
        raise InvalidSubjectAlternativeName(f"DNS name {value[:64]!r} must be 1 to 253 characters")
    if not value.isascii():
        raise InvalidSubjectAlternativeName(
            f"DNS name {value[:64]!r} is not ASCII; write internationalised names as A-labels (xn--...)"
        )
    labels = value.split(".")
    wildcard = labels[0] == "*"
    if wildcard:
        if not allow_wildcard:
            raise InvalidSubjectAlternativeName(f"a wildcard is not allowed in {value!r}")
        labels = labels[1:]
        if not labels:
            raise InvalidSubjectAlternativeName("a lone '*' is not a DNS name")
    for label in labels:
        if "*" in label:
            raise InvalidSubjectAlternativeName(
                f"DNS name {value!r}: a wildcard may only be the whole left-most label"
            )
        if not _LABEL.fullmatch(label):
            raise InvalidSubjectAlternativeName(
                f"DNS name {value!r}: label {label!r} is not 1-63 letters, digits or inner hyphens"
            )
    if wildcard:
        base = ".".join(labels).lower()
        if len(labels) < 2 or _public_suffix_list().is_public(base):
            raise InvalidSubjectAlternativeName(
                f"wildcard {value!r} is directly above the public suffix {base!r}; name a domain under it"
            )
    return value


def validate_email(value: str) -> str:
    """Check an rfc822Name (``local@domain``; ASCII; domain per :func:`validate_dns_name`, no wildcard).

    Raises:
        InvalidSubjectAlternativeName: malformed.
    """
    if value.count("@") != 1:
        raise InvalidSubjectAlternativeName(f"email {value[:64]!r} must be local@domain")
    local, domain = value.split("@")
    if not _EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidSubjectAlternativeName(f"email {value[:64]!r} has an invalid local part")
    try:
        validate_dns_name(domain, allow_wildcard=False)
    except InvalidSubjectAlternativeName as exc:
        raise InvalidSubjectAlternativeName(f"email {value[:64]!r}: {exc.message}") from None
    return value


def validate_uri(value: str) -> str:
    """Check a uniformResourceIdentifier (RFC 5280 4.2.1.6: scheme and scheme-specific part;
    a URI with an authority names a host, a DNS name or an IP address). ASCII, no spaces.

    Raises:
        InvalidSubjectAlternativeName: malformed.
    """
    if not value or len(value) > 2048 or not value.isascii() or _CONTROL.search(value) or " " in value:
        raise InvalidSubjectAlternativeName(f"URI {value[:64]!r} must be 1-2048 ASCII characters, no spaces")
    scheme, sep, rest = value.partition(":")
    if not sep or not _URI_SCHEME.fullmatch(scheme) or not rest:
        raise InvalidSubjectAlternativeName(f"URI {value[:64]!r} needs a scheme and a scheme-specific part")
    if rest.startswith("//"):
        try:
            host = urlsplit(value).hostname
        except ValueError as exc:
            raise InvalidSubjectAlternativeName(f"URI {value[:64]!r}: {exc}") from None
        if not host:
            raise InvalidSubjectAlternativeName(f"URI {value[:64]!r} has an authority without a host")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            try:
                validate_dns_name(host, allow_wildcard=False)
            except InvalidSubjectAlternativeName as exc:
                raise InvalidSubjectAlternativeName(f"URI {value[:64]!r}: {exc.message}") from None
    return value


def san_to_general_name(entry: SanEntry) -> x509.GeneralName:
    """Validate one requested SAN and turn it into a cryptography GeneralName.

    Raises:
        InvalidSubjectAlternativeName: unknown type or invalid value.
    """
    if entry.type == "dns":
        return x509.DNSName(validate_dns_name(entry.value))
    if entry.type == "ip":
        try:
            address = ipaddress.ip_address(entry.value)
        except ValueError:
            raise InvalidSubjectAlternativeName(f"{entry.value[:64]!r} is not an IPv4 or IPv6 address") from None
        if getattr(address, "scope_id", None) is not None:
            raise InvalidSubjectAlternativeName(
                f"{entry.value[:64]!r} has an IPv6 zone id; a certificate cannot carry one (RFC 5280 4.2.1.6)"
            )
        return x509.IPAddress(address)
    if entry.type == "email":
        return x509.RFC822Name(validate_email(entry.value))
    if entry.type == "uri":
        return x509.UniformResourceIdentifier(validate_uri(entry.value))
    raise InvalidSubjectAlternativeName(
        f"SAN type {entry.type!r} is not one of {', '.join(SAN_TYPES)}",
        san_type=entry.type[:16],
        allowed=list(SAN_TYPES),
    )


def general_name_to_san(name: x509.GeneralName) -> SanEntry:
    """The request form of a GeneralName found in a CSR.

    Raises:
        InvalidSubjectAlternativeName: a type this CA does not certify (directoryName, otherName,
            registeredID).
    """
    if isinstance(name, x509.DNSName):
        return SanEntry("dns", name.value)
    if isinstance(name, x509.IPAddress):
        return SanEntry("ip", str(name.value))
    if isinstance(name, x509.RFC822Name):
        return SanEntry("email", name.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        return SanEntry("uri", name.value)
    raise InvalidSubjectAlternativeName(
        f"the CSR asks for a {type(name).__name__} SAN; only dns, ip, email and uri are certified"
    )


def validate_sans(entries: Sequence[SanEntry]) -> list[x509.GeneralName]:
    """Validate a list of SANs: each entry, at most :data:`MAX_SANS`, no duplicates.

    Returns:
        GeneralNames in request order.

    Raises:
        InvalidSubjectAlternativeName: any entry invalid, too many, or a duplicate.
    """
    if len(entries) > MAX_SANS:
        raise InvalidSubjectAlternativeName(
            f"at most {MAX_SANS} SANs are allowed, got {len(entries)}", count=len(entries), max_sans=MAX_SANS
        )
    names = [san_to_general_name(entry) for entry in entries]
    seen: set[tuple[str, str]] = set()
    for entry, name in zip(entries, names, strict=True):
        key = (entry.type, str(name.value).lower())
        if key in seen:
            raise InvalidSubjectAlternativeName(
                f"SAN {entry.type}:{entry.value} is listed twice", san_type=entry.type, san_value=entry.value
            )
        seen.add(key)
    return names


def sans_from_csr(csr: x509.CertificateSigningRequest) -> list[SanEntry]:
    """The SANs a CSR requests in its extensionRequest (empty list when it has none).

    Raises:
        InvalidSubjectAlternativeName: the CSR's SAN extension holds an unsupported name type.
    """
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [general_name_to_san(name) for name in extension.value]


def san_strings(names: Iterable[x509.GeneralName]) -> list[str]:
    """``type:value`` strings for the inventory (``dns:example.com``, ``ip:10.0.0.1``)."""
    return [f"{general_name_to_san(n).type}:{general_name_to_san(n).value}" for n in names]
