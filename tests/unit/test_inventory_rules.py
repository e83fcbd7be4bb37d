"""The inventory's listing rules on the in-memory store at a fixed time: order, the entries' fields,
filters, the notAfter range, pages and their ``next_token`` (also one issued before the store was
split), the :data:`~kmsca.inventory.MAX_QUERIES` stop, and refused tokens."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from kmsca.errors import InvalidRequest
from kmsca.inventory import MAX_QUERIES, Inventory, ListQuery
from kmsca.records import iso

from tests.support.memory_store import MemoryStore
from tests.support.records import NOW, certificate_record

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0300c707-df1d-45aa-bd8a-79432d57d803"


def _store(count: int, ca: str = "issuing") -> MemoryStore:
    """``count`` certificates ``01``, ``02``, ... expiring one day after the other."""
    store = MemoryStore()
    for i in range(1, count + 1):
        store.put_certificate(certificate_record(f"{i:02x}", ca=ca, not_after=NOW + timedelta(days=i)))
    return store


def _serials(page: dict[str, Any]) -> list[str]:
    return [entry["serial_number"] for entry in page["certificates"]]


def _token(pk: str, ca: str, not_after: str) -> str:
    """A token as the inventory has always written it (base64 JSON of the index key)."""
    return base64.urlsafe_b64encode(json.dumps({"pk": pk, "ca": ca, "not_after": not_after}).encode()).decode()


def test_entries_are_listed_earliest_expiry_first_with_the_list_fields() -> None:
    store = MemoryStore()
    store.put_certificate(certificate_record("02", not_after=NOW + timedelta(days=9)))
    full = replace(
        certificate_record("01", not_after=NOW + timedelta(days=3), acm_certificate_arn=ARN, predecessor="7f"),
        sans=("dns:a.example.com",),
        requested_by="ci",
    )
    store.put_certificate(full)
    store.revoke("02", "keyCompromise", NOW, None)
    page = Inventory(store).list_page(ListQuery())
    assert page == {
        "certificates": [
            {
                "serial_number": "01",
                "subject": "CN=device-01",
                "sans": ["dns:a.example.com"],
                "profile": "client",
                "status": "issued",
                "not_after": iso(NOW + timedelta(days=3)),
                "issued_at": iso(NOW),
                "requested_by": "ci",
                "acm_certificate_arn": ARN,
                "predecessor": "7f",
            },
            {
                "serial_number": "02",
                "subject": "CN=device-02",
                "profile": "client",
                "status": "revoked",
                "not_after": iso(NOW + timedelta(days=9)),
                "issued_at": iso(NOW),
                "revocation_reason": "keyCompromise",
            },
        ],
        "queries": 1,
    }


def test_pages_follow_each_other_until_the_token_is_absent() -> None:
    inventory = Inventory(_store(5))
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = inventory.list_page(ListQuery(page_size=2, next_token=token))
        pages += 1
        seen += _serials(page)
        token = page.get("next_token")
        if token is None:
            break
    assert seen == ["01", "02", "03", "04", "05"] and pages == 3


def test_a_page_filled_by_the_last_entry_of_the_range_has_no_token() -> None:
    page = Inventory(_store(2)).list_page(ListQuery(page_size=2))
    assert _serials(page) == ["01", "02"] and "next_token" not in page


def test_a_token_is_the_base64_json_of_the_last_listed_entrys_key() -> None:
    page = Inventory(_store(3)).list_page(ListQuery(page_size=1))
    plain = json.loads(base64.urlsafe_b64decode(page["next_token"]))
    assert plain == {"pk": "CERT#01", "ca": "issuing", "not_after": iso(NOW + timedelta(days=1))}


def test_a_token_written_before_the_store_split_is_accepted() -> None:
    token = _token("CERT#02", "issuing", iso(NOW + timedelta(days=2)))
    assert _serials(Inventory(_store(4)).list_page(ListQuery(next_token=token))) == ["03", "04"]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage!", "next_token is not a token"),
        (base64.urlsafe_b64encode(b'{"pk": "CERT#01"}').decode(), "next_token is not a token"),
        (base64.urlsafe_b64encode(b'{"pk": 1, "ca": "issuing", "not_after": "x"}').decode(), "not a token"),
        (_token("CERT#01", "root", iso(NOW)), "another listing"),
        (_token("RENEWAL#01", "issuing", iso(NOW)), "another listing"),
    ],
    ids=["not-base64-json", "missing-fields", "not-strings", "another-ca", "not-a-certificate-key"],
)
def test_a_bad_token_is_refused(token: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Inventory(_store(2)).list_page(ListQuery(next_token=token))


def test_a_selective_filter_stops_after_max_queries_with_a_token() -> None:
    store = _store(MAX_QUERIES + 2)
    inventory = Inventory(store)
    wanted = f"{MAX_QUERIES + 2:02x}"
    first = inventory.list_page(ListQuery(page_size=1, name_contains=f"device-{wanted}"))
    assert first["certificates"] == [] and first["queries"] == MAX_QUERIES and "next_token" in first
    second = inventory.list_page(ListQuery(page_size=1, name_contains=f"device-{wanted}", next_token=first["next_token"]))
    assert _serials(second) == [wanted] and second["queries"] == 2 and "next_token" not in second


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "revoked"}, ["02"]),
        ({"status": "issued"}, ["01", "03"]),
        ({"profile": "server"}, ["03"]),
        ({"name_contains": "DEVICE-01"}, ["01"]),
        ({"name_contains": "B.EXAMPLE"}, ["03"]),
        ({"requested_by": "ops"}, ["01"]),
        ({"acm_certificate_arn": ARN}, ["03"]),
    ],
)
def test_filters(filters: dict[str, Any], expected: list[str]) -> None:
    store = MemoryStore()
    store.put_certificate(replace(certificate_record("01", not_after=NOW + timedelta(days=1)), requested_by="ops"))
    store.put_certificate(certificate_record("02", not_after=NOW + timedelta(days=2)))
    server = certificate_record("03", not_after=NOW + timedelta(days=3), acm_certificate_arn=ARN)
    store.put_certificate(replace(server, profile="server", sans=("dns:b.example.com",)))
    store.revoke("02", "superseded", NOW, None)
    assert _serials(Inventory(store).list_page(ListQuery(**filters))) == expected


@pytest.mark.parametrize(
    ("after", "before", "expected"),
    [
        (1, 3, ["01", "02", "03"]),  # both bounds: BETWEEN, inclusive
        (2, None, ["02", "03", "04"]),  # expiring_after alone: inclusive
        (None, 2, ["01"]),  # expiring_before alone: exclusive
    ],
)
def test_the_expiry_range(after: int | None, before: int | None, expected: list[str]) -> None:
    query = ListQuery(
        expiring_after=NOW + timedelta(days=after) if after else None,
        expiring_before=NOW + timedelta(days=before) if before else None,
    )
    assert _serials(Inventory(_store(4)).list_page(query)) == expected


def test_another_cas_certificates_are_not_listed() -> None:
    store = _store(2, ca="other")
    assert Inventory(store).list_page(ListQuery())["certificates"] == []
    assert _serials(Inventory(store).list_page(ListQuery(ca="other"))) == ["01", "02"]
