"""Stored times and corrupted records (issue: "one revocation can stop CRL publication for good").

Every time is stored in one fixed-width, round-trippable form and refused at the boundary when it
falls outside 1950..9999; a record that cannot be read is skipped (or listed without its bad
invalidity date), logged by key, counted in ``UnreadableRecords``, and never stops CRL publication,
the KeyValueStore reconcile or the stream path for the others.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kmsca.ca import CaSigner
from kmsca.crl import build_crl, revoked_certificate
from kmsca.errors import CaError
from kmsca.records import REASONS, RevokedEntry, crl_entry_text, iso, parse_crl_entry, parse_iso
from kmsca.revocation import check_invalidity_date
from kmsca.store import revoked_entries_from_stream

from tests.support.aws import CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr
from utils.sandbox.kvs import install_kvs_emulator, uninstall_kvs_emulator

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
IN_RANGE = st.datetimes(
    min_value=datetime(1950, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def emitted(capsys: pytest.CaptureFixture[str], name: str) -> float:
    """Sum of metric ``name`` in the EMF documents Powertools printed."""
    total = 0.0
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document and name in document:
            value = document[name]
            total += sum(value) if isinstance(value, list) else value
    return total


# The stored form -----------------------------------------------------------------------------


@pytest.mark.parametrize("year", [1950, 1999, 2026, 9999])
def test_iso_has_four_digit_years_and_reads_back(year: int) -> None:
    moment = datetime(year, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert iso(moment)[:5] == f"{year:04d}-" and parse_iso(iso(moment)) == moment


@pytest.mark.parametrize(
    "text",
    ["0026-11-20T10:00:00Z", "1949-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_times_outside_1950_to_9999_are_refused_not_stored(text: str) -> None:
    with pytest.raises(ValueError, match="between 1950"):
        parse_iso(text)
    with pytest.raises(CaError, match="between 1950") as refused:
        check_invalidity_date(text, NOW)
    assert refused.value.code == "InvalidRequest"


def test_iso_refuses_what_it_could_not_read_back() -> None:
    with pytest.raises(ValueError):
        iso(datetime(26, 11, 20, tzinfo=UTC))  # glibc strftime wrote "26-11-20T..."


@settings(max_examples=300, deadline=None)
@given(moment=IN_RANGE, offset=OFFSETS, reason=st.sampled_from(sorted(REASONS)), with_date=st.booleans())
def test_every_stored_time_round_trips_through_the_store_form(
    moment: datetime, offset: timezone, reason: str, with_date: bool
) -> None:
    local = moment.astimezone(offset)
    expected = moment.replace(microsecond=0)
    assert parse_iso(iso(local)) == expected
    assert parse_iso(local.isoformat()) == moment  # what a caller may send
    text = crl_entry_text(expected, reason, expected if with_date else None)
    entry = parse_crl_entry("CERT#0a1b", text, iso(expected))
    assert entry == RevokedEntry("0a1b", expected, reason, expected if with_date else None, expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(revoked_at=IN_RANGE, invalidity=IN_RANGE, offset=OFFSETS)
def test_every_accepted_invalidity_date_round_trips_through_a_crl(
    crl_signer: CaSigner, revoked_at: datetime, invalidity: datetime, offset: timezone
) -> None:
    now = datetime(9999, 12, 31, tzinfo=UTC)
    accepted = check_invalidity_date(invalidity.astimezone(offset).isoformat(), now)
    assert accepted is not None
    stored = parse_crl_entry(
        "CERT#0a1b", crl_entry_text(revoked_at, "keyCompromise", accepted), iso(now)
    )
    assert stored is not None
    crl = build_crl(crl_signer, [stored], 1, NOW, NOW + timedelta(hours=24))
    (listed,) = list(crl)
    assert listed.revocation_date_utc == revoked_at.replace(microsecond=0)
    read = listed.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc
    assert read == invalidity.replace(microsecond=0)
    assert revoked_certificate(stored).serial_number == 0x0A1B


@pytest.fixture(scope="module")
def crl_signer() -> CaSigner:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from kmsca.records import CaRecord
    from kmsca.signer import SignatureScheme

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "CRL test CA")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CaSigner(CaRecord("issuing", certificate, "local", NOW), key, SignatureScheme(hashes.SHA256()))


# Corrupted table items ---------------------------------------------------------------------------

GOOD = "0a01"
# key -> (attributes that differ from a good revoked item, what happens to it)
CORRUPTED: dict[str, dict[str, Any]] = {
    "0a02": {"crl_entry": {"S": "26-11-20T10:00:00Z keyCompromise"}},  # bad revocation time
    "0a03": {"crl_entry": {"S": "2026-11-01T00:00:00Z keyCompromise 26-11-20T10:00:00Z"}},  # legacy 0026
    "0a04": {"crl_entry": {"S": "2026-11-01T00:00:00Z banana"}},  # bad reason
    "0a05": {"crl_entry": None},  # missing field
    "0a06": {"crl_entry": {"N": "7"}},  # wrong type
    "0a07": {"not_after": {"S": "9999-99-99"}},  # bad notAfter (still sorts into the Query)
}


def put_item(resources: CaResources, serial: str, **changes: Any) -> None:
    item: dict[str, Any] = {
        "pk": {"S": f"CERT#{serial}"}, "serial_number": {"S": serial}, "ca": {"S": "issuing"},
        "status": {"S": "revoked"}, "revoked_ca": {"S": "issuing"},
        "not_after": {"S": iso(datetime.now(UTC) + timedelta(days=30))},
        "revoked_at": {"S": "2026-11-01T00:00:00Z"}, "revocation_reason": {"S": "keyCompromise"},
        "crl_entry": {"S": "2026-11-01T00:00:00Z keyCompromise"},
    }
    for name, value in changes.items():
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    resources.dynamodb.put_item(TableName=resources.table, Item=item)


@pytest.fixture
def corrupted(bootstrapped: CaResources) -> CaResources:
    put_item(bootstrapped, GOOD)
    for serial, changes in CORRUPTED.items():
        put_item(bootstrapped, serial, **changes)
    return bootstrapped


def _crl(resources: CaResources) -> x509.CertificateRevocationList:
    body = resources.s3.get_object(Bucket=resources.bucket, Key="issuing.crl")["Body"].read()
    return x509.load_der_x509_crl(body)


def test_corrupted_items_do_not_stop_crl_publication_and_are_counted(
    corrupted: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish = load_handler("publish_crl", corrupted.env, monkeypatch)
    capsys.readouterr()
    result = publish.handler({"source": "schedule"}, lambda_context)
    assert set(result) == {"RootCrlNumber", "IssuingCrlNumber"}
    listed = {format(entry.serial_number, "04x"): entry for entry in _crl(corrupted)}
    # the good one, and the one whose only fault is its invalidity date (listed without it)
    assert set(listed) == {GOOD, "0a03"}
    with pytest.raises(x509.ExtensionNotFound):
        listed["0a03"].extensions.get_extension_for_class(x509.InvalidityDate)
    assert emitted(capsys, "UnreadableRecords") == len(CORRUPTED)
    assert emitted(capsys, "CrlPublicationFailures") == 0


def test_a_bad_stream_record_does_not_stop_the_others(
    bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def record(serial: str, crl_entry: str) -> dict[str, Any]:
        image = {"pk": {"S": f"CERT#{serial}"}, "status": {"S": "revoked"}, "revoked_ca": {"S": "issuing"},
                 "crl_entry": {"S": crl_entry}, "not_after": {"S": iso(datetime.now(UTC) + timedelta(days=30))}}
        return {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "OldImage": {}}}

    batch = [record("0b01", "26-11-20T10:00:00Z keyCompromise"), record("0b02", "2026-11-01T00:00:00Z superseded")]
    problems: list[Any] = []
    assert [e.serial_number for e in revoked_entries_from_stream(batch, "issuing", problems)] == ["0b02"]
    assert [p.key for p in problems] == ["CERT#0b01"]
    publish = load_handler("publish_crl", bootstrapped.env, monkeypatch)
    capsys.readouterr()
    publish.handler({"Records": batch}, lambda_context)
    assert [format(e.serial_number, "04x") for e in _crl(bootstrapped)] == ["0b02"]
    assert emitted(capsys, "UnreadableRecords") == 1


@pytest.fixture
def kvs(corrupted: CaResources) -> Any:
    emulator = install_kvs_emulator()
    emulator.reset()
    arn = boto3.client("cloudfront").create_key_value_store(Name="revoked")["KeyValueStore"]["ARN"]
    yield {"emulator": emulator, "arn": arn, "resources": corrupted}
    uninstall_kvs_emulator()


def test_corrupted_items_do_not_stop_the_reconcile_and_their_keys_are_kept(
    kvs: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    etag = client.describe_key_value_store(KvsARN=kvs["arn"])["ETag"]
    # keys put earlier (by the stream) for certificates whose records are now unreadable
    client.update_keys(KvsARN=kvs["arn"], IfMatch=etag, Puts=[{"Key": s, "Value": "x"} for s in ("0a02", "0a07")])
    topic = boto3.client("sns").create_topic(Name="n")["TopicArn"]
    sync = load_handler("sync_kvs", {**kvs["resources"].env, "KVS_ARN": kvs["arn"], "NOTIFICATION_TOPIC_ARN": topic},
                        monkeypatch)
    capsys.readouterr()
    result = sync.handler({"source": "schedule"}, lambda_context)
    assert result["deletes"] == 0 and result["unreadable"] == len(CORRUPTED)
    assert set(kvs["emulator"].items(kvs["arn"])) == {GOOD, "0a03", "0a02", "0a07"}
    assert emitted(capsys, "UnreadableRecords") == len(CORRUPTED)
    assert emitted(capsys, "KvsSyncFailures") == 0


# The revoke function --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0026-11-20T10:00:00Z", "0001-01-01T00:00:00+01:00", "1949-12-31T23:00:00+02:00"])
def test_revoke_refuses_unrepresentable_invalidity_dates_and_publication_goes_on(
    bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, text: str
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    issue = load_handler("issue", bootstrapped.env, monkeypatch)
    revoke = load_handler("revoke", bootstrapped.env, monkeypatch)
    publish = load_handler("publish_crl", bootstrapped.env, monkeypatch)
    serial = issue.handler({"csr": csr_pem(make_csr(ec.generate_private_key(ec.SECP256R1())))},
                           lambda_context)["serial_number"]
    with pytest.raises(CaError, match="1950") as refused:
        revoke.handler({"serial_number": serial, "invalidity_date": text}, lambda_context)
    assert refused.value.code == "InvalidRequest"
    revoke.handler({"serial_number": serial, "invalidity_date": "1950-01-01T00:00:00Z"}, lambda_context)
    publish.handler({"source": "schedule"}, lambda_context)
    (entry,) = list(_crl(bootstrapped))
    date = entry.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc
    assert date == datetime(1950, 1, 1, tzinfo=UTC)
