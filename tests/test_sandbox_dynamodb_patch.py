"""moto's DynamoDB writes are atomic once patched, as DynamoDB's are (CRL numbers depend on it)."""

from __future__ import annotations

import threading

import boto3

from tests.conftest import create_ca_table


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
