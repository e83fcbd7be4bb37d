"""The moto S3 patch: HeadObject/GetObject of a missing key is 403 AccessDenied unless the caller
may s3:ListBucket (S3 API Reference, HeadObject/GetObject "Permissions"), and every request sees
whole objects while others replace them (S3 User Guide, "Amazon S3 data consistency model");
through moto in server mode as the sandbox runs it, and in process as the handler tests run it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from utils.sandbox.s3_patch import (
    S3RequestInfo,
    access_key_id_of,
    patch_moto_s3,
    set_list_bucket_checker,
    unpatch_moto_s3,
)

BUCKET = "ca-public"
LISTER = "AKIALISTER0000000000"  # an access key id the checker allows to ListBucket
READER = "AKIAREADER0000000000"  # may GetObject, not ListBucket


class Checker:
    """Allows ListBucket to LISTER only, and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[S3RequestInfo] = []

    def __call__(self, info: S3RequestInfo) -> bool:
        self.calls.append(info)
        return info.access_key_id == LISTER


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def checker(endpoint: str) -> Iterator[Checker]:
    patch_moto_s3()
    checker = Checker()
    patch_moto_s3(checker)
    patch_moto_s3()  # idempotent, keeps the checker
    s3(endpoint, LISTER).create_bucket(Bucket=BUCKET)
    s3(endpoint, LISTER).put_object(Bucket=BUCKET, Key="crl/issuing.crl", Body=b"crl")
    try:
        yield checker
    finally:
        unpatch_moto_s3()


def s3(endpoint: str, access_key_id: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=access_key_id, aws_secret_access_key="secret",
    )


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(Bucket=BUCKET, **kwargs)
    response: dict[str, Any] = raised.value.response
    return response


def test_head_of_a_missing_key_without_list_bucket_is_403(endpoint: str, checker: Checker) -> None:
    error = error_of(s3(endpoint, READER).head_object, Key="crl/missing.crl")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "403"
    asked = checker.calls[-1]
    assert (asked.operation, asked.bucket, asked.key, asked.access_key_id) == (
        "HeadObject", BUCKET, "crl/missing.crl", READER
    )
    assert asked.authorization is not None and READER in asked.authorization


def test_get_of_a_missing_key_without_list_bucket_is_access_denied(endpoint: str, checker: Checker) -> None:
    error = error_of(s3(endpoint, READER).get_object, Key="crl/missing.crl")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["Error"]["Message"] == "Access Denied"
    assert checker.calls[-1].operation == "GetObject"


def test_missing_key_with_list_bucket_is_404(endpoint: str, checker: Checker) -> None:
    client = s3(endpoint, LISTER)
    head = error_of(client.head_object, Key="crl/missing.crl")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 404
    get = error_of(client.get_object, Key="crl/missing.crl")
    assert get["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert get["Error"]["Code"] == "NoSuchKey"


def test_an_existing_key_is_unaffected(endpoint: str, checker: Checker) -> None:
    client = s3(endpoint, READER)
    assert client.head_object(Bucket=BUCKET, Key="crl/issuing.crl")["ContentLength"] == 3
    assert client.get_object(Bucket=BUCKET, Key="crl/issuing.crl")["Body"].read() == b"crl"
    assert checker.calls == []  # the checker is asked only about missing keys


def test_without_a_checker_a_missing_key_is_404(endpoint: str, checker: Checker) -> None:
    set_list_bucket_checker(None)
    error = error_of(s3(endpoint, READER).head_object, Key="crl/missing.crl")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_without_the_patch_moto_answers_404(endpoint: str, checker: Checker) -> None:
    """Why the patch exists (and that unpatch restores moto's behaviour)."""
    unpatch_moto_s3()
    try:
        set_list_bucket_checker(checker)  # no effect without the patch
        head = error_of(s3(endpoint, READER).head_object, Key="crl/missing.crl")
        get = error_of(s3(endpoint, READER).get_object, Key="crl/missing.crl")
        assert (head["ResponseMetadata"]["HTTPStatusCode"], get["Error"]["Code"]) == (404, "NoSuchKey")
    finally:
        patch_moto_s3()


@pytest.mark.parametrize(
    ("authorization", "query", "expected"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKIA1/20261121/us-east-1/s3/aws4_request, SignedHeaders=host, "
         "Signature=ab", None, "AKIA1"),
        ("AWS AKIA2:c2lnbmF0dXJl", None, "AKIA2"),
        (None, {"X-Amz-Credential": ["AKIA3/20261121/us-east-1/s3/aws4_request"]}, "AKIA3"),
        (None, {"AWSAccessKeyId": "AKIA4"}, "AKIA4"),
        (None, None, None),
    ],
)
def test_access_key_id_of(authorization: str | None, query: dict[str, Any] | None, expected: str | None) -> None:
    assert access_key_id_of(authorization, query) == expected


@pytest.fixture
def in_process() -> Iterator[Any]:
    """moto in process (``mock_aws``, as the handler tests run it), with the patch."""
    patch_moto_s3()
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing",
                                  aws_secret_access_key="testing")
            client.create_bucket(Bucket=BUCKET)
            yield client
    finally:
        unpatch_moto_s3()


def test_reads_racing_overwrites_see_whole_objects(in_process: Any) -> None:
    """Without the request lock moto closes a replaced object's buffer under a concurrent
    GetObject/ListObjectsV2 (``ValueError: I/O operation on closed file``): eight writers and
    eight readers on one key fail that way every run on moto 5.2 in process."""
    client = in_process
    size = 3000
    client.put_object(Bucket=BUCKET, Key="race", Body=b"0" * size)
    failures: list[BaseException] = []
    bodies: list[bytes] = []

    def write(digit: int) -> None:
        try:
            for _ in range(30):
                client.put_object(Bucket=BUCKET, Key="race", Body=str(digit).encode() * size)
        except BaseException as exc:  # reported below
            failures.append(exc)

    def read() -> None:
        try:
            for _ in range(30):
                bodies.append(client.get_object(Bucket=BUCKET, Key="race")["Body"].read())
                client.list_objects_v2(Bucket=BUCKET)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(digit,)) for digit in range(8)]
    threads += [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(bodies) == 8 * 30
    assert all(len(body) == size and len(set(body)) == 1 for body in bodies)
