from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from kmsca.errors import InvalidSubject, InvalidSubjectAlternativeName
from kmsca.names import (
    SanEntry,
    build_subject,
    sans_from_csr,
    validate_dns_name,
    validate_sans,
)


@pytest.mark.parametrize(
    "name",
    ["example.com", "a.b.example.com", "*.example.com", "*.example.co.uk", "xn--bcher-kva.example", "localhost",
     "host-1.internal", "EXAMPLE.com"],
)
def test_good_dns_names(name: str) -> None:
    assert validate_dns_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("*.com", "public suffix"),
        ("*.co.uk", "public suffix"),
        ("*.github.io", "public suffix"),
        ("*.internal", "public suffix"),
        ("a..b.com", "label ''"),
        ("*.*.example.com", "whole left-most label"),
        ("foo.*.example.com", "whole left-most label"),
        ("f*o.example.com", "whole left-most label"),
        ("-a.example.com", "inner hyphens"),
        ("a_b.example.com", "inner hyphens"),
        ("example.com.", "label ''"),
        ("bücher.example", "A-labels"),
        ("*", "lone"),
        ("a" * 64 + ".com", "1-63"),
        ("", "1 to 253"),
        (("a" * 60 + ".") * 5, "1 to 253"),
    ],
)
def test_bad_dns_names(name: str, fragment: str) -> None:
    with pytest.raises(InvalidSubjectAlternativeName, match=fragment):
        validate_dns_name(name)


@pytest.mark.parametrize(
    "entry",
    [
        SanEntry("ip", "10.0.0.1"),
        SanEntry("ip", "2001:db8::1"),
        SanEntry("email", "ops@example.com"),
        SanEntry("uri", "spiffe://example.org/ns/default/sa/api"),
        SanEntry("uri", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
        SanEntry("uri", "https://10.0.0.1:8443/x"),
    ],
)
def test_good_sans(entry: SanEntry) -> None:
    assert len(validate_sans([entry])) == 1


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (SanEntry("ip", "999.1.1.1"), "not an IPv4 or IPv6"),
        (SanEntry("ip", "10.0.0.0/8"), "not an IPv4 or IPv6"),
        (SanEntry("ip", "010.0.0.1"), "not an IPv4 or IPv6"),
        (SanEntry("email", "no-at-sign.example.com"), "local@domain"),
        (SanEntry("email", "a@b@example.com"), "local@domain"),
        (SanEntry("email", "a b@example.com"), "local part"),
        (SanEntry("email", "ops@*.example.com"), "wildcard"),
        (SanEntry("uri", "no-scheme"), "scheme"),
        (SanEntry("uri", "https://"), "without a host"),
        (SanEntry("uri", "https://exa mple.com/"), "no spaces"),
        (SanEntry("uri", "https://a..b/"), "label"),
        (SanEntry("rid", "1.2.3"), "SAN type"),
    ],
)
def test_bad_sans(entry: SanEntry, fragment: str) -> None:
    with pytest.raises(InvalidSubjectAlternativeName, match=fragment):
        validate_sans([entry])


def test_duplicate_sans_are_refused_not_merged() -> None:
    with pytest.raises(InvalidSubjectAlternativeName, match="twice"):
        validate_sans([SanEntry("dns", "a.example.com"), SanEntry("dns", "A.example.com")])


def test_too_many_sans() -> None:
    with pytest.raises(InvalidSubjectAlternativeName, match="at most 100"):
        validate_sans([SanEntry("dns", f"h{i}.example.com") for i in range(101)])


@given(st.text(max_size=80))
def test_dns_validation_never_crashes(text: str) -> None:
    try:
        assert validate_dns_name(text) == text
    except InvalidSubjectAlternativeName as exc:
        assert exc.code == "InvalidSubjectAlternativeName"


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_subject_overrides_replace_csr_attributes_and_order_is_canonical() -> None:
    csr_subject = _name((NameOID.COMMON_NAME, "from-csr"), (NameOID.ORGANIZATION_NAME, "Acme"))
    subject = build_subject(csr_subject, {"common_name": "device-7", "country": "DE"})
    assert subject.rfc4514_string() == "CN=device-7,O=Acme,C=DE"


def test_subject_keeps_csr_when_no_overrides() -> None:
    csr_subject = _name((NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"), (NameOID.COMMON_NAME, "svc"))
    assert build_subject(csr_subject, {}).rfc4514_string() == "CN=svc,OU=Ops"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"country": "Germany"}, "longer than 2"),
        ({"country": "de"}, "two-letter"),
        ({"common_name": ""}, "non-empty"),
        ({"common_name": " padded"}, "leading or trailing"),
        ({"common_name": "x" * 65}, "longer than 64"),
        ({"common_name": "bad\x00char"}, "control"),
        ({"email_address": "nobody"}, "emailAddress"),
    ],
)
def test_bad_subject_values(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidSubject, match=fragment):
        build_subject(x509.Name([]), overrides)


def test_unsupported_csr_subject_attribute_is_refused() -> None:
    with pytest.raises(InvalidSubject, match="not supported"):
        build_subject(_name((NameOID.TITLE, "boss"), (NameOID.COMMON_NAME, "x")), {})


def test_multi_valued_rdn_is_refused() -> None:
    rdn = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.COMMON_NAME, "a"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "b")]
    )
    with pytest.raises(InvalidSubject, match="multi-valued"):
        build_subject(x509.Name([rdn]), {})


def test_csr_with_directory_name_san_is_refused(ec_csr_builder) -> None:  # type: ignore[no-untyped-def]
    csr = ec_csr_builder(
        sans=[x509.DNSName("ok.example.com"), x509.DirectoryName(_name((NameOID.COMMON_NAME, "x")))]
    )
    with pytest.raises(InvalidSubjectAlternativeName, match="DirectoryName"):
        sans_from_csr(csr)
