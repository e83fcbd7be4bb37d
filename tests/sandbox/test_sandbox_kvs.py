"""The CloudFront KeyValueStore data-plane emulator (utils/sandbox/kvs.py) under moto's mock_aws.

Real boto3 ``cloudfront-keyvaluestore`` clients are used: requests are built and SigV4A-signed
(awscrt) as against AWS, and answered by the emulator through botocore's ``before-send`` event.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from utils.sandbox.kvs import (
    MAX_KEYS_PER_UPDATE,
    MAX_STORE_BYTES,
    KvsEmulator,
    KvsError,
    install_kvs_emulator,
    installed_kvs_emulator,
    uninstall_kvs_emulator,
)

KVS_REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulator() -> Iterator[KvsEmulator]:
    """moto + the emulator installed (and uninstalled afterwards unless something else had it)."""
    before = installed_kvs_emulator()
    with mock_aws():
        emulator = install_kvs_emulator()
        emulator.reset()
        yield emulator
    if before is None:
        uninstall_kvs_emulator()


def kvs_client() -> Any:
    return boto3.client("cloudfront-keyvaluestore", region_name=KVS_REGION)


def new_store(name: str = "revoked") -> str:
    return boto3.client("cloudfront").create_key_value_store(Name=name, Comment="test")["KeyValueStore"]["ARN"]


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_describe_a_new_store(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    described = kvs.describe_key_value_store(KvsARN=arn)
    assert described["KvsARN"] == arn
    assert described["ItemCount"] == 0
    assert described["TotalSizeInBytes"] == 0
    assert described["Status"] == "READY"
    assert described["ETag"]
    assert abs(described["Created"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert described["ETag"] == emulator.etag(arn)


def test_requests_are_sigv4a_signed(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs_client().describe_key_value_store(KvsARN=arn)
    assert emulator.last_authorization is not None
    assert emulator.last_authorization.startswith("AWS4-ECDSA-P256-SHA256 Credential=")
    assert "/cloudfront-keyvaluestore/aws4_request" in emulator.last_authorization


def test_every_write_needs_the_current_etag_and_returns_a_new_one(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    etag0 = kvs.describe_key_value_store(KvsARN=arn)["ETag"]

    put = kvs.put_key(KvsARN=arn, Key="0a", Value="v1", IfMatch=etag0)
    assert put["ETag"] != etag0
    assert (put["ItemCount"], put["TotalSizeInBytes"]) == (1, 4)

    updated = kvs.update_keys(
        KvsARN=arn, IfMatch=put["ETag"], Puts=[{"Key": "0b", "Value": "v2"}], Deletes=[{"Key": "0a"}]
    )
    assert updated["ETag"] not in (etag0, put["ETag"])
    assert updated["ItemCount"] == 1

    for stale in (etag0, put["ETag"]):
        with pytest.raises(ClientError) as conflict:
            kvs.update_keys(KvsARN=arn, IfMatch=stale, Puts=[{"Key": "0c", "Value": "v3"}])
        assert code(conflict) == "ConflictException"
        assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as conflict:
        kvs.delete_key(KvsARN=arn, Key="0b", IfMatch=etag0)
    assert code(conflict) == "ConflictException"
    assert emulator.items(arn) == {"0b": "v2"}
    assert emulator.etag(arn) == updated["ETag"]

    deleted = kvs.delete_key(KvsARN=arn, Key="0b", IfMatch=updated["ETag"])
    assert deleted["ItemCount"] == 0
    assert kvs.describe_key_value_store(KvsARN=arn)["ETag"] == deleted["ETag"]


def test_get_key_and_missing_keys(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
    kvs.put_key(KvsARN=arn, Key="8f01", Value="2026-11-21T08:00:00Z keyCompromise", IfMatch=etag)
    got = kvs.get_key(KvsARN=arn, Key="8f01")
    assert (got["Key"], got["Value"], got["ItemCount"]) == ("8f01", "2026-11-21T08:00:00Z keyCompromise", 1)
    with pytest.raises(ClientError) as missing:
        kvs.get_key(KvsARN=arn, Key="0a1b")
    assert code(missing) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as missing:
        kvs.delete_key(KvsARN=arn, Key="0a1b", IfMatch=emulator.etag(arn))
    assert code(missing) == "ResourceNotFoundException"
    # deleting an absent key inside UpdateKeys is not an error
    kvs.update_keys(KvsARN=arn, IfMatch=emulator.etag(arn), Deletes=[{"Key": "0a1b"}])


def test_unknown_store_is_resource_not_found(emulator: KvsEmulator) -> None:
    arn = new_store()
    unknown = arn[:-4] + "ffff"
    kvs = kvs_client()
    for call in (
        lambda: kvs.describe_key_value_store(KvsARN=unknown),
        lambda: kvs.list_keys(KvsARN=unknown),
        lambda: kvs.update_keys(KvsARN=unknown, IfMatch="x", Puts=[{"Key": "a", "Value": "b"}]),
    ):
        with pytest.raises(ClientError) as missing:
            call()
        assert code(missing) == "ResourceNotFoundException"
    with pytest.raises(KeyError):
        emulator.items(unknown)


def test_a_store_deleted_from_moto_is_gone(emulator: KvsEmulator) -> None:
    arn = new_store("short-lived")
    kvs = kvs_client()
    kvs.put_key(KvsARN=arn, Key="a", Value="b", IfMatch=kvs.describe_key_value_store(KvsARN=arn)["ETag"])
    boto3.client("cloudfront").delete_key_value_store(Name="short-lived", IfMatch="any")
    with pytest.raises(ClientError) as missing:
        kvs.describe_key_value_store(KvsARN=arn)
    assert code(missing) == "ResourceNotFoundException"


def test_update_keys_is_all_or_nothing(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
    etag = kvs.put_key(KvsARN=arn, Key="keep", Value="1", IfMatch=etag)["ETag"]
    bad_batches: list[dict[str, Any]] = [
        {"Puts": [{"Key": "ok", "Value": "1"}, {"Key": "big", "Value": "x" * 1025}]},
        {"Puts": [{"Key": "ok", "Value": "1"}, {"Key": "k" * 513, "Value": "1"}]},
        {"Puts": [{"Key": "ok", "Value": "1"}], "Deletes": [{"Key": "ok"}]},  # the same key twice
        {"Puts": [{"Key": f"{i:04x}", "Value": "v"} for i in range(MAX_KEYS_PER_UPDATE + 1)]},
        {"Puts": [{"Key": f"{i:04x}", "Value": "v"} for i in range(30)], "Deletes": [{"Key": "keep"}] * 21},
        {},
    ]
    for batch in bad_batches:
        with pytest.raises(ClientError) as refused:
            kvs.update_keys(KvsARN=arn, IfMatch=etag, **batch)
        assert code(refused) == "ValidationException", batch
    assert emulator.items(arn) == {"keep": "1"}
    assert emulator.etag(arn) == etag

    # the limits themselves are accepted: 50 keys, 512-byte key, 1 KB value
    puts = [{"Key": f"{i:04x}", "Value": "v"} for i in range(MAX_KEYS_PER_UPDATE - 2)]
    puts += [{"Key": "k" * 512, "Value": "1"}, {"Key": "big", "Value": "x" * 1024}]
    result = kvs.update_keys(KvsARN=arn, IfMatch=etag, Puts=puts)
    assert result["ItemCount"] == 1 + MAX_KEYS_PER_UPDATE


def test_store_size_quota(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    batch_bytes = 0
    n = 0
    # fill to just under 5 MB through the Python API (fast), then cross the limit over HTTP
    while True:
        puts = [{"Key": f"{n + i:0512x}", "Value": "v" * 1024} for i in range(MAX_KEYS_PER_UPDATE)]
        batch_bytes = MAX_KEYS_PER_UPDATE * (512 + 1024)
        if kvs.describe_key_value_store(KvsARN=arn)["TotalSizeInBytes"] + batch_bytes > MAX_STORE_BYTES:
            break
        emulator.update_keys(arn, emulator.etag(arn), puts)
        n += MAX_KEYS_PER_UPDATE
    before = kvs.describe_key_value_store(KvsARN=arn)
    with pytest.raises(ClientError) as quota:
        kvs.update_keys(KvsARN=arn, IfMatch=before["ETag"], Puts=puts)
    assert code(quota) == "ServiceQuotaExceededException"
    after = kvs.describe_key_value_store(KvsARN=arn)
    assert (after["ETag"], after["ItemCount"]) == (before["ETag"], before["ItemCount"])
    # a replacement that keeps the size is fine
    kvs.update_keys(KvsARN=arn, IfMatch=after["ETag"], Puts=[{"Key": f"{0:0512x}", "Value": "w" * 1024}])


def test_list_keys_pagination(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    keys = [f"{i:04x}" for i in range(120)]
    etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
    for start in range(0, 120, 50):
        etag = kvs.update_keys(
            KvsARN=arn, IfMatch=etag, Puts=[{"Key": k, "Value": k.upper()} for k in reversed(keys[start : start + 50])]
        )["ETag"]

    pages = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"KvsARN": arn, "MaxResults": 50}
        if token:
            kwargs["NextToken"] = token
        page = kvs.list_keys(**kwargs)
        pages.append([item["Key"] for item in page["Items"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [k for p in pages for k in p] == keys  # ascending key order

    everything = kvs.get_paginator("list_keys").paginate(KvsARN=arn, PaginationConfig={"PageSize": 7})
    items = [item for page in everything for item in page["Items"]]
    assert items == [{"Key": k, "Value": k.upper()} for k in keys]
    assert len(kvs.list_keys(KvsARN=arn)["Items"]) == 50  # default page size

    with pytest.raises(ClientError) as too_many:
        kvs.list_keys(KvsARN=arn, MaxResults=51)
    assert code(too_many) == "ValidationException"
    with pytest.raises(KvsError) as too_few:
        emulator.list_keys(arn, max_results=0)
    assert too_few.value.code == "ValidationException"
    with pytest.raises(ClientError) as bad_token:
        kvs.list_keys(KvsARN=arn, NextToken="not-a-token")
    assert code(bad_token) == "ValidationException"


def test_injected_conflicts(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    emulator.inject_conflicts(arn, 3)
    assert emulator.pending_conflicts(arn) == 3
    etags = []
    for _ in range(3):
        etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]  # a fresh ETag does not help
        etags.append(etag)
        with pytest.raises(ClientError) as conflict:
            kvs.update_keys(KvsARN=arn, IfMatch=etag, Puts=[{"Key": "a", "Value": "1"}])
        assert code(conflict) == "ConflictException"
    assert len(set(etags)) == 3  # each conflict means someone else wrote: the ETag moved
    assert emulator.pending_conflicts(arn) == 0
    etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
    kvs.update_keys(KvsARN=arn, IfMatch=etag, Puts=[{"Key": "a", "Value": "1"}])
    assert emulator.items(arn) == {"a": "1"}

    emulator.inject_conflicts(arn, 1, operation="PutKey")
    with pytest.raises(ClientError) as conflict:
        kvs.put_key(KvsARN=arn, Key="b", Value="2", IfMatch=emulator.etag(arn))
    assert code(conflict) == "ConflictException"
    emulator.inject_conflicts(arn, 5)
    emulator.inject_conflicts(arn, 0)  # cancels
    kvs.update_keys(KvsARN=arn, IfMatch=emulator.etag(arn), Puts=[{"Key": "b", "Value": "2"}])
    with pytest.raises(ValueError):
        emulator.inject_conflicts(arn, 1, operation="GetKey")


def test_the_sync_code_retries_injected_conflicts(emulator: KvsEmulator) -> None:
    """kmsca's KeyValueStoreSync re-reads the ETag after each ConflictException (3 in a row)."""
    from kmsca.kvs import KeyValueStoreSync
    from kmsca.records import RevokedEntry

    arn = new_store()
    now = datetime.now(UTC)
    entry = RevokedEntry(
        serial_number="8f01",
        revoked_at=now,
        reason="keyCompromise",
        invalidity_date=None,
        not_after=now + timedelta(days=30),
    )
    emulator.inject_conflicts(arn, 3)
    sync = KeyValueStoreSync(kvs_client(), arn, store=None, ca="issuing")  # type: ignore[arg-type]
    report = sync.apply_revocations([entry], now)
    assert report.conflicts == 3
    assert list(emulator.items(arn)) == ["8f01"]
    assert emulator.call_counts(arn)["UpdateKeys"] == 4


def test_call_counts(emulator: KvsEmulator) -> None:
    arn = new_store()
    kvs = kvs_client()
    kvs.describe_key_value_store(KvsARN=arn)
    kvs.list_keys(KvsARN=arn)
    with pytest.raises(ClientError):
        kvs.update_keys(KvsARN=arn, IfMatch="stale", Puts=[{"Key": "a", "Value": "1"}])
    assert emulator.call_counts(arn) == {"DescribeKeyValueStore": 1, "ListKeys": 1, "UpdateKeys": 1}
    emulator.reset_call_counts()
    assert emulator.call_counts() == {}


def test_registered_stores_work_without_moto(emulator: KvsEmulator) -> None:
    arn = "arn:aws:cloudfront::123456789012:key-value-store/local-only"
    assert emulator.create_store(arn, {"0a": "seed"}) == arn
    kvs = kvs_client()
    assert kvs.get_key(KvsARN=arn, Key="0a")["Value"] == "seed"
    with pytest.raises(KvsError) as too_big:
        emulator.create_store(arn, {"big": "x" * 2000})
    assert too_big.value.code == "ValidationException"
    emulator.reset()
    with pytest.raises(KeyError):
        emulator.items(arn)


def test_install_is_idempotent_and_hooks_later_sessions(emulator: KvsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    assert install_kvs_emulator() is emulator
    assert install_kvs_emulator(KvsEmulator()) is emulator
    arn = new_store()
    # a boto3 default session created after installation, and a new explicit session, are hooked
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    assert (
        boto3.client("cloudfront-keyvaluestore", region_name=KVS_REGION).describe_key_value_store(KvsARN=arn)[
            "ItemCount"
        ]
        == 0
    )
    session = boto3.session.Session(region_name=KVS_REGION)
    assert session.client("cloudfront-keyvaluestore").list_keys(KvsARN=arn)["Items"] == []


def test_uninstall_sends_requests_to_the_network_again(emulator: KvsEmulator) -> None:
    arn = new_store()
    client = boto3.client(
        "cloudfront-keyvaluestore",
        region_name=KVS_REGION,
        endpoint_url="http://127.0.0.1:9",  # the account id is prepended to the host: never resolves
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    assert client.describe_key_value_store(KvsARN=arn)["KvsARN"] == arn
    uninstall_kvs_emulator()
    assert installed_kvs_emulator() is None
    with pytest.raises(EndpointConnectionError):
        client.describe_key_value_store(KvsARN=arn)
    assert install_kvs_emulator(emulator) is emulator
    assert client.describe_key_value_store(KvsARN=arn)["KvsARN"] == arn


def test_http_handler_answers_rest_json(emulator: KvsEmulator) -> None:
    arn = new_store()
    quoted = arn.replace(":", "%3A").replace("/", "%2F")
    status, headers, body = emulator.handle("GET", f"https://x/key-value-stores/{quoted}", {}, b"")
    assert status == 200
    assert headers["ETag"] == emulator.etag(arn)
    assert b'"ItemCount": 0' in body
    status, headers, body = emulator.handle(
        "POST",
        f"https://x/key-value-stores/{quoted}/keys",
        {"If-Match": "stale"},
        b'{"Puts": [{"Key": "a", "Value": "b"}]}',
    )
    assert (status, headers["x-amzn-ErrorType"]) == (409, "ConflictException")
    status, headers, _ = emulator.handle("PATCH", f"https://x/key-value-stores/{quoted}", {}, b"")
    assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")


def test_a_default_session_created_before_installation_is_hooked() -> None:
    """In a fresh interpreter: boto3's default session exists before the emulator is installed."""
    code = "\n".join(
        [
            "import boto3",
            "from moto import mock_aws",
            "boto3.setup_default_session()",
            "boto3.client('sts')  # the default session is in use",
            "from utils.sandbox.kvs import install_kvs_emulator",
            "with mock_aws():",
            "    install_kvs_emulator()",
            "    arn = boto3.client('cloudfront').create_key_value_store(Name='s')['KeyValueStore']['ARN']",
            "    print(boto3.client('cloudfront-keyvaluestore').describe_key_value_store(KvsARN=arn)['KvsARN'] == arn)",
        ]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PYTHONPATH": str(REPO)})
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr


def test_each_request_is_answered_once_after_reinstallation(
    emulator: KvsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default session created while installed, then uninstall + install: its clients carry the
    handler twice (built-in and explicit); every write must still happen once."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    boto3.client("sts", region_name=KVS_REGION)  # creates the default session, hooked as a built-in
    uninstall_kvs_emulator()
    again = install_kvs_emulator()  # registers on the existing default session too
    arn = new_store()
    again.inject_conflicts(arn, 2)
    kvs = boto3.client("cloudfront-keyvaluestore", region_name=KVS_REGION)
    with pytest.raises(ClientError):
        kvs.update_keys(KvsARN=arn, IfMatch=again.etag(arn), Puts=[{"Key": "a", "Value": "1"}])
    assert again.pending_conflicts(arn) == 1
    assert again.call_counts(arn) == {"UpdateKeys": 1}
