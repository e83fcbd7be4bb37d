"""Parsing and strict validation of the issuance policy document (format and semantics:
:mod:`kmsca.caller_policy`). Unknown keys, wrong types and malformed values are refused with
:class:`~kmsca.errors.InvalidIssuancePolicy` naming the place (``rules[web].dns_suffixes``);
nothing is coerced or dropped.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .caller_policy import ORIGIN_PROFILE, SUBJECT_ATTRIBUTES, IssuancePolicyDocument, Rule
from .errors import CaError, InvalidIssuancePolicy, InvalidTarget
from .names import check_characters, validate_dns_name
from .profiles import PROFILES
from .targets import check_target_name

FORMAT_VERSION = 1
#: The stored document's size limit, bytes of JSON text (well under DynamoDB's 400 KB item).
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_RULES = 200
REVOKE_SCOPES = ("none", "own", "matching", "any")
_RULE_KEYS = {
    "name", "principals", "profiles", "dns_names", "dns_suffixes", "common_names", "subject",
    "ip_ranges", "email_domains", "uri_prefixes", "max_lifetime_days", "may_revoke", "edge_targets",
}  # fmt: skip
_PRINCIPAL_KEYS = {"accounts", "arns", "organizations"}
_RULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ACCOUNT = re.compile(r"\d{12}")
_ORGANIZATION = re.compile(r"o-[a-z0-9]{10,32}")
_ARN_PATTERN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):(iam|sts)::\d{12}:(user|role|assumed-role)/[\w+=,.@/*-]{1,512}")
_URI_PREFIX = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/?#]+/[\x21-\x7e]*")


def _fail(where: str, message: str) -> InvalidIssuancePolicy:
    return InvalidIssuancePolicy(f"{where}: {message}")


def _strings(raw: Any, where: str, check: Any = None) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise _fail(where, "must be a list of strings")
    if len(set(raw)) != len(raw):
        raise _fail(where, "lists a value twice")
    for value in raw:
        problem = check_characters(value)
        if problem or not value:
            raise _fail(where, f"{value[:64]!r} is empty or {problem}")
        if check is not None:
            check(value, where)
    return tuple(raw)


def _check_account(value: str, where: str) -> None:
    if not _ACCOUNT.fullmatch(value):
        raise _fail(where, f"{value[:64]!r} is not a 12-digit account id")


def _check_organization(value: str, where: str) -> None:
    if not _ORGANIZATION.fullmatch(value):
        raise _fail(where, f"{value[:64]!r} is not an organization id (o- and 10 to 32 lowercase letters or digits)")


def _check_arn(value: str, where: str) -> None:
    if not _ARN_PATTERN.fullmatch(value):
        raise _fail(
            where,
            f"{value[:80]!r} is not an IAM user/role or STS assumed-role ARN pattern with a 12-digit account "
            "(arn:aws:iam::123456789012:role/name-*)",
        )


def _check_dns(value: str, where: str, *, suffix: bool = False) -> None:
    name = value[1:] if suffix else value
    if suffix and not value.startswith("."):
        raise _fail(where, f"{value[:64]!r} must start with a dot (.example.com)")
    if name != name.lower():
        raise _fail(where, f"{value[:64]!r} must be lowercase")
    try:
        validate_dns_name(name, allow_wildcard=not suffix)
    except CaError as exc:
        raise _fail(where, exc.message) from None


def _check_suffix(value: str, where: str) -> None:
    _check_dns(value, where, suffix=True)


def _check_domain(value: str, where: str) -> None:
    _check_dns(value, where, suffix=value.startswith("."))


def _check_uri_prefix(value: str, where: str) -> None:
    if not _URI_PREFIX.fullmatch(value) or not value.endswith("/"):
        raise _fail(where, f"{value[:64]!r} must be scheme://host/ (lowercase scheme) and end with /")


def _networks(raw: Any, where: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for value in _strings(raw, where):
        try:
            networks.append(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise _fail(where, f"{value[:64]!r} is not a network in CIDR notation ({exc})") from None
    return tuple(networks)


def _subject(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object of attribute name -> list of allowed values")
    result = {}
    for key, values in raw.items():
        if key not in SUBJECT_ATTRIBUTES:
            raise _fail(f"{where}.{key}", f"unknown attribute; one of {', '.join(SUBJECT_ATTRIBUTES)}")
        result[key] = _strings(values, f"{where}.{key}")
        if "*" in result[key] and len(result[key]) > 1:
            raise _fail(f"{where}.{key}", '"*" (any value) must be the only value')
    return result


def _unknown(raw: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    extra = sorted(set(raw) - set(allowed))
    if extra:
        raise _fail(where, f"unknown key {extra[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object")
    _unknown(raw, _RULE_KEYS, where)
    for required in ("name", "principals", "profiles", "max_lifetime_days", "may_revoke"):
        if required not in raw:
            raise _fail(where, f"{required} is required")
    name = raw["name"]
    if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
        raise _fail(f"{where}.name", "must be 1-64 letters, digits, '_', '.' or '-'")
    where = f"rules[{name}]"
    principals = raw["principals"]
    if not isinstance(principals, dict):
        raise _fail(f"{where}.principals", "must be an object with accounts, arns and/or organizations")
    _unknown(principals, _PRINCIPAL_KEYS, f"{where}.principals")
    accounts = _strings(principals.get("accounts", []), f"{where}.principals.accounts", _check_account)
    arns = _strings(principals.get("arns", []), f"{where}.principals.arns", _check_arn)
    organizations = _strings(
        principals.get("organizations", []), f"{where}.principals.organizations", _check_organization
    )
    if not (accounts or arns or organizations):
        raise _fail(f"{where}.principals", "names no principal")

    def known_profile(value: str, at: str) -> None:
        if value not in PROFILES:
            raise _fail(at, f"unknown profile {value[:64]!r}; one of {', '.join(PROFILES)}")

    lifetime = raw["max_lifetime_days"]
    if type(lifetime) is not int or lifetime < 1:
        raise _fail(f"{where}.max_lifetime_days", "must be an integer of at least 1")
    if raw["may_revoke"] not in REVOKE_SCOPES:
        raise _fail(f"{where}.may_revoke", f"must be one of {', '.join(REVOKE_SCOPES)}")

    def check_target(value: str, at: str) -> None:
        try:
            check_target_name(value)
        except InvalidTarget as exc:
            raise _fail(at, f"{value[:64]!r} is not an edge target name: {exc.message}") from None

    profiles = _strings(raw["profiles"], f"{where}.profiles", known_profile)
    edge_targets = _strings(raw.get("edge_targets", []), f"{where}.edge_targets", check_target)
    if ORIGIN_PROFILE in profiles and not edge_targets:
        raise _fail(f"{where}.edge_targets", f"is required with the {ORIGIN_PROFILE} profile (e.g. [\"local\"])")
    if edge_targets and ORIGIN_PROFILE not in profiles:
        raise _fail(f"{where}.edge_targets", f"applies to the {ORIGIN_PROFILE} profile only, which profiles lacks")

    def check_cn(value: str, at: str) -> None:
        if len(value) > 64:
            raise _fail(at, f"{value[:64]!r} is longer than 64 characters")

    return Rule(
        name=name,
        accounts=accounts,
        arns=arns,
        organizations=organizations,
        profiles=profiles,
        dns_names=_strings(raw.get("dns_names", []), f"{where}.dns_names", _check_dns),
        dns_suffixes=_strings(raw.get("dns_suffixes", []), f"{where}.dns_suffixes", _check_suffix),
        common_names=_strings(raw.get("common_names", []), f"{where}.common_names", check_cn),
        subject=_subject(raw.get("subject", {}), f"{where}.subject"),
        ip_ranges=_networks(raw.get("ip_ranges", []), f"{where}.ip_ranges"),
        email_domains=_strings(raw.get("email_domains", []), f"{where}.email_domains", _check_domain),
        uri_prefixes=_strings(raw.get("uri_prefixes", []), f"{where}.uri_prefixes", _check_uri_prefix),
        max_lifetime_days=lifetime,
        may_revoke=raw["may_revoke"],
        edge_targets=edge_targets,
    )


def parse_document(text: str | bytes) -> IssuancePolicyDocument:
    """Parse and validate a policy document (JSON text).

    Raises:
        InvalidIssuancePolicy: not JSON, larger than :data:`MAX_DOCUMENT_BYTES`, another
            ``version`` than :data:`FORMAT_VERSION`, an unknown key anywhere, a malformed value
            (account, organization, ARN pattern, DNS name or suffix, network, URI prefix, profile),
            or two rules with one name. The message names the place (``rules[web].dns_suffixes``).
    """
    data = text.encode() if isinstance(text, str) else text
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidIssuancePolicy(f"the issuance policy is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise InvalidIssuancePolicy(f"the issuance policy is not JSON: {str(exc)[:200]}") from None
    if not isinstance(raw, dict):
        raise InvalidIssuancePolicy("the issuance policy must be a JSON object")
    _unknown(raw, {"version", "rules"}, "document")
    if raw.get("version") != FORMAT_VERSION or type(raw.get("version")) is not int:
        raise _fail("document.version", f"must be {FORMAT_VERSION}")
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list) or len(rules_raw) > MAX_RULES:
        raise _fail("document.rules", f"must be a list of at most {MAX_RULES} rules")
    rules = tuple(_rule(item, f"rules[{index}]") for index, item in enumerate(rules_raw))
    names = [rule.name for rule in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise _fail("document.rules", f"two rules are named {duplicate!r}")
    return IssuancePolicyDocument(rules)
