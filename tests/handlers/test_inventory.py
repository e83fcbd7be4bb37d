"""Inventory (list, show) and renewal through the real handlers on moto: filters, pagination,
serial forms, predecessor/successor links, refusals with their codes."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from kmsca.errors import CaError

from tests.support.aws import CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr


@pytest.fixture
def api(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> Any:
    issue = load_handler("issue", bootstrapped.env, monkeypatch)
    revoke = load_handler("revoke", bootstrapped.env, monkeypatch)
    inventory = load_handler("inventory", bootstrapped.env, monkeypatch)

    class Api:
        resources = bootstrapped

        def issue(self, name: str = "device", **request: Any) -> dict[str, Any]:
            key = ec.generate_private_key(ec.SECP256R1())
            body = {"csr": csr_pem(make_csr(key, common_name=name)), **request}
            return issue.handler(body, lambda_context)

        def revoke(self, serial: str, reason: str = "keyCompromise") -> dict[str, Any]:
            return revoke.handler({"serial_number": serial, "reason": reason}, lambda_context)

        def list(self, **request: Any) -> dict[str, Any]:
            return inventory.handler({"operation": "list", **request}, lambda_context)

        def show(self, serial: str) -> dict[str, Any]:
            return inventory.handler({"operation": "show", "serial_number": serial}, lambda_context)

    return Api()


def serials(page: dict[str, Any]) -> list[str]:
    return [entry["serial_number"] for entry in page["certificates"]]


def test_list_returns_every_certificate_earliest_expiry_first(api: Any) -> None:
    short = api.issue("a", lifetime_days=10)["serial_number"]
    long = api.issue("b", lifetime_days=20)["serial_number"]
    assert serials(api.list()) == [short, long]


def test_list_pages_with_a_token_until_the_last_page(api: Any) -> None:
    issued = [api.issue(f"d{i}", lifetime_days=i + 1)["serial_number"] for i in range(5)]
    seen: list[str] = []
    token = None
    while True:
        page = api.list(page_size=2, **({"next_token": token} if token else {}))
        seen += serials(page)
        token = page.get("next_token")
        if token is None:
            break
    assert seen == issued


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "revoked"}, ["revoked"]),
        ({"status": "issued"}, ["alpha", "beta"]),
        ({"name_contains": "ALPHA"}, ["alpha"]),
        ({"requested_by": "arn:aws:iam::111122223333:user/ops"}, ["beta"]),
        ({"expiring_before": "2099-01-01T00:00:00Z", "expiring_after": "2000-01-01T00:00:00Z"}, None),
    ],
)
def test_list_filters(api: Any, filters: dict[str, Any], expected: list[str] | None) -> None:
    names = {
        api.issue("alpha", lifetime_days=5)["serial_number"]: "alpha",
        api.issue("beta", lifetime_days=6, requested_by="arn:aws:iam::111122223333:user/ops")["serial_number"]: "beta",
    }
    revoked = api.issue("revoked", lifetime_days=7)["serial_number"]
    names[revoked] = "revoked"
    api.revoke(revoked)
    listed = [names[s] for s in serials(api.list(**filters))]
    assert listed == (expected if expected is not None else ["alpha", "beta", "revoked"])


def test_list_expiring_before_excludes_later_certificates(api: Any) -> None:
    soon = api.issue("soon", lifetime_days=3)["serial_number"]
    api.issue("later", lifetime_days=60)
    due = api.show(soon)["not_after"]
    assert serials(api.list(expiring_before=due)) == []
    assert serials(api.list(expiring_before="2100-01-01T00:00:00Z", page_size=1)) == [soon]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"next_token": "garbage!"}, "next_token is not a token"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"status": "expired"}, "status"),
        ({"expiring_before": "tomorrow"}, "expiring_before"),
        ({"colour": "red"}, "colour is not a field"),
    ],
)
def test_bad_list_requests_are_refused_with_a_code(api: Any, request_: dict[str, Any], message: str) -> None:
    with pytest.raises(CaError) as info:
        api.list(**request_)
    assert info.value.code == "InvalidRequest" and message in info.value.message


def test_an_unknown_operation_is_refused(api: Any, lambda_context: FakeContext) -> None:
    with pytest.raises(CaError, match='operation must be "list" or "show"'):
        api.list(operation="scan")


def test_show_accepts_any_serial_form(api: Any) -> None:
    serial = api.issue("shown", requested_by="ci")["serial_number"]
    colons = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()
    shown = api.show(colons)
    assert shown["serial_number"] == serial and shown["requested_by"] == "ci"
    assert shown["status"] == "issued" and shown["expired"] is False
    assert len(shown["fingerprint_sha256"]) == 64 and shown["certificate"].startswith("-----BEGIN CERTIFICATE")


def test_show_of_an_unknown_serial_is_certificate_not_found(api: Any) -> None:
    with pytest.raises(CaError) as info:
        api.show("0a1b")
    assert info.value.code == "CertificateNotFound"


def test_show_of_a_malformed_serial_is_invalid_request(api: Any) -> None:
    with pytest.raises(CaError) as info:
        api.show("xyz")
    assert info.value.code == "InvalidRequest"


# Renewal ---------------------------------------------------------------------------------------


def test_a_renewal_keeps_subject_and_sans_and_links_both_ways(api: Any) -> None:
    old = api.issue("renewed", sans=[{"type": "dns", "value": "renewed.example.com"}])
    new = api.issue("ignored-csr-name", renews=old["serial_number"])
    assert new["subject"] == old["subject"]
    shown_new, shown_old = api.show(new["serial_number"]), api.show(old["serial_number"])
    assert shown_new["sans"] == ["dns:renewed.example.com"]
    assert shown_new["predecessor"] == old["serial_number"]
    assert shown_old["successor"] == new["serial_number"] and shown_old["status"] == "issued"
    assert "revoke_at" not in shown_old


def test_a_certificate_is_renewed_once(api: Any) -> None:
    old = api.issue("once")["serial_number"]
    api.issue(renews=old)
    with pytest.raises(CaError) as info:
        api.issue(renews=old)
    assert info.value.code == "RenewalRefused" and "already renewed" in info.value.message
    assert len(serials(api.list())) == 2  # nothing was stored for the refused renewal


def test_a_revoked_certificate_is_not_renewed(api: Any) -> None:
    old = api.issue("gone")["serial_number"]
    api.revoke(old)
    with pytest.raises(CaError) as info:
        api.issue(renews=old)
    assert info.value.code == "RenewalRefused" and "revoked" in info.value.message


def test_a_renewal_of_another_profile_is_refused(api: Any) -> None:
    old = api.issue("srv", profile="server", sans=[{"type": "dns", "value": "srv.example.com"}])["serial_number"]
    with pytest.raises(CaError) as info:
        api.issue(renews=old)  # profile client
    assert info.value.code == "RenewalRefused" and "'server'" in info.value.message


def test_a_renewal_that_names_a_subject_is_refused(api: Any) -> None:
    old = api.issue("keep")["serial_number"]
    with pytest.raises(CaError) as info:
        api.issue(renews=old, subject={"common_name": "other"})
    assert info.value.code == "InvalidRequest" and "send neither subject nor sans" in info.value.message


def test_a_renewal_respects_the_lifetime_policy(api: Any) -> None:
    old = api.issue("policy")["serial_number"]
    with pytest.raises(CaError) as info:
        api.issue(renews=old, lifetime_days=366)
    assert info.value.code == "LifetimeExceeded"
    assert "successor" not in api.show(old)


def test_a_grace_period_records_when_the_predecessor_is_due(api: Any) -> None:
    old = api.issue("grace")["serial_number"]
    api.issue(renews=old, revoke_renewed_after_hours=48)
    assert api.show(old)["revoke_at"] > api.show(old)["renewed_at"]


def test_a_grace_period_without_a_renewal_is_refused(api: Any) -> None:
    with pytest.raises(CaError) as info:
        api.issue(revoke_renewed_after_hours=1)
    assert info.value.code == "InvalidRequest"


def test_an_unreadable_record_is_left_out_of_the_listing_the_answer_unchanged(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupted index entry never stops the listing; the answer keeps its shape (the handler
    counts the record in UnreadableRecords, which UnreadableRecordsAlarm watches)."""
    good = api.issue("a")["serial_number"]
    bad = api.issue("b")["serial_number"]
    resources = api.resources
    resources.dynamodb.update_item(
        TableName=resources.table,
        Key={"pk": {"S": f"CERT#{bad}"}},
        UpdateExpression="SET issued_at = :bad",
        ExpressionAttributeValues={":bad": {"S": "not-a-time"}},
    )
    capsys.readouterr()
    page = api.list()
    assert serials(page) == [good]
    assert set(page) == {"certificates", "queries"}
    assert '"UnreadableRecords":[1.0]' in capsys.readouterr().out  # the metric UnreadableRecordsAlarm watches
