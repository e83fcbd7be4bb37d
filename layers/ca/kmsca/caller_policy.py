"""The per-caller issuance policy: which verified IAM principal may get which certificates, and
revoke which.

A caller is known only on the function-URL path (``AuthType: AWS_IAM``: Lambda verifies the SigV4
signature and puts the principal in ``requestContext.authorizer.iam``). A direct Lambda Invoke
does not tell the function who called: it is the administrators' path (it needs
``lambda:InvokeFunction`` on the function, which the operator policies no longer grant), and no
issuance policy applies to it (:class:`Grant` ``UNRESTRICTED``: the CA's global limits only).

The document (JSON, one table item ``POLICY#issuance``, see :mod:`kmsca.policy_store`)::

    {"version": 1,
     "rules": [
       {"name": "web-team",
        "principals": {"accounts": ["222222222222"],
                       "arns": ["arn:aws:iam::222222222222:role/web-*"],
                       "organizations": ["o-a1b2c3d4e5"]},
        "profiles": ["client", "server"],
        "dns_names": ["web.example.com"],
        "dns_suffixes": [".web.example.com"],
        "common_names": ["device-*"],
        "subject": {"organization": ["Example Ltd"], "organizational_unit": ["*"]},
        "ip_ranges": ["10.20.0.0/16"],
        "email_domains": [".example.com"],
        "uri_prefixes": ["spiffe://example.com/web/"],
        "max_lifetime_days": 30,
        "may_revoke": "own"}]}

Semantics (decisions where AWS has no precedent):

- **First matching rule wins** (firewall order): the first rule whose ``principals`` name the
  caller decides everything for that caller; later rules are not consulted. Put specific rules
  (role ARN patterns) before broad ones (account, organisation). A caller named by no rule gets
  nothing (``NotAuthorized``, rule ``(none)``).
- ``principals``: any of ``accounts`` (12 digits), ``arns`` (IAM user/role ARN patterns with
  ``*`` = any characters, case-sensitive as IAM's ArnLike; the account part must be 12 digits),
  ``organizations`` (``o-...``: the caller's ``principalOrgId``). An assumed-role session
  ``arn:aws:sts::A:assumed-role/R/S`` matches as itself and as ``arn:aws:iam::A:role/R`` (the role's
  path is not in the session ARN: write patterns without a path, or with ``*``).
- Names: every name the certificate would carry must be allowed, or the request is refused
  (nothing is dropped). DNS SANs: equal to a ``dns_names`` entry, or ending with a
  ``dns_suffixes`` entry (which starts with a dot: ``.example.com`` allows ``a.example.com`` and
  ``*.a.example.com``, never ``example.com`` nor ``evil-example.com``); ASCII A-labels, compared
  without case. The subject commonName: matching a ``common_names`` pattern (``*`` = any run of
  characters other than ``.``, whole value, no case) or being a DNS name the rule allows. Other
  subject attributes (``organization``, ``organizational_unit``, ``country``, ``state``,
  ``locality``, ``email_address``, ``domain_component``, ``serial_number``): only when ``subject``
  lists the attribute, with the exact values allowed or ``["*"]`` for any. IP SANs: inside an
  ``ip_ranges`` network. Email SANs: domain per ``email_domains`` (exact or ``.suffix``). URI SANs:
  starting with a ``uri_prefixes`` entry (``scheme://host/``..., ending with ``/``).
- ``profiles``: the profiles it may request; ``max_lifetime_days``: at most this lifetime (the
  request's ``lifetime_days``, or the CA's default when it sends none: then it must send one).
- ``may_revoke``: ``none``; ``own`` (certificates whose ``requested_by`` is the caller's
  principal: the same IAM user, or the same role whatever the session name); ``matching``
  (certificates of a profile and names this rule would issue); ``any``. A renewal (``renews``)
  supersedes the certificate renewed: a caller renews its own certificates, or those its
  ``may_revoke`` covers (only those when it asks ``revoke_renewed_after_hours``); the new
  certificate's names are checked like any request.
- **No document stored**: callers of the CA's own account get what the CA's global limits allow
  (the behaviour before policies existed); callers of any other account get nothing. Once a
  document is stored it alone decides (a CA-account caller named by no rule gets nothing).
- An unreadable stored document fails closed (``InvalidIssuancePolicy`` for every caller).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .errors import CaError, InvalidIssuancePolicy, NotAuthorized
from .names import SUBJECT_FIELDS, check_characters, validate_dns_name
from .profiles import PROFILES

FORMAT_VERSION = 1
#: The stored document's size limit, bytes of JSON text (well under DynamoDB's 400 KB item).
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_RULES = 200
REVOKE_SCOPES = ("none", "own", "matching", "any")
NO_RULE = "(none)"

#: Subject attribute names of a rule's ``subject`` (request field names) -> OID. commonName is
#: decided by ``common_names`` and the DNS names.
SUBJECT_ATTRIBUTES: dict[str, ObjectIdentifier] = {
    **{name: oid for name, (oid, _) in SUBJECT_FIELDS.items() if name != "common_name"},
    "domain_component": NameOID.DOMAIN_COMPONENT,
    "serial_number": NameOID.SERIAL_NUMBER,
}
_ATTRIBUTE_NAMES = {oid: name for name, oid in SUBJECT_ATTRIBUTES.items()}

_RULE_KEYS = {
    "name", "principals", "profiles", "dns_names", "dns_suffixes", "common_names", "subject",
    "ip_ranges", "email_domains", "uri_prefixes", "max_lifetime_days", "may_revoke",
}  # fmt: skip
_PRINCIPAL_KEYS = {"accounts", "arns", "organizations"}
_RULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ACCOUNT = re.compile(r"\d{12}")
_ORGANIZATION = re.compile(r"o-[a-z0-9]{10,32}")
_ARN_PATTERN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):(iam|sts)::\d{12}:(user|role|assumed-role)/[\w+=,.@/*-]{1,512}")
_URI_PREFIX = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/?#]+/[\x21-\x7e]*")
_ASSUMED_ROLE = re.compile(r"arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+")


@dataclass(frozen=True)
class Caller:
    """The verified IAM principal of a function-URL request (``requestContext.authorizer.iam``).

    Attributes:
        arn: ``userArn``: an IAM user ARN or an assumed-role session ARN
            (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``).
        account_id: ``accountId``, 12 digits.
        org_id: ``principalOrgId`` (``o-...``), or None outside AWS Organizations.
    """

    arn: str
    account_id: str
    org_id: str | None = None

    @property
    def role_arn(self) -> str | None:
        """``arn:<partition>:iam::<account>:role/<name>`` for an assumed-role session, else None."""
        match = _ASSUMED_ROLE.fullmatch(self.arn)
        if match is None:
            return None
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"

    @property
    def owner(self) -> str:
        """What ``may_revoke: own`` compares: the user ARN, or the session ARN without the session
        name (``arn:aws:sts::A:assumed-role/R/``), so every session of a role owns its certificates."""
        match = _ASSUMED_ROLE.fullmatch(self.arn)
        return self.arn if match is None else self.arn[: match.end("role") + 1]


def owner_of(requested_by: str | None) -> str | None:
    """:attr:`Caller.owner` of a stored ``requested_by`` ARN (None stays None)."""
    if requested_by is None:
        return None
    return Caller(requested_by, "").owner


@dataclass(frozen=True)
class Rule:
    """One rule of the document (fields as in the module docstring; tuples of checked values)."""

    name: str
    accounts: tuple[str, ...]
    arns: tuple[str, ...]
    organizations: tuple[str, ...]
    profiles: tuple[str, ...]
    dns_names: tuple[str, ...]
    dns_suffixes: tuple[str, ...]
    common_names: tuple[str, ...]
    subject: Mapping[str, tuple[str, ...]]
    ip_ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    email_domains: tuple[str, ...]
    uri_prefixes: tuple[str, ...]
    max_lifetime_days: int
    may_revoke: str

    def names(self, caller: Caller) -> bool:
        """Whether the rule's ``principals`` name ``caller``."""
        if caller.account_id in self.accounts:
            return True
        if caller.org_id is not None and caller.org_id in self.organizations:
            return True
        candidates = [caller.arn] + ([caller.role_arn] if caller.role_arn else [])
        return any(_arn_glob(pattern).fullmatch(arn) for pattern in self.arns for arn in candidates)

    def dns_allowed(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in self.dns_names:
            return True
        return any(lowered.endswith(suffix) and len(lowered) > len(suffix) for suffix in self.dns_suffixes)

    def name_problem(self, subject: x509.Name, sans: Sequence[x509.GeneralName]) -> str | None:
        """None when every name is allowed, else what is not (one sentence)."""
        for attribute in subject:
            value = str(attribute.value)
            if attribute.oid == NameOID.COMMON_NAME:
                if not (self.dns_allowed(value) or any(_cn_glob(p).fullmatch(value) for p in self.common_names)):
                    return f"subject commonName {value[:64]!r} matches none of its common_names or DNS names"
                continue
            field = _ATTRIBUTE_NAMES.get(attribute.oid, attribute.oid.dotted_string)
            allowed = self.subject.get(field)
            if allowed is None:
                return f"subject attribute {field} is not allowed (the rule's subject does not list it)"
            if "*" not in allowed and value not in allowed:
                return f"subject {field} {value[:64]!r} is not one of {', '.join(allowed)}"
        for name in sans:
            problem = self._san_problem(name)
            if problem:
                return problem
        return None

    def _san_problem(self, name: x509.GeneralName) -> str | None:
        if isinstance(name, x509.DNSName):
            if not self.dns_allowed(name.value):
                return f"DNS name {name.value!r} is outside its dns_names and dns_suffixes"
        elif isinstance(name, x509.IPAddress):
            if not any(name.value.version == net.version and name.value in net for net in self.ip_ranges):  # type: ignore[operator]
                return f"IP address {name.value} is outside its ip_ranges"
        elif isinstance(name, x509.RFC822Name):
            domain = name.value.rsplit("@", 1)[-1].lower()
            if not any(domain == d or (d.startswith(".") and domain.endswith(d)) for d in self.email_domains):
                return f"email {name.value!r} is outside its email_domains"
        elif isinstance(name, x509.UniformResourceIdentifier):
            if not any(name.value.startswith(prefix) for prefix in self.uri_prefixes):
                return f"URI {name.value[:64]!r} starts with none of its uri_prefixes"
        else:
            return f"a {type(name).__name__} name is not allowed"
        return None


def _glob(pattern: str, star: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(star.join(re.escape(part) for part in pattern.split("*")), flags)


def _arn_glob(pattern: str) -> re.Pattern[str]:
    return _glob(pattern, ".*")


def _cn_glob(pattern: str) -> re.Pattern[str]:
    return _glob(pattern, "[^.]*", re.IGNORECASE)


@dataclass(frozen=True)
class Grant:
    """What one caller may do: a rule, or ``rule is None`` for the CA's global limits only."""

    rule: Rule | None

    def check_issue(
        self, profile: str, subject: x509.Name, sans: Sequence[x509.GeneralName], lifetime_days: int
    ) -> None:
        """Raise :class:`NotAuthorized` unless the rule allows this profile, every name and the lifetime."""
        rule = self.rule
        if rule is None:
            return
        if profile not in rule.profiles:
            allowed = ", ".join(rule.profiles) or "none"
            raise NotAuthorized(rule.name, f"profile {profile!r} is not one of its profiles ({allowed})")
        if lifetime_days > rule.max_lifetime_days:
            raise NotAuthorized(
                rule.name,
                f"lifetime_days {lifetime_days} is above its max_lifetime_days {rule.max_lifetime_days} "
                f"(a request without lifetime_days gets the CA's default: send lifetime_days of at most "
                f"{rule.max_lifetime_days})",
            )
        problem = rule.name_problem(subject, sans)
        if problem:
            raise NotAuthorized(rule.name, problem)

    @property
    def revoke_needs_record(self) -> bool:
        """Whether :meth:`check_revoke` needs the certificate's record (``own``, ``matching``)."""
        return self.rule is not None and self.rule.may_revoke in ("own", "matching")

    def check_revoke(self, caller: Caller | None, record: Any) -> None:
        """Raise :class:`NotAuthorized` unless the rule lets ``caller`` revoke the certificate of
        ``record`` (a :class:`~kmsca.records.CertificateRecord`; may be None for ``none``/``any``)."""
        rule = self.rule
        if rule is None or rule.may_revoke == "any":
            return
        if rule.may_revoke == "none":
            raise NotAuthorized(rule.name, "it does not allow revocation (may_revoke none)")
        if rule.may_revoke == "own":
            if caller is None or owner_of(record.requested_by) != caller.owner:
                raise NotAuthorized(
                    rule.name, f"certificate {record.serial_number} was not requested by this caller (may_revoke own)"
                )
            return
        certificate = record.certificate
        try:
            sans: list[x509.GeneralName] = list(
                certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            )
        except x509.ExtensionNotFound:
            sans = []
        problem = (
            f"profile {record.profile!r} is not one of its profiles"
            if record.profile not in rule.profiles
            else rule.name_problem(certificate.subject, sans)
        )
        if problem:
            raise NotAuthorized(rule.name, f"certificate {record.serial_number}: {problem} (may_revoke matching)")


    def check_renew(self, caller: Caller | None, record: Any, revokes: bool) -> None:
        """Raise :class:`NotAuthorized` unless ``caller`` may renew the certificate of ``record``:
        its own certificate, or one its ``may_revoke`` covers (a renewal supersedes the certificate
        renewed); with ``revokes`` (``revoke_renewed_after_hours``) only what ``may_revoke`` covers."""
        rule = self.rule
        if rule is None:
            return
        if not revokes and caller is not None and owner_of(record.requested_by) == caller.owner:
            return
        try:
            self.check_revoke(caller, record)
        except NotAuthorized as exc:
            raise NotAuthorized(
                rule.name, f"renewing certificate {record.serial_number} supersedes it, and {exc.reason}"
            ) from None


UNRESTRICTED = Grant(None)


@dataclass(frozen=True)
class IssuancePolicyDocument:
    """A validated document: its rules in order (see the module docstring)."""

    rules: tuple[Rule, ...]

    def rule_for(self, caller: Caller) -> Rule | None:
        """The first rule naming ``caller``, or None."""
        return next((rule for rule in self.rules if rule.names(caller)), None)


def grant_for(document: IssuancePolicyDocument | None, caller: Caller | None, ca_account_id: str) -> Grant:
    """What ``caller`` may do.

    Args:
        document: the stored document, or None when none is stored.
        caller: the verified caller, or None for a direct Invoke (administrators: unrestricted).
        ca_account_id: the CA's own account (12 digits).

    Raises:
        NotAuthorized: no rule names the caller (or, without a document, it is not of the CA account).
    """
    if caller is None:
        return UNRESTRICTED
    if document is None:
        if caller.account_id == ca_account_id:
            return UNRESTRICTED
        raise NotAuthorized(
            NO_RULE, f"no issuance policy is stored, and account {caller.account_id} is not the CA's account"
        )
    rule = document.rule_for(caller)
    if rule is None:
        raise NotAuthorized(NO_RULE, f"no rule of the issuance policy names {caller.arn}")
    return Grant(rule)


# -- parsing and validation ---------------------------------------------------------------------


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

    def check_cn(value: str, at: str) -> None:
        if len(value) > 64:
            raise _fail(at, f"{value[:64]!r} is longer than 64 characters")

    return Rule(
        name=name,
        accounts=accounts,
        arns=arns,
        organizations=organizations,
        profiles=_strings(raw["profiles"], f"{where}.profiles", known_profile),
        dns_names=_strings(raw.get("dns_names", []), f"{where}.dns_names", _check_dns),
        dns_suffixes=_strings(raw.get("dns_suffixes", []), f"{where}.dns_suffixes", _check_suffix),
        common_names=_strings(raw.get("common_names", []), f"{where}.common_names", check_cn),
        subject=_subject(raw.get("subject", {}), f"{where}.subject"),
        ip_ranges=_networks(raw.get("ip_ranges", []), f"{where}.ip_ranges"),
        email_domains=_strings(raw.get("email_domains", []), f"{where}.email_domains", _check_domain),
        uri_prefixes=_strings(raw.get("uri_prefixes", []), f"{where}.uri_prefixes", _check_uri_prefix),
        max_lifetime_days=lifetime,
        may_revoke=raw["may_revoke"],
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
