"""moto's DynamoDB once patched: writes are atomic (CRL numbers depend on it) and, with a lag set,
global secondary indexes are eventually consistent, as DynamoDB's are."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support.aws import create_ca_table
from tests.support.wait import wait_until
from utils.sandbox.dynamodb_patch import (
    get_gsi_lag,
    gsi_lag,
    patch_moto_dynamodb,
    set_gsi_lag,
    unpatch_moto_dynamodb,
)


def test_concurrent_atomic_counter_hands_out_distinct_numbers(aws: None) -> None:
    dynamodb = boto3.client("dynamodb")
    create_ca_table(dynamodb, "counter")
    numbers: list[int] = []
    barrier = threading.Barrier(30)

    def add() -> None:
        barrier.wait()
        response = dynamodb.update_item(
            TableName="counter", Key={"pk": {"S": "CRLNUMBER#issuing"}}, UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW",
        )
        numbers.append(int(response["Attributes"]["n"]["N"]))

    threads = [threading.Thread(target=add) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 31))


# Eventually consistent global secondary indexes ----------------------------------------------

LAG = 1.0  # wide enough that a loaded machine does the writes and the read inside it
NOT_AFTER = "2027-01-01T00:00:00Z"


@pytest.fixture
def table(aws: None) -> Iterator[Any]:
    """The CA table (schema from template.yaml) with a GSI lag of LAG seconds."""
    dynamodb = boto3.client("dynamodb")
    create_ca_table(dynamodb, "ca")
    with gsi_lag(LAG):
        yield dynamodb


def revoked_by_ca(dynamodb: Any, consistent: bool = False) -> list[str]:
    extra: dict[str, Any] = {"ConsistentRead": True} if consistent else {}
    response = dynamodb.query(
        TableName="ca", IndexName="RevokedByCa", KeyConditionExpression="revoked_ca = :ca",
        ExpressionAttributeValues={":ca": {"S": "issuing"}}, **extra,
    )
    return [item["pk"]["S"] for item in response["Items"]]


def put_revoked(dynamodb: Any, pk: str, reason: str = "keyCompromise") -> None:
    dynamodb.put_item(TableName="ca", Item={
        "pk": {"S": pk}, "revoked_ca": {"S": "issuing"}, "not_after": {"S": NOT_AFTER},
        "crl_entry": {"S": reason},
    })


def test_a_put_is_not_in_the_gsi_until_the_lag_has_passed(table: Any) -> None:
    put_revoked(table, "CERT#01")
    assert revoked_by_ca(table) == []
    scanned = table.scan(TableName="ca", IndexName="RevokedByCa")["Items"]
    assert scanned == []
    assert wait_until(lambda: revoked_by_ca(table), timeout=LAG + 10, what="the put in the GSI") == ["CERT#01"]


def test_an_update_that_adds_the_sparse_index_key_is_not_visible_at_once(table: Any) -> None:
    with gsi_lag(0):  # an item the GSIs have seen (written without a lag: no waiting)
        table.put_item(TableName="ca", Item={"pk": {"S": "CERT#02"}, "not_after": {"S": NOT_AFTER}})
    table.update_item(
        TableName="ca", Key={"pk": {"S": "CERT#02"}}, UpdateExpression="SET revoked_ca = :ca",
        ExpressionAttributeValues={":ca": {"S": "issuing"}},
    )
    assert revoked_by_ca(table) == []
    assert wait_until(lambda: revoked_by_ca(table), timeout=LAG + 10, what="the update in the GSI") == ["CERT#02"]


def test_the_gsi_shows_the_previous_image_during_the_lag(table: Any) -> None:
    with gsi_lag(0):  # an image the GSIs have seen (written without a lag: no waiting)
        put_revoked(table, "CERT#03", "keyCompromise")
    assert revoked_by_ca(table) == ["CERT#03"]
    put_revoked(table, "CERT#03", "superseded")
    table.delete_item(TableName="ca", Key={"pk": {"S": "CERT#03"}})
    items = table.query(
        TableName="ca", IndexName="RevokedByCa", KeyConditionExpression="revoked_ca = :ca",
        ExpressionAttributeValues={":ca": {"S": "issuing"}},
    )["Items"]
    assert [item["crl_entry"]["S"] for item in items] == ["keyCompromise"]  # deleted, still indexed
    wait_until(lambda: revoked_by_ca(table) == [], timeout=LAG + 10, what="the delete in the GSI")


def test_base_table_reads_see_a_write_at_once(table: Any) -> None:
    put_revoked(table, "CERT#04")
    assert table.get_item(TableName="ca", Key={"pk": {"S": "CERT#04"}})["Item"]["revoked_ca"] == {"S": "issuing"}
    assert table.get_item(TableName="ca", Key={"pk": {"S": "CERT#04"}}, ConsistentRead=True)["Item"]
    base = table.query(
        TableName="ca", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "CERT#04"}}
    )["Items"]
    assert [item["pk"]["S"] for item in base] == ["CERT#04"]
    assert revoked_by_ca(table) == []


def test_consistent_read_on_a_gsi_is_refused(table: Any) -> None:
    with pytest.raises(ClientError) as refused:
        revoked_by_ca(table, consistent=True)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Consistent reads are not supported on global secondary indexes" in str(refused.value)


def test_lag_zero_changes_nothing(aws: None) -> None:
    dynamodb = boto3.client("dynamodb")
    create_ca_table(dynamodb, "ca")
    assert get_gsi_lag() == 0
    put_revoked(dynamodb, "CERT#05")
    assert revoked_by_ca(dynamodb) == ["CERT#05"]
    with gsi_lag(LAG):
        assert revoked_by_ca(dynamodb) == ["CERT#05"]  # written before the lag was set
    assert get_gsi_lag() == 0


def test_negative_lag_is_refused() -> None:
    with pytest.raises(ValueError):
        set_gsi_lag(-1)


def test_without_the_patch_moto_indexes_at_once() -> None:
    """Why the patch exists (and that unpatch restores moto's behaviour)."""
    unpatch_moto_dynamodb()
    try:
        with gsi_lag(LAG), mock_aws():
            dynamodb = boto3.client("dynamodb")
            create_ca_table(dynamodb, "ca")
            put_revoked(dynamodb, "CERT#06")
            assert revoked_by_ca(dynamodb) == ["CERT#06"]
    finally:
        patch_moto_dynamodb()
