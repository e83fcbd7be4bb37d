"""The per-caller issuance policy: which verified IAM principal may get which certificates, and
revoke which.

A caller is known only on the function-URL path (``AuthType: AWS_IAM``: Lambda verifies the SigV4
signature and puts the principal in ``requestContext.authorizer.iam``). A direct Lambda Invoke
does not tell the function who called: it is the administrators' path (it needs
``lambda:InvokeFunction`` on the function, which the operator policies no longer grant), and no
issuance policy applies to it (:class:`Grant` ``UNRESTRICTED``: the CA's global limits only).

The document (JSON, one table item ``POLICY#issuance``, see :mod:`kmsca.policy_store`; parsed
and validated by :func:`kmsca.policy_document.parse_document`)::

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
- ``edge_targets``: the edge targets (names in the registry, ``local`` = the CA stack's own edge
  stack) into whose ACM us-east-1 a ``cloudfront-origin`` certificate may be imported; required
  when ``profiles`` has ``cloudfront-origin`` and refused otherwise, so that a caller can never
  import into another workload account's ACM by naming its target.
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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .errors import NotAuthorized
from .names import SUBJECT_FIELDS
from .targets import LOCAL_TARGET as LOCAL_EDGE_TARGET

ORIGIN_PROFILE = "cloudfront-origin"

NO_RULE = "(none)"

#: Subject attribute names of a rule's ``subject`` (request field names) -> OID. commonName is
#: decided by ``common_names`` and the DNS names.
SUBJECT_ATTRIBUTES: dict[str, ObjectIdentifier] = {
    **{name: oid for name, (oid, _) in SUBJECT_FIELDS.items() if name != "common_name"},
    "domain_component": NameOID.DOMAIN_COMPONENT,
    "serial_number": NameOID.SERIAL_NUMBER,
}
_ATTRIBUTE_NAMES = {oid: name for name, oid in SUBJECT_ATTRIBUTES.items()}

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
    edge_targets: tuple[str, ...] = ()

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
        self,
        profile: str,
        subject: x509.Name,
        sans: Sequence[x509.GeneralName],
        lifetime_days: int,
        edge_target: str | None = None,
    ) -> None:
        """Raise :class:`NotAuthorized` unless the rule allows this profile, every name, the
        lifetime and, for ``cloudfront-origin``, the edge target (``edge_target``; None = ``local``)."""
        rule = self.rule
        if rule is None:
            return
        if profile not in rule.profiles:
            allowed = ", ".join(rule.profiles) or "none"
            raise NotAuthorized(rule.name, f"profile {profile!r} is not one of its profiles ({allowed})")
        if profile == ORIGIN_PROFILE and (edge_target or LOCAL_EDGE_TARGET) not in rule.edge_targets:
            allowed = ", ".join(rule.edge_targets) or "none"
            raise NotAuthorized(
                rule.name,
                f"edge target {edge_target or LOCAL_EDGE_TARGET!r} is not one of its edge_targets ({allowed})",
            )
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
        target = getattr(record, "acm_target", None) or LOCAL_EDGE_TARGET
        problem = (
            f"profile {record.profile!r} is not one of its profiles"
            if record.profile not in rule.profiles
            else f"edge target {target!r} is not one of its edge_targets"
            if record.profile == ORIGIN_PROFILE and target not in rule.edge_targets
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
