"""The index by notAfter on DynamoDB (botocore Stubber): the exact Query requests the inventory and
the expiry job make (the benchmark counts them; a token's key is the ``ExclusiveStartKey`` as
before), the ``LastEvaluatedKey`` given back as the inventory's token, and a failed Query translated
into :class:`~kmsca.errors.AwsCallFailed`."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from kmsca.errors import AwsCallFailed
from kmsca.events import Event, EventPublisher
from kmsca.expiry import ExpiryJob
from kmsca.inventory import Inventory, ListQuery
from kmsca.notify import Notifier
from kmsca.records import iso
from kmsca.store import DynamoDbCertificateStore

from tests.support.aws import REGION
from tests.support.memory_store import MemoryNoticeMarkers
from tests.support.records import NOW

TABLE = "ca-table"


def _key(serial: str, not_after: str, ca: str = "issuing") -> dict[str, Any]:
    return {"pk": {"S": f"CERT#{serial}"}, "ca": {"S": ca}, "not_after": {"S": not_after}}


def _item(serial: str, not_after: str, status: str = "issued") -> dict[str, Any]:
    return {
        **_key(serial, not_after),
        "serial_number": {"S": serial},
        "subject": {"S": f"CN={serial}"},
        "profile": {"S": "client"},
        "status": {"S": status},
        "issued_at": {"S": iso(NOW)},
    }


def _token(serial: str, not_after: str) -> str:
    plain = {"pk": f"CERT#{serial}", "ca": "issuing", "not_after": not_after}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode("ascii")


def _store() -> tuple[Any, DynamoDbCertificateStore]:
    client: Any = boto3.client("dynamodb", region_name=REGION)
    return client, DynamoDbCertificateStore(client, TABLE)


def test_a_list_page_is_the_same_query_as_before_and_its_token_the_last_evaluated_key() -> None:
    client, store = _store()
    after, before = NOW, NOW + timedelta(days=30)
    day1, day2 = iso(NOW + timedelta(days=1)), iso(NOW + timedelta(days=2))
    with Stubber(client) as stub:
        stub.add_response(
            "query",
            {"Items": [_item("02", day2)], "LastEvaluatedKey": _key("02", day2)},
            {
                "TableName": TABLE,
                "IndexName": "ByCaExpiry",
                "KeyConditionExpression": "ca = :ca AND not_after BETWEEN :after AND :before",
                "ExpressionAttributeValues": {
                    ":ca": {"S": "issuing"},
                    ":after": {"S": iso(after)},
                    ":before": {"S": iso(before)},
                },
                "Limit": 1,
                "ExclusiveStartKey": _key("01", day1),
            },
        )
        page = Inventory(store).list_page(
            ListQuery(expiring_after=after, expiring_before=before, page_size=1, next_token=_token("01", day1))
        )
        stub.assert_no_pending_responses()
    assert page["queries"] == 1 and page["next_token"] == _token("02", day2)


@pytest.mark.parametrize(
    ("query", "condition", "values"),
    [
        (ListQuery(), "ca = :ca", {}),
        (ListQuery(expiring_after=NOW), "ca = :ca AND not_after >= :after", {":after": {"S": iso(NOW)}}),
        (ListQuery(expiring_before=NOW), "ca = :ca AND not_after < :before", {":before": {"S": iso(NOW)}}),
    ],
    ids=["no-range", "after", "before"],
)
def test_the_key_condition_of_each_range(query: ListQuery, condition: str, values: dict[str, Any]) -> None:
    client, store = _store()
    with Stubber(client) as stub:
        stub.add_response(
            "query",
            {"Items": []},
            {
                "TableName": TABLE,
                "IndexName": "ByCaExpiry",
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": {":ca": {"S": "issuing"}, **values},
                "Limit": 50,
            },
        )
        assert Inventory(store).list_page(query) == {"certificates": [], "queries": 1}


class _Publisher(EventPublisher):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Any, attempts: int = 1) -> list[tuple[Event, str]]:
        self.events += events
        return []


class _Notifier(Notifier):
    def __init__(self) -> None:
        pass

    def notify(self, event: str, subject: str, details: Any) -> None:
        pass


def test_the_expiry_job_reads_every_page_of_its_window_and_counts_them() -> None:
    client, store = _store()
    horizon = NOW + timedelta(days=30)
    day1, day2 = iso(NOW + timedelta(days=1)), iso(NOW + timedelta(days=2))
    request = {
        "TableName": TABLE,
        "IndexName": "ByCaExpiry",
        "KeyConditionExpression": "ca = :ca AND not_after BETWEEN :after AND :before",
        "ExpressionAttributeValues": {":ca": {"S": "issuing"}, ":after": {"S": iso(NOW)}, ":before": {"S": iso(horizon)}},
    }
    publisher = _Publisher()
    job = ExpiryJob(store, MemoryNoticeMarkers(), publisher, _Notifier())
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": [_item("01", day1)], "LastEvaluatedKey": _key("01", day1)}, request)
        stub.add_response(
            "query", {"Items": [_item("02", day2, "revoked")]}, {**request, "ExclusiveStartKey": _key("01", day1)}
        )
        stub.add_response("batch_get_item", {"Responses": {TABLE: []}})
        stub.add_response("query", {"Items": []})  # the supersessions due
        report = job.run(NOW)
        stub.assert_no_pending_responses()
    assert report.queries == 2 and [n["serial_number"] for n in report.notices] == ["01"]
    assert [e.detail["threshold_days"] for e in publisher.events] == [1]


def _unreadable_item(serial: str) -> dict[str, Any]:
    """An index item whose notAfter is not a time (a corrupted record)."""
    return {**_item(serial, "not-a-time"), "not_after": {"S": "not-a-time"}}


def test_an_unreadable_entry_is_left_out_of_the_listing_and_reported() -> None:
    """As elsewhere (CRL, KVS sync): a record that cannot be read never stops the others."""
    client, store = _store()
    day1, day2 = iso(NOW + timedelta(days=1)), iso(NOW + timedelta(days=2))
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": [_item("01", day1), _unreadable_item("03"), _item("02", day2)]})
        page = Inventory(store).list_page(ListQuery())
        stub.assert_no_pending_responses()
    assert [entry["serial_number"] for entry in page["certificates"]] == ["01", "02"]
    [record] = page["unreadable"]
    assert (record.key, record.serial_number, record.skipped) == ("CERT#03", "03", True)
    assert "not listed" in record.problem


def test_the_expiry_job_skips_an_unreadable_entry_and_reports_it() -> None:
    client, store = _store()
    publisher = _Publisher()
    job = ExpiryJob(store, MemoryNoticeMarkers(), publisher, _Notifier())
    with Stubber(client) as stub:
        stub.add_response("query", {"Items": [_unreadable_item("03"), _item("01", iso(NOW + timedelta(days=1)))]})
        stub.add_response("batch_get_item", {"Responses": {TABLE: []}})
        stub.add_response("query", {"Items": []})  # the supersessions due
        report = job.run(NOW)
        stub.assert_no_pending_responses()
    assert [n["serial_number"] for n in report.notices] == ["01"]
    assert [entry["key"] for entry in report.unreadable] == ["CERT#03"]


def test_a_failed_query_is_aws_call_failed() -> None:
    client, store = _store()
    with Stubber(client) as stub, pytest.raises(AwsCallFailed) as caught:
        stub.add_client_error("query", "ProvisionedThroughputExceededException", http_status_code=400)
        Inventory(store).list_page(ListQuery())
    failure = caught.value
    assert (failure.service, failure.operation, failure.error_code) == (
        "dynamodb",
        "Query",
        "ProvisionedThroughputExceededException",
    )
