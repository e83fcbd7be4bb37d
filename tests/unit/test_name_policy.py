"""Name rules against hostile input (issue item 7): full-string matching, one character policy,
IPv6 zone ids, the CA's own string encodings, one length rule on both paths, empty key_type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from kmsca.errors import InvalidSubject, InvalidSubjectAlternativeName, KeyPolicyViolation
from kmsca.names import SanEntry, build_subject, validate_sans
from kmsca.profiles import PROFILES, origin_key_type

_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())


def issued(subject: x509.Name, sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    """A certificate with this subject, as DER and back (what a relying party reads)."""
    now = datetime(2026, 11, 21, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(_KEY.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    der = builder.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return x509.load_der_x509_certificate(der)


# Full-string matching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        SanEntry("dns", "example.com\n"),
        SanEntry("dns", "*.co.uk\n"),
        SanEntry("dns", "*.example.com\n"),
        SanEntry("email", "user\n@example.com"),
        SanEntry("email", "user@example.com\n"),
        SanEntry("uri", "https://example.com/\n"),
        SanEntry("uri", "urn\n:x"),
        SanEntry("ip", "fe80::1%eth0"),
        SanEntry("ip", "fe80::1%1"),
        SanEntry("ip", "10.0.0.1\n"),
    ],
)
def test_trailing_newlines_and_zone_ids_are_refused(entry: SanEntry) -> None:
    with pytest.raises(InvalidSubjectAlternativeName):
        validate_sans([entry])


def test_a_domain_component_with_a_trailing_newline_is_refused() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example\n")])
    with pytest.raises(InvalidSubject):
        build_subject(name, {})


# Character policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["evil\u202etxt.exe", "a\u2066b\u2069", "a\u200fb", "a\u0085b", "a\u009bb", "a\x7fb", "a\tb", "a\u2028b",
     "a\ud800b", "a\U000e0000b"],
)
@pytest.mark.parametrize("path", ["override", "csr"])
def test_controls_bidi_surrogates_and_unassigned_are_refused_on_both_paths(value: str, path: str) -> None:
    with pytest.raises(InvalidSubject):
        if path == "override":
            build_subject(x509.Name([]), {"organization": value})
        else:
            build_subject(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)]), {})


# Encodings ----------------------------------------------------------------------------------------


def test_csr_string_types_are_not_copied() -> None:
    csr_subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "device-1", _ASN1Type.BMPString),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "A-42", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example", _ASN1Type.PrintableString),
    ])
    certificate = issued(build_subject(csr_subject, {}))
    types = {a.oid: a._type for a in certificate.subject}
    assert types == {
        NameOID.COMMON_NAME: _ASN1Type.UTF8String,
        NameOID.EMAIL_ADDRESS: _ASN1Type.IA5String,
        NameOID.COUNTRY_NAME: _ASN1Type.PrintableString,
        NameOID.SERIAL_NUMBER: _ASN1Type.PrintableString,
        NameOID.DOMAIN_COMPONENT: _ASN1Type.IA5String,
        NameOID.ORGANIZATION_NAME: _ASN1Type.UTF8String,
    }


def test_a_serial_number_attribute_that_does_not_fit_printable_string_is_utf8() -> None:
    subject = build_subject(x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "Nr_42@x")]), {})
    (attribute,) = list(issued(subject).subject)
    assert attribute._type == _ASN1Type.UTF8String and attribute.value == "Nr_42@x"


# One length rule: characters, on both paths ----------------------------------------------------------


@pytest.mark.parametrize("path", ["override", "csr"])
def test_common_name_length_is_counted_in_characters_on_both_paths(path: str) -> None:
    def build(value: str) -> x509.Name:
        if path == "override":
            return build_subject(x509.Name([]), {"common_name": value})
        csr = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value, _validate=False)])
        return build_subject(csr, {})

    wide = "é" * 64  # 64 characters, 128 UTF-8 bytes: within ub-common-name
    assert issued(build(wide)).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == wide
    with pytest.raises(InvalidSubject, match="longer than 64 characters"):
        build("é" * 65)


# key_type ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["", " ", "EC-P256", "ec-p256\n"])
def test_an_empty_or_unknown_key_type_is_refused(key_type: str) -> None:
    with pytest.raises(KeyPolicyViolation):
        origin_key_type(PROFILES["cloudfront-origin"], key_type, _KEY.public_key())


# Hypothesis ------------------------------------------------------------------------------------------

HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from("aZ09-. *@_é\u00a0\u0430\u03b1\u4e2d\n\r\t\x00\x7f\u0085\u009b\u200b\u200e\u202e\u2066\u2028"),
        st.characters(codec="utf-8"),
    ),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(value=HOSTILE)
def test_a_subject_value_is_issued_exactly_or_refused_as_invalid_subject(value: str) -> None:
    try:
        subject = build_subject(x509.Name([]), {"organization": value, "common_name": value})
    except InvalidSubject:
        return
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066\u200e\u2028" for c in value)
    certificate = issued(subject)
    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        (attribute,) = certificate.subject.get_attributes_for_oid(oid)
        assert attribute.value == value and attribute._type == _ASN1Type.UTF8String


@settings(max_examples=400, deadline=None)
@given(value=HOSTILE, kind=st.sampled_from(["dns", "email", "uri", "ip"]))
def test_a_san_is_issued_exactly_or_refused_as_invalid_san(value: str, kind: str) -> None:
    try:
        names = validate_sans([SanEntry(kind, value)])
    except InvalidSubjectAlternativeName:
        return
    assert value.isascii() and value.isprintable() and value == value.strip()
    (name,) = issued(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]), names).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert (str(name.value) if kind == "ip" else name.value) == (str(names[0].value) if kind == "ip" else value)
