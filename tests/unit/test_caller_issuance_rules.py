"""The issuance pipeline with a verified caller and its grant, at a fixed time, with the in-memory
store and a local issuing key: a request outside the caller's rule signs and stores nothing; the
verified ARN is what the inventory records; idempotency keys are the caller's own."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from kmsca.caller_policy import Caller, Grant, grant_for
from kmsca.errors import InvalidRequest, NotAuthorized
from kmsca.issuance import IssuancePolicy, Issuer
from kmsca.models import IssueRequest
from kmsca.policy_document import parse_document

from tests.support.csr import csr_pem, make_csr
from tests.support.local_ca import local_hierarchy
from tests.support.memory_store import MemoryStore
from tests.support.records import NOW

POLICY = IssuancePolicy(max_lifetime_days=365, default_lifetime_days=90)
CA_ACCOUNT = "111111111111"
ALICE = Caller("arn:aws:sts::222222222222:assumed-role/web-ci/run-1", "222222222222")
BOB = Caller("arn:aws:iam::222222222222:user/bob", "222222222222")
DOCUMENT = parse_document(json.dumps({"version": 1, "rules": [
    {"name": "web", "principals": {"accounts": ["222222222222"]}, "profiles": ["client", "server"],
     "dns_suffixes": [".web.example.com"], "max_lifetime_days": 30, "may_revoke": "own"},
]}))  # fmt: skip
KEY = ec.derive_private_key(0xCA11E4, ec.SECP256R1())


def grant(caller: Caller) -> Grant:
    return grant_for(DOCUMENT, caller, CA_ACCOUNT)


def request(*dns: str, **fields: Any) -> IssueRequest:
    csr = csr_pem(make_csr(KEY, None, [x509.DNSName(d) for d in dns]))
    return IssueRequest(csr=csr, lifetime_days=fields.pop("lifetime_days", 30), **fields)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def issuer(store: MemoryStore) -> Issuer:
    return Issuer(local_hierarchy().ca, store, POLICY)


def test_the_verified_caller_is_recorded(issuer: Issuer, store: MemoryStore) -> None:
    outcome = issuer.issue(request("api.web.example.com"), NOW, ALICE, grant(ALICE))
    assert store.get_certificate(outcome.response["serial_number"]).requested_by == ALICE.arn  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("dns", "fields"),
    [
        (("evil-web.example.com",), {}),
        (("api.web.example.com",), {"subject": {"common_name": "root"}}),
        (("api.web.example.com",), {"sans": [{"type": "ip", "value": "10.0.0.1"}]}),
        (("api.web.example.com",), {"lifetime_days": 31}),
    ],
)
def test_outside_the_rule_nothing_is_signed_or_stored(
    issuer: Issuer, store: MemoryStore, dns: tuple[str, ...], fields: dict[str, Any]
) -> None:
    with mock.patch("kmsca.issuance.build_end_entity_certificate") as sign, pytest.raises(NotAuthorized) as refused:
        issuer.issue(request(*dns, **fields), NOW, ALICE, grant(ALICE))
    assert refused.value.rule == "web"
    sign.assert_not_called()
    assert store.certificates == {}


def test_a_label_is_refused_when_the_caller_is_verified(issuer: Issuer) -> None:
    with pytest.raises(InvalidRequest, match="requested_by"):
        issuer.issue(request("api.web.example.com", requested_by="someone"), NOW, ALICE, grant(ALICE))


def test_idempotency_keys_are_per_caller(issuer: Issuer, store: MemoryStore) -> None:
    same = request("a.web.example.com", idempotency_key="k-1")  # ECDSA CSRs differ each time: build one
    first = issuer.issue(same, NOW, ALICE, grant(ALICE))
    again = issuer.issue(same, NOW, ALICE, grant(ALICE))
    assert again.replayed and again.response == first.response
    other = issuer.issue(request("b.web.example.com", idempotency_key="k-1"), NOW, BOB, grant(BOB))
    assert not other.replayed and other.response["serial_number"] != first.response["serial_number"]
