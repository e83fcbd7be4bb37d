"""The per-caller issuance policy (kmsca.caller_policy) and the function-URL edge
(kmsca.function_url): pure rules, no AWS, at a fixed time."""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kmsca.caller_policy import (
    NO_RULE,
    UNRESTRICTED,
    Caller,
    Grant,
    grant_for,
    owner_of,
)
from kmsca.errors import CertificateNotFound, InvalidIssuancePolicy, InvalidRequest, NotAuthorized, wire_errors
from kmsca.function_url import FUNCTION_URL, http_response, parse_invocation
from kmsca.policy_document import parse_document
from kmsca.revocation import RevokeRequest, revoke

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CA_ACCOUNT = "111111111111"
WORKLOAD = "222222222222"
WEB_ROLE_SESSION = f"arn:aws:sts::{WORKLOAD}:assumed-role/web-deployer/ci-run-1"

RULES: dict[str, Any] = {
    "version": 1,
    "rules": [
        {
            "name": "web",
            "principals": {"arns": [f"arn:aws:iam::{WORKLOAD}:role/web-*"]},
            "profiles": ["client", "server"],
            "dns_names": ["web.example.com"],
            "dns_suffixes": [".web.example.com"],
            "common_names": ["device-*"],
            "subject": {"organization": ["Example Ltd"]},
            "ip_ranges": ["10.20.0.0/16", "fd00:20::/32"],
            "email_domains": [".example.com"],
            "uri_prefixes": ["spiffe://example.com/web/"],
            "max_lifetime_days": 30,
            "may_revoke": "own",
        },
        {
            "name": "workload-account",
            "principals": {"accounts": [WORKLOAD]},
            "profiles": ["client"],
            "dns_suffixes": [".other.example.com"],
            "max_lifetime_days": 7,
            "may_revoke": "matching",
        },
        {
            "name": "org",
            "principals": {"organizations": ["o-abcdefghij"]},
            "profiles": [],
            "max_lifetime_days": 1,
            "may_revoke": "none",
        },
    ],
}
DOCUMENT = parse_document(json.dumps(RULES))


def name(**attributes: str) -> x509.Name:
    oids = {"cn": NameOID.COMMON_NAME, "o": NameOID.ORGANIZATION_NAME, "ou": NameOID.ORGANIZATIONAL_UNIT_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attributes.items()])


def dns(*values: str) -> list[x509.GeneralName]:
    return [x509.DNSName(v) for v in values]


def web_grant() -> Grant:
    return grant_for(DOCUMENT, Caller(WEB_ROLE_SESSION, WORKLOAD), CA_ACCOUNT)


# -- who gets which rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "rule"),
    [
        (Caller(WEB_ROLE_SESSION, WORKLOAD), "web"),  # the session matches as its role
        (Caller(f"arn:aws:iam::{WORKLOAD}:role/web-deployer", WORKLOAD), "web"),
        (Caller(f"arn:aws:iam::{WORKLOAD}:user/alice", WORKLOAD), "workload-account"),  # first match wins
        (Caller(f"arn:aws:sts::{WORKLOAD}:assumed-role/db/s", WORKLOAD, "o-abcdefghij"), "workload-account"),
        (Caller("arn:aws:iam::333333333333:user/bob", "333333333333", "o-abcdefghij"), "org"),
    ],
)
def test_the_first_rule_naming_the_caller_decides(caller: Caller, rule: str) -> None:
    grant = grant_for(DOCUMENT, caller, CA_ACCOUNT)
    assert grant.rule is not None and grant.rule.name == rule


def test_a_caller_no_rule_names_gets_nothing_even_from_the_ca_account() -> None:
    with pytest.raises(NotAuthorized) as raised:
        grant_for(DOCUMENT, Caller(f"arn:aws:iam::{CA_ACCOUNT}:user/ops", CA_ACCOUNT), CA_ACCOUNT)
    assert raised.value.rule == NO_RULE and "names" in raised.value.reason


def test_an_arn_pattern_does_not_match_another_account() -> None:
    with pytest.raises(NotAuthorized):
        grant_for(DOCUMENT, Caller("arn:aws:sts::444444444444:assumed-role/web-deployer/s", "444444444444"), CA_ACCOUNT)


def test_without_a_document_the_ca_account_keeps_the_global_limits_and_others_get_nothing() -> None:
    assert grant_for(None, Caller(f"arn:aws:iam::{CA_ACCOUNT}:user/ops", CA_ACCOUNT), CA_ACCOUNT) is UNRESTRICTED
    with pytest.raises(NotAuthorized, match="not the CA's account"):
        grant_for(None, Caller(WEB_ROLE_SESSION, WORKLOAD), CA_ACCOUNT)


def test_a_direct_invoke_is_the_administrators_path() -> None:
    assert grant_for(DOCUMENT, None, CA_ACCOUNT) is UNRESTRICTED


# -- issue ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "sans"),
    [
        (name(cn="web.example.com"), dns("web.example.com")),
        (name(cn="device-7"), dns("a.web.example.com", "*.b.web.example.com")),
        (name(cn="A.WEB.example.com", o="Example Ltd"), []),
        (name(), [x509.IPAddress(ipaddress.ip_address("10.20.3.4"))]),
        (name(), [x509.IPAddress(ipaddress.ip_address("fd00:20::1"))]),
        (name(), [x509.RFC822Name("ops@mail.example.com")]),
        (name(), [x509.UniformResourceIdentifier("spiffe://example.com/web/api")]),
    ],
)
def test_names_inside_the_rule_are_allowed(subject: x509.Name, sans: list[x509.GeneralName]) -> None:
    web_grant().check_issue("server", subject, sans, 30)


@pytest.mark.parametrize(
    ("subject", "sans", "why"),
    [
        (name(), dns("evil-web.example.com"), "DNS name 'evil-web.example.com'"),
        (name(), dns("example.com"), "DNS name 'example.com'"),
        (name(), dns("web.example.com.evil.net"), "outside its dns_names"),
        (name(), dns("x.web.example.com", "x.other.example.com"), "'x.other.example.com'"),
        (name(cn="device-7.evil"), [], "commonName 'device-7.evil'"),
        (name(cn="ops"), dns("web.example.com"), "commonName 'ops'"),
        (name(cn="device-1", o="Other Ltd"), [], "organizationName 'Other Ltd'"),
        (name(cn="device-1", ou="Ops"), [], "organizational_unit is not allowed"),
        (name(), [x509.IPAddress(ipaddress.ip_address("10.21.0.1"))], "10.21.0.1 is outside its ip_ranges"),
        (name(), [x509.RFC822Name("ops@example.com")], "email 'ops@example.com'"),
        (name(), [x509.UniformResourceIdentifier("spiffe://example.com/webx")], "uri_prefixes"),
        (name(), [x509.UniformResourceIdentifier("spiffe://example.com.evil/web/")], "uri_prefixes"),
    ],
)
def test_a_name_outside_the_rule_is_refused_naming_the_rule(
    subject: x509.Name, sans: list[x509.GeneralName], why: str
) -> None:
    with pytest.raises(NotAuthorized) as raised:
        web_grant().check_issue("server", subject, sans, 30)
    assert raised.value.rule == "web"
    assert why.replace("organizationName", "organization") in raised.value.message or why in raised.value.message


def test_profile_and_lifetime_outside_the_rule_are_refused() -> None:
    with pytest.raises(NotAuthorized, match="profile 'cloudfront-origin' is not one of its profiles"):
        web_grant().check_issue("cloudfront-origin", name(), dns("a.web.example.com"), 1)
    with pytest.raises(NotAuthorized, match="lifetime_days 31 is above its max_lifetime_days 30"):
        web_grant().check_issue("client", name(cn="device-1"), [], 31)


ORIGIN_RULES = {
    "version": 1,
    "rules": [{
        "name": "edge-team", "principals": {"accounts": [WORKLOAD]}, "profiles": ["cloudfront-origin"],
        "dns_suffixes": [".web.example.com"], "max_lifetime_days": 30, "may_revoke": "matching",
        "edge_targets": ["workload-a"],
    }],
}  # fmt: skip


def origin_grant() -> Grant:
    caller = Caller(arn=f"arn:aws:iam::{WORKLOAD}:user/edge", account_id=WORKLOAD, org_id=None)
    return grant_for(parse_document(json.dumps(ORIGIN_RULES)), caller, CA_ACCOUNT)


def test_an_origin_certificate_goes_only_to_the_edge_targets_the_rule_names() -> None:
    origin_grant().check_issue("cloudfront-origin", name(), dns("a.web.example.com"), 30, "workload-a")
    with pytest.raises(NotAuthorized, match="edge target 'workload-b' is not one of its edge_targets") as raised:
        origin_grant().check_issue("cloudfront-origin", name(), dns("a.web.example.com"), 30, "workload-b")
    assert raised.value.rule == "edge-team"
    with pytest.raises(NotAuthorized, match="edge target 'local' is not one of its edge_targets"):
        origin_grant().check_issue("cloudfront-origin", name(), dns("a.web.example.com"), 30, None)


def test_the_global_limits_alone_allow_any_name() -> None:
    UNRESTRICTED.check_issue("server", name(cn="anything"), dns("evil.example.net"), 397)


# -- revoke ---------------------------------------------------------------------------------------------


@dataclass
class FakeRecord:
    serial_number: str
    profile: str
    requested_by: str | None
    certificate: x509.Certificate


def certificate(sans: list[x509.GeneralName], subject: x509.Name) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(name(cn="Test CA"))
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


class FakeStore:
    def __init__(self, record: FakeRecord | None) -> None:
        self.record = record
        self.revoked: list[str] = []

    def get_certificate(self, serial_number: str) -> FakeRecord | None:
        return self.record

    def revoke(self, serial_number: str, reason: str, now: datetime, invalidity: Any) -> Any:
        self.revoked.append(serial_number)
        raise AssertionError("the test expected no revocation")


def test_own_lets_every_session_of_the_role_revoke_and_nobody_else() -> None:
    other_session = Caller(f"arn:aws:sts::{WORKLOAD}:assumed-role/web-deployer/ci-run-2", WORKLOAD)
    record = FakeRecord("1234", "client", WEB_ROLE_SESSION, certificate([], name(cn="device-1")))
    web_grant().check_revoke(other_session, record)
    assert owner_of(WEB_ROLE_SESSION) == f"arn:aws:sts::{WORKLOAD}:assumed-role/web-deployer/"
    stranger = Caller(f"arn:aws:sts::{WORKLOAD}:assumed-role/web-other/ci-run-1", WORKLOAD)
    with pytest.raises(NotAuthorized, match="not requested by this caller"):
        grant_for(DOCUMENT, stranger, CA_ACCOUNT).check_revoke(stranger, record)


def test_revoke_refused_before_anything_is_written() -> None:
    stranger = Caller(f"arn:aws:sts::{WORKLOAD}:assumed-role/web-x/s", WORKLOAD)
    store = FakeStore(FakeRecord("1234", "client", "arn:aws:iam::222222222222:user/alice", certificate([], name())))
    with pytest.raises(NotAuthorized):
        revoke(store, RevokeRequest(serial_number="1234"), NOW, stranger, grant_for(DOCUMENT, stranger, CA_ACCOUNT))  # type: ignore[arg-type]
    assert store.revoked == []
    empty = FakeStore(None)
    with pytest.raises(CertificateNotFound):
        revoke(empty, RevokeRequest(serial_number="1234"), NOW, stranger, grant_for(DOCUMENT, stranger, CA_ACCOUNT))  # type: ignore[arg-type]


def test_matching_revokes_only_certificates_the_rule_would_issue() -> None:
    alice = Caller(f"arn:aws:iam::{WORKLOAD}:user/alice", WORKLOAD)
    grant = grant_for(DOCUMENT, alice, CA_ACCOUNT)
    inside = FakeRecord("1", "client", None, certificate(dns("a.other.example.com"), name()))
    grant.check_revoke(alice, inside)
    outside = FakeRecord("2", "client", None, certificate(dns("a.web.example.com"), name()))
    with pytest.raises(NotAuthorized, match="may_revoke matching"):
        grant.check_revoke(alice, outside)
    wrong_profile = FakeRecord("3", "server", None, certificate(dns("a.other.example.com"), name()))
    with pytest.raises(NotAuthorized, match="profile 'server'"):
        grant.check_revoke(alice, wrong_profile)


def test_none_refuses_every_revocation() -> None:
    bob = Caller("arn:aws:iam::333333333333:user/bob", "333333333333", "o-abcdefghij")
    with pytest.raises(NotAuthorized, match="may_revoke none"):
        grant_for(DOCUMENT, bob, CA_ACCOUNT).check_revoke(bob, None)


# -- the document itself ------------------------------------------------------------------------------


def with_rule(**changes: Any) -> str:
    rule = {"name": "r", "principals": {"accounts": [WORKLOAD]}, "profiles": ["client"],
            "max_lifetime_days": 1, "may_revoke": "none"}  # fmt: skip
    rule.update(changes)
    return json.dumps({"version": 1, "rules": [rule]})


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("not json", "not JSON"),
        (json.dumps({"version": 2, "rules": []}), "document.version"),
        (json.dumps({"version": 1, "rules": [], "extra": 1}), "unknown key 'extra'"),
        (with_rule(colour="blue"), "unknown key 'colour'"),
        (with_rule(principals={"accounts": ["12345"]}), "not a 12-digit account id"),
        (with_rule(principals={"users": ["x"]}), "unknown key 'users'"),
        (with_rule(principals={}), "names no principal"),
        (with_rule(principals={"arns": ["arn:aws:iam::*:role/x"]}), "12-digit account"),
        (with_rule(principals={"organizations": ["org-1"]}), "not an organization id"),
        (with_rule(profiles=["gold"]), "unknown profile 'gold'"),
        (with_rule(dns_suffixes=["example.com"]), "must start with a dot"),
        (with_rule(dns_suffixes=[".bücher.example"]), "A-labels"),
        (with_rule(dns_names=["Web.example.com"]), "must be lowercase"),
        (with_rule(ip_ranges=["10.0.0.1/8"]), "not a network in CIDR notation"),
        (with_rule(uri_prefixes=["spiffe://example.com"]), "end with /"),
        (with_rule(subject={"title": ["x"]}), "unknown attribute"),
        (with_rule(subject={"organization": ["*", "x"]}), "must be the only value"),
        (with_rule(max_lifetime_days="30"), "max_lifetime_days"),
        (with_rule(max_lifetime_days=True), "max_lifetime_days"),
        (with_rule(may_revoke="all"), "may_revoke"),
        (with_rule(profiles=["cloudfront-origin"]), "rules[r].edge_targets: is required with the cloudfront-origin"),
        (with_rule(edge_targets=["local"]), "applies to the cloudfront-origin profile only"),
        (with_rule(profiles=["cloudfront-origin"], edge_targets=["Local"]), "is not an edge target name"),
        (with_rule(profiles=["cloudfront-origin"], edge_targets=["a" * 64]), "is not an edge target name"),
        (with_rule(name="bad name"), "name"),
        (json.dumps({"version": 1, "rules": [json.loads(with_rule())["rules"][0]] * 2}), "two rules are named 'r'"),
    ],
)
def test_an_invalid_document_is_refused_with_where_and_why(text: str, where: str) -> None:
    with pytest.raises(InvalidIssuancePolicy) as raised:
        parse_document(text)
    assert where in raised.value.message
    assert raised.value.code == "InvalidIssuancePolicy"


# -- the function-URL edge --------------------------------------------------------------------------------


def url_event(body: object, iam: dict[str, Any] | None, method: str = "POST") -> dict[str, Any]:
    context: dict[str, Any] = {"http": {"method": method, "path": "/"}, "accountId": CA_ACCOUNT}
    if iam is not None:
        context["authorizer"] = {"iam": iam}
    raw = json.dumps(body).encode()
    return {"version": "2.0", "rawPath": "/", "requestContext": context,
            "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}  # fmt: skip


IAM = {"accessKey": "ASIAX", "accountId": WORKLOAD, "callerId": "AROAX:ci", "userArn": WEB_ROLE_SESSION,
       "principalOrgId": "o-abcdefghij"}  # fmt: skip


def test_a_function_url_event_carries_the_verified_caller() -> None:
    invocation = parse_invocation(url_event({"serial_number": "01"}, IAM))
    assert invocation.request == {"serial_number": "01"}
    assert invocation.caller == Caller(WEB_ROLE_SESSION, WORKLOAD, "o-abcdefghij")
    assert parse_invocation({"serial_number": "01"}).caller is None  # direct Invoke


def test_a_function_url_event_without_an_iam_caller_is_refused() -> None:
    with pytest.raises(NotAuthorized, match="no verified IAM caller"):
        parse_invocation(url_event({}, None))
    with pytest.raises(InvalidRequest, match="POST"):
        parse_invocation(url_event({}, IAM, method="GET"))


def test_refusals_on_the_url_are_http_answers_and_raised_on_direct_invoke() -> None:
    @wire_errors(None, FUNCTION_URL)
    def handler(event: Any, context: Any) -> dict[str, str]:
        raise NotAuthorized("web", "DNS name 'x' is outside its dns_names and dns_suffixes")

    answer = handler(url_event({}, IAM), None)
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"] == "NotAuthorized"
    assert "request id unknown" in json.loads(answer["body"])["message"]
    with pytest.raises(NotAuthorized):
        handler({}, None)
    assert http_response(200, {"a": 1})["body"] == '{"a": 1}'


def test_a_renewal_supersedes_so_it_needs_ownership_or_revocation_rights() -> None:
    team = Caller(WEB_ROLE_SESSION, WORKLOAD)
    grant = grant_for(DOCUMENT, team, CA_ACCOUNT)  # may_revoke own
    mine = FakeRecord("1", "client", WEB_ROLE_SESSION, certificate([], name(cn="device-1")))
    grant.check_renew(team, mine, revokes=True)
    theirs = FakeRecord("2", "client", "arn:aws:iam::222222222222:user/alice", certificate([], name(cn="device-1")))
    with pytest.raises(NotAuthorized, match="renewing certificate 2 supersedes it"):
        grant.check_renew(team, theirs, revokes=False)
    bob = Caller("arn:aws:iam::333333333333:user/bob", "333333333333", "o-abcdefghij")  # may_revoke none
    own = FakeRecord("3", "client", bob.arn, certificate([], name()))
    grant_for(DOCUMENT, bob, CA_ACCOUNT).check_renew(bob, own, revokes=False)
    with pytest.raises(NotAuthorized, match="may_revoke none"):
        grant_for(DOCUMENT, bob, CA_ACCOUNT).check_renew(bob, own, revokes=True)
