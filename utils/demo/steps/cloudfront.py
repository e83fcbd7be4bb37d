"""CloudFront steps: the origin certificate in ACM us-east-1, the revoked serial in the KeyValueStore,
the connection function under Node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.demo.constants import ACM_REGION, CONNECTION_DIR, ORIGIN_CN, REVOCATION_REASON
from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import Issued, require
from utils.demo.x509_text import colon_hex, excerpt

KVS_WAIT_SECONDS = 15.0
KVS_POLL_SECONDS = 0.2


def client_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def step_origin_cert(demo: Demo) -> str:
    """utils/cloudfront-origin-cert.py, then the certificate as ACM in us-east-1 holds it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    result = demo.cli("cloudfront-origin-cert.py", ORIGIN_CN, "--san", f"dns:{ORIGIN_CN}", "--out-dir",
                      str(demo.out_dir), "--name", "origin", "--force", "--json")  # fmt: skip
    if result.returncode != 0:
        raise StepFailed(f"cloudfront-origin-cert.py exited with status {result.returncode}: {result.stderr.strip()}")
    info = json.loads(result.stdout)
    demo.state.origin = Issued.from_summary(info)
    arn = info["acm_certificate_arn"]
    detail(f"serial {info['serial_number']}  subject {info['subject']}  key {info['key_type']}  "
           f"not after {info['not_after']}")  # fmt: skip
    detail("wrote " + ", ".join(demo.shown(p) for p in info["written"]) + " (no key file: the key exists only in ACM)")
    detail("OriginMtlsConfig for the origin's CustomOriginConfig in the distribution config:")
    for line in json.dumps(info["origin_mtls_config"], indent=2).splitlines():
        detail("  " + line)
    problems = []
    if list(demo.out_dir.glob("origin*.key")) or "PRIVATE KEY" in result.stdout:
        problems.append("a private key was written or printed")

    region = arn.split(":")[3] if arn.count(":") >= 5 else "?"
    detail(f"the stack runs in {demo.sandbox.state['region']}; the ARN's region is {region}")
    acm = demo.client("acm", ACM_REGION)
    try:
        described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        got = acm.get_certificate(CertificateArn=arn)
        tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
    except Exception as exc:  # botocore ClientError / endpoint errors: the sandbox lacks ACM us-east-1
        raise StepFailed(f"the sandbox's ACM in {ACM_REGION} cannot show {arn}: {type(exc).__name__}: {exc}") from None
    ekus = [u.get("Name", "?") for u in described.get("ExtendedKeyUsages", [])]
    detail(f"acm describe-certificate ({ACM_REGION}): Type {described.get('Type')}, "
           f"Status {described.get('Status')}, KeyAlgorithm {described.get('KeyAlgorithm')}, "
           f"ExtendedKeyUsages {', '.join(ekus) or '(none)'}")  # fmt: skip
    detail(f"  Serial {described.get('Serial')}, DomainName {described.get('DomainName')}, "
           f"NotAfter {described.get('NotAfter'):%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    detail("  tags " + ", ".join(f"{t['Key']}={t.get('Value', '')}" for t in tags))

    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    chain = x509.load_pem_x509_certificates(got.get("CertificateChain", "").encode())
    issued_chain = x509.load_pem_x509_certificates(Path(info["files"]["chain"]).read_bytes())
    issued_leaf = x509.load_pem_x509_certificate(Path(info["files"]["certificate"]).read_bytes())
    fingerprint = leaf.fingerprint(hashes.SHA256())
    roles = ("issuing CA", "root CA")
    ours = {c.fingerprint(hashes.SHA256()): role for c, role in zip(issued_chain, roles, strict=False)}
    detail(f"acm get-certificate: the certificate {'is' if leaf == issued_leaf else 'is NOT'} the one the CLI got; "
           f"the chain in ACM:")  # fmt: skip
    for cert in chain:
        role = ours.get(cert.fingerprint(hashes.SHA256()))
        if cert.fingerprint(hashes.SHA256()) == fingerprint:
            role = "THE LEAF"
        role = role or "appended by the ACM emulation, not imported by the CA"
        detail(f"  {cert.subject.rfc4514_string()}  ({role})")
    text_file = demo.work / "origin-acm.crt"
    text_file.write_bytes(leaf.public_bytes(Encoding.PEM))
    text = demo.run(["openssl", "x509", "-in", str(text_file), "-noout", "-text"]).stdout
    for line in excerpt(text, ("Public Key Algorithm", "NIST CURVE", "Extended Key Usage")):
        detail("  " + line)

    if region != ACM_REGION:
        problems.append(f"the ARN is in {region}, not {ACM_REGION}")
    if leaf != issued_leaf:
        problems.append("ACM holds another certificate than the one issued")
    if described.get("Status") != "ISSUED":
        problems.append(f"status {described.get('Status')}")
    if described.get("KeyAlgorithm") != "EC_prime256v1" or "NIST CURVE: P-256" not in text:
        problems.append(f"key algorithm {described.get('KeyAlgorithm')}, not EC P-256")
    if "TLS_WEB_CLIENT_AUTHENTICATION" not in ekus or "TLS Web Client Authentication" not in text:
        problems.append("the EKU is not clientAuth (TLS Web Client Authentication)")
    if any(c.fingerprint(hashes.SHA256()) == fingerprint for c in chain):
        problems.append("the chain in ACM contains the leaf")
    if [c.fingerprint(hashes.SHA256()) for c in chain[: len(issued_chain)]] != list(ours):
        problems.append("the chain in ACM does not start with the issuing and the root CA")
    if problems:
        raise StepFailed("; ".join(problems))
    return f"{arn}: {described['Status']}, EC P-256, EKU clientAuth, chain issuing + root without the leaf"


def kvs_items(kvs: Any, arn: str) -> dict[str, str]:
    """Every key and value of a KeyValueStore (``list_keys``, 50 per page)."""
    items: dict[str, str] = {}
    kwargs: dict[str, Any] = {"KvsARN": arn, "MaxResults": 50}
    while True:
        page = kvs.list_keys(**kwargs)
        items.update({i["Key"]: i["Value"] for i in page.get("Items", [])})
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


def wait_for_key(demo: Demo, kvs: Any, arn: str, key: str) -> tuple[dict[str, Any], float, int]:
    """Poll ``get_key(key)`` of the KeyValueStore ``arn`` every :data:`KVS_POLL_SECONDS` until it
    answers (at most :data:`KVS_WAIT_SECONDS`).

    Returns:
        The ``get_key`` answer, the seconds waited, the number of polls.

    Raises:
        StepFailed: another error than ``ResourceNotFoundException``, or the key did not appear.
    """
    started, polls = time.monotonic(), 0
    while True:
        polls += 1
        try:
            item = kvs.get_key(KvsARN=arn, Key=key)
            return item, time.monotonic() - started, polls
        except Exception as exc:
            if client_error_code(exc) != "ResourceNotFoundException":
                raise StepFailed(f"get_key failed: {type(exc).__name__}: {exc}") from None
        if time.monotonic() - started >= KVS_WAIT_SECONDS:
            raise StepFailed(
                f"{key} is not in the KeyValueStore after {KVS_WAIT_SECONDS:g} s ({polls} polls): the "
                f"stream-triggered SyncKvsFunction did not run\n{demo.sandbox.log_tail(6)}"
            )
        time.sleep(KVS_POLL_SECONDS)


def export_kvs(demo: Demo, items: dict[str, str], name: str) -> Path:
    """Write a KeyValueStore's ``items`` as ``<work>/<name>`` in the KVS import-file format
    (``{"data": [{"key", "value"}]}``); returns the file."""
    export = demo.work / name
    export.write_text(json.dumps({"data": [{"key": k, "value": v} for k, v in items.items()]}, indent=2) + "\n")
    return export


def step_kvs(demo: Demo) -> str:
    """The revoked serial appears in the KeyValueStore (the stream-triggered sync); the good one does not."""
    arn = demo.sandbox.state.get("outputs", {}).get("RevokedSerialsStoreArn")
    if not arn:
        raise StepFailed("the sandbox's stack has no RevokedSerialsStoreArn output, so there is no KeyValueStore")
    kvs = demo.kvs_client()
    revocation = require(demo.state.revocation, "the revocation")
    revoked, good = revocation.serial, require(demo.state.client, "the client certificate").serial_number
    detail(f"KeyValueStore {arn}")
    detail(f"nothing here invokes SyncKvsFunction: the table stream does; polling get_key({revoked}) every "
           f"{KVS_POLL_SECONDS:g} s for {KVS_WAIT_SECONDS:g} s")  # fmt: skip
    item, waited, polls = wait_for_key(demo, kvs, arn, revoked)
    since = time.monotonic() - revocation.recorded
    detail(f"get_key: {item['Key']} = {item['Value']!r}: found after {waited:.1f} s of polling "
           f"({polls} {'poll' if polls == 1 else 'polls'}), {since:.1f} s after revoke-cert.py returned")  # fmt: skip
    store = kvs.describe_key_value_store(KvsARN=arn)
    modified = store.get("LastModified")
    if modified is not None and revocation.recorded_wall:
        lag = modified.timestamp() - revocation.recorded_wall
        detail(f"the sync wrote the store {lag:.1f} s after revoke-cert.py returned (DescribeKeyValueStore "
               f"LastModified); ItemCount {store.get('ItemCount')}, {store.get('TotalSizeInBytes')} bytes, "
               f"ETag {store.get('ETag')}")  # fmt: skip
    items = kvs_items(kvs, arn)
    detail(f"list_keys: {len(items)} {'key' if len(items) == 1 else 'keys'}")
    for key, value in items.items():
        detail(f"  {key} = {value}")
    try:
        kvs.get_key(KvsARN=arn, Key=good)
        good_found = True
    except Exception as exc:
        if client_error_code(exc) != "ResourceNotFoundException":
            raise StepFailed(f"get_key failed: {type(exc).__name__}: {exc}") from None
        good_found = False
    detail(f"get_key({good}) (the good client certificate): "
           f"{'FOUND' if good_found else 'ResourceNotFoundException, not revoked'}")  # fmt: skip

    problems = []
    expected_value = f"{revocation.revoked_at} {REVOCATION_REASON}"
    if item["Value"] != expected_value:
        problems.append(f"the value is {item['Value']!r}, expected {expected_value!r}")
    if revoked not in items:
        problems.append("list_keys does not list the revoked serial")
    if good_found or good in items:
        problems.append("the good certificate's serial is in the store")
    if problems:
        raise StepFailed("; ".join(problems))
    export = demo.state.kvs_export = export_kvs(demo, items, "kvs-items.json")
    detail(f"exported to {demo.shown(str(export))} (the KeyValueStore import-file format) for the next step")
    return f"{revoked} -> {item['Value']!r} (found after {waited:.1f} s of polling); the good serial is absent"


#: Runs connection.js under Node.js through functions/connection/harness.mjs (its stand-in for the
#: ``cloudfront`` module), with the store filled from a KeyValueStore export; one JSON line out.
CONNECTION_RUNNER = """\
import { readFileSync } from 'node:fs';
import { loadConnectionFunction } from %(harness)s;

const [itemsFile, casesFile] = process.argv.slice(2);
const { connectionHandler, kvsState } = await loadConnectionFunction();
for (const item of JSON.parse(readFileSync(itemsFile, 'utf8')).data) {
    kvsState.store.set(item.key, item.value);
}
const results = [];
for (const c of JSON.parse(readFileSync(casesFile, 'utf8'))) {
    const seen = { decisions: [], logs: [] };
    const connection = {
        clientIp: '203.0.113.10',
        clientCertificate: { certificates: { leaf: { serialNumber: c.serialNumber, subject: c.subject,
                                                     issuer: c.issuer } } },
        allow() { seen.decisions.push('allow'); },
        deny() { seen.decisions.push('deny'); },
        logCustomData(text) { seen.logs.push(text); },
    };
    kvsState.calls.length = 0;
    await connectionHandler(connection);
    results.push({ ...seen, lookups: kvsState.calls.map((call) => `${call.op}("${call.key}")`) });
}
process.stdout.write(JSON.stringify(results) + '\\n');
"""


@dataclass(frozen=True)
class ConnectionCase:
    """One viewer connection for the connection function: a leaf certificate and the decision expected."""

    label: str
    certificate: Path
    serial_number: str
    expect: str


def step_connection_function(demo: Demo) -> str:
    """connection.js under Node.js, the KeyValueStore's content in the stand-in: revoked deny, good allow."""
    if shutil.which("node") is None:
        raise StepFailed("Node.js is not installed, so the connection function cannot run (Node 18 or later)")
    source, harness = CONNECTION_DIR / "connection.js", CONNECTION_DIR / "harness.mjs"
    for path in (source, harness):
        if not path.is_file():
            raise StepFailed(f"{demo.shown(str(path))} does not exist")
    code = source.read_text(encoding="utf-8")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    detail(f"Node.js {version}; {demo.shown(str(source))}: {len(code.encode())} bytes (CloudFront's limit: 10 KB)")
    deployed = demo.sandbox.state.get("connection_functions", {}).get("RevocationCheckFunction", {})
    if deployed.get("code") is not None:
        same = deployed["code"].strip() == code.strip()
        detail(f"the sandbox's {deployed.get('name')} ({deployed.get('runtime')}, stage {deployed.get('stage')}, "
               f"associated with the KeyValueStore) runs {'this same code' if same else 'DIFFERENT code'}")  # fmt: skip
        if not same:
            raise StepFailed("template.yaml's connection function code differs from connection.js: "
                             "run python utils/embed-connection-function.py")  # fmt: skip

    revoked = require(demo.state.revoked, "the revoked certificate")
    good = require(demo.state.client, "the client certificate")
    kvs_export = require(demo.state.kvs_export, "the KeyValueStore export")
    run_connection_cases(demo, harness, revoked, good, kvs_export)
    return "revoked certificate denied (logged as revoked, both serial forms); good certificate allowed"


def run_connection_cases(demo: Demo, harness: Path, revoked: Issued, good: Issued, kvs_export: Path) -> None:
    """Run the connection function next to ``harness`` (its ``connection.js``) under Node.js, with
    the KeyValueStore export ``kvs_export`` in the stand-in store: ``revoked``'s serial (as
    CloudFront passes it and as openssl prints it) must be denied and logged as revoked,
    ``good``'s allowed and not logged.

    Raises:
        StepFailed: node failed, or a decision or log line is not the one expected.
    """
    from cryptography import x509

    revoked_file, good_file = revoked.certificate, good.certificate
    revoked_cert = x509.load_pem_x509_certificate(revoked_file.read_bytes())
    good_cert = x509.load_pem_x509_certificate(good_file.read_bytes())
    openssl_serial = demo.run(["openssl", "x509", "-in", str(revoked_file), "-noout", "-serial"]).stdout
    detail(openssl_serial.strip())
    cases = [
        ConnectionCase("revoked certificate, serial as CloudFront passes it", revoked_file,
                       colon_hex(revoked_cert.serial_number), "deny"),
        ConnectionCase("revoked certificate, serial as openssl x509 -serial prints it", revoked_file,
                       openssl_serial.strip().partition("=")[2], "deny"),
        ConnectionCase("good certificate, serial as CloudFront passes it", good_file,
                       colon_hex(good_cert.serial_number), "allow"),
    ]  # fmt: skip
    subjects = {revoked_file: revoked_cert, good_file: good_cert}
    cases_file, runner = demo.work / "connection-cases.json", demo.work / "connection-run.mjs"
    cases_file.write_text(json.dumps([
        {"serialNumber": c.serial_number, "subject": subjects[c.certificate].subject.rfc4514_string(),
         "issuer": subjects[c.certificate].issuer.rfc4514_string()} for c in cases
    ]))  # fmt: skip
    runner.write_text(CONNECTION_RUNNER % {"harness": json.dumps(harness.as_uri())}, encoding="utf-8")
    started = time.monotonic()
    result = demo.run(["node", str(runner), str(kvs_export), str(cases_file)], check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise StepFailed(f"node exited with status {result.returncode}: {result.stderr.strip()[-600:]}")
    try:
        outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(f"node printed no result: {result.stdout[-300:]!r}") from None
    exported = len(json.loads(kvs_export.read_text(encoding="utf-8"))["data"])
    detail(f"the stand-in 'cloudfront' module's kvs() answers from the {exported} exported "
           f"{'key' if exported == 1 else 'keys'}; node ran the {len(cases)} connections "
           f"in {seconds:.2f} s")  # fmt: skip
    failures = []
    for case, outcome in zip(cases, outcomes, strict=True):
        decisions, logs = outcome["decisions"], outcome["logs"]
        ok = decisions == [case.expect]
        if ok and case.expect == "deny":
            entry = json.loads(logs[0]) if len(logs) == 1 else {}
            canonical = format(subjects[case.certificate].serial_number, "x")
            canonical = canonical if len(canonical) % 2 == 0 else "0" + canonical
            ok = entry.get("reason") == "revoked" and entry.get("serial") == canonical
        elif ok:
            ok = logs == []
        detail(f"[{'ok  ' if ok else 'FAIL'}] {case.label}: serialNumber {case.serial_number}")
        detail(f"         decision {' + '.join(decisions) or '(none)'} (want {case.expect}); "
               f"KVS lookups: {', '.join(outcome['lookups']) or '(none)'}")  # fmt: skip
        shown_logs = " | ".join(logs) if logs else "(none: an allowed connection is not logged)"
        detail(f"         logCustomData: {shown_logs}")
        if not ok:
            failures.append(case.label)
    if failures:
        raise StepFailed("unexpected decision or log for: " + "; ".join(failures))
