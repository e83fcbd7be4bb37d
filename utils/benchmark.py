#!/usr/bin/env python3
"""Benchmarks: cold start, package size, issuance, CRL publication, KeyValueStore sync. Figures in
the output (each with its spread and the machine, Python and library versions), never in tests.

AWS is the local sandbox (moto server on 127.0.0.1, resources from template.yaml, the CA
bootstrapped by the real custom resource), so every AWS call crosses HTTP as it would from Lambda.
Prints Markdown; ``--write docs/benchmark.md`` also stores it with the command.

    python utils/benchmark.py [--sections cold,package,issuance,crl,kvs,ocsp,inventory,targets]
                              [--issuances 200] [--rounds 5]
                              [--crl-sizes 1000,10000,100000] [--write docs/benchmark.md]

cold: each handler imported in fresh CPython 3.12 processes (--cold-python), with only its own package importable,
    spawn -> handler importable, median of 7.
package: each function's code + layers, zipped and unzipped, from ``sam build`` (``./dev.sh sam``).
issuance: AWS calls per issuance; handler time measured in the worker, and the invoke hop apart;
    interleaved rounds; the idempotent path against a table of realistic size, moto's cost removed.
crl: the issuing CA's CRL with N revoked certificates: time (repeated), time waiting on the
    emulators, peak RSS of a child process, AWS calls by operation, DER size.
kvs: KeyValueStore sync from empty to 10,000 serials, a reconcile with nothing to do, one after a
    foreign write, one incremental revocation, and revoke -> key in the store in the sandbox.
ocsp: warm ms per OCSP response (median, p95), AWS calls and ``kms:Sign`` per 1,000 responses,
    cost per million requests at list prices with CloudFront's cache in front (utils/bench_ocsp.py).
inventory: a list page of 100, a show, the expiry job run twice: AWS calls and handler time
    (utils/bench_inventory.py).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "layers" / "ca")]

from utils.sandbox.server import Sandbox  # noqa: E402


class CallCounter:
    """Counts AWS API calls made by every boto3 client created after it is installed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", self._count)  # type: ignore[union-attr]

    def _count(self, event_name: str, **_: Any) -> None:
        _event, service, operation = event_name.split(".", 2)
        if service != "lambda":  # the benchmark's own Invoke calls are not the function's
            self.calls[f"{service}:{operation}"] += 1

    def take(self) -> Counter[str]:
        taken = Counter(self.calls)
        self.calls.clear()
        return taken


def csr_pem(common_name: str, key: Any) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def fmt_calls(calls: Counter[str], per: int = 1) -> str:
    return ", ".join(f"`{op}` {n / per:g}" for op, n in sorted(calls.items())) or "none"


class ServerCallCounter:
    """Counts the AWS calls the functions' workers make, at the sandbox's HTTP front (the handlers
    run in worker processes, out of reach of this process's botocore events): JSON-protocol calls
    by ``X-Amz-Target`` (DynamoDB, KMS, ACM, EventBridge)."""

    PREFIXES = {
        "DynamoDB_20120810": "dynamodb",
        "TrentService": "kms",
        "CertificateManager": "acm",
        "AWSEvents": "events",
    }

    def __init__(self) -> None:
        from utils.sandbox import front

        self.calls: Counter[str] = Counter()
        original = front.Front.__call__
        counter = self

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
            if prefix in counter.PREFIXES:
                counter.calls[f"{counter.PREFIXES[prefix]}:{operation}"] += 1
            return original(app, environ, start_response)

        front.Front.__call__ = counted  # type: ignore[method-assign,assignment]

    def take(self) -> Counter[str]:
        taken = Counter(self.calls)
        self.calls.clear()
        return taken


class MotoTransactTime:
    """Time moto spends in DynamoDB TransactWriteItems (it deep-copies every table to roll back, so
    its cost grows with the table: an emulator cost that DynamoDB does not have)."""

    def __init__(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        self.seconds: list[float] = []
        original = DynamoDBBackend.transact_write_items
        timer = self

        def timed(backend: Any, transact_items: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(backend, transact_items)
            finally:
                timer.seconds.append(time.perf_counter() - started)

        DynamoDBBackend.transact_write_items = timed  # type: ignore[method-assign,assignment]


def fill_table(sandbox: Any, count: int) -> None:
    """Put ``count`` issued-certificate items (about 1.5 KB each, as the issue function leaves
    them) into the CA table, so per-request costs are measured against a table of real size."""
    from kmsca.table_keys import certificate_key

    client = sandbox.client("dynamodb")
    table = sandbox.physical["CaTable"].ref
    body = "MIIB" + "A" * 1300
    for start in range(0, count, 25):
        requests = [
            {"PutRequest": {"Item": {
                "pk": {"S": certificate_key(f"{0x7000000000 + i:x}")}, "status": {"S": "issued"},
                "ca": {"S": "issuing"},
                "not_after": {"S": "2027-02-01T00:00:00Z"}, "certificate": {"S": body},
            }}}
            for i in range(start, min(start + 25, count))
        ]
        client.batch_write_item(RequestItems={table: requests})


def issuance_section(issuances: int, rounds: int, table_items: int) -> str:
    from utils.bench_targets import CallerCounter

    transact = MotoTransactTime()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    csrs = [csr_pem(f"bench-{i}", ec_key) for i in range(issuances + 1)]
    rsa_csr = csr_pem("bench-rsa", rsa_key)
    per_round = max(1, issuances // rounds)
    handler: dict[str, list[float]] = {"ec": [], "rsa": [], "http": [], "idem": []}
    rounds_median: dict[str, list[float]] = {"ec": [], "rsa": [], "http": []}
    hop: list[float] = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING", "EnableViewerMtls": "false"}) as sandbox:
        sandbox.functions["IssueFunction"].env["POWERTOOLS_METRICS_DISABLED"] = "true"
        # The issue function's own calls (by its role's credentials): the stream-triggered functions
        # run at the same time (PutEvents of the Issued events) and are not the issuance's cost.
        callers = CallerCounter(sandbox)

        class IssueCalls:
            @staticmethod
            def take() -> Counter[str]:
                return Counter({op: n for (caller, op), n in callers.take().items() if caller == "IssueFunction"})

        counter = IssueCalls()

        def run(event: dict[str, Any]) -> float:
            """The handler's own time (measured inside the worker), milliseconds."""
            result = sandbox.run_function("IssueFunction", event)
            if result.function_error:
                raise RuntimeError(result.json())
            return result.duration_ms

        counter.take()  # forget the bootstrap's calls
        run({"csr": csrs[0]})
        cold_calls = counter.take()
        n = 1
        for _ in range(rounds):  # interleaved: EC, RSA and HTTP-invoked issuances in every round
            this_round: dict[str, list[float]] = {"ec": [], "rsa": [], "http": []}
            for _ in range(per_round):
                this_round["ec"].append(run({"csr": csrs[n]}))
                n += 1
            warm_calls = counter.take()
            for _ in range(per_round):
                this_round["rsa"].append(run({"csr": rsa_csr}))
            for _ in range(per_round):
                started = time.perf_counter()
                sandbox.invoke("IssueFunction", {"csr": rsa_csr})
                this_round["http"].append((time.perf_counter() - started) * 1000)
            counter.take()
            for key, values in this_round.items():
                handler[key] += values
                rounds_median[key].append(statistics.median(values))
            hop.append(statistics.median(this_round["http"]) - statistics.median(this_round["rsa"]))
        warm_n = per_round

        fill_table(sandbox, table_items)
        counter.take()
        transact.seconds.clear()
        idem_moto: list[float] = []
        for i in range(20):
            duration = run({"csr": csrs[i], "idempotency_key": f"bench-{i}"})
            handler["idem"].append(duration)
            idem_moto.append(sum(transact.seconds) * 1000)
            transact.seconds.clear()
        idem_calls = counter.take()
        run({"csr": csrs[0], "idempotency_key": "bench-0"})
        replay_calls = counter.take()
        callers.close()

    sign_calls = warm_calls.get("kms:Sign", 0) / warm_n
    total_warm = sum(warm_calls.values()) / warm_n
    without_moto = [d - m for d, m in zip(handler["idem"], idem_moto, strict=True)]
    lines = [
        "The issue handler runs in its sandbox worker process; **handler time** is measured inside the "
        "worker around the handler call (what Lambda bills as duration), without the Lambda Invoke "
        f"HTTP hop, which is given separately. {rounds} rounds, interleaved (EC, RSA, invoked over HTTP); "
        "min/median/max are of the rounds' medians. AWS calls are counted at the sandbox's HTTP front, "
        "those signed with the issue function's credentials only (the stream-triggered functions run meanwhile).",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| AWS calls, cold issuance (first in a container) | {fmt_calls(cold_calls)} |",
        f"| AWS calls per warm issuance | {fmt_calls(warm_calls, warm_n)}: **{total_warm:g} in total** |",
        f"| AWS calls per warm issuance with `idempotency_key` | {fmt_calls(idem_calls, 20)} |",
        f"| AWS calls for an idempotent replay | {fmt_calls(replay_calls)} |",
        f"| `kms:Sign` per issuance | **{sign_calls:g}** |",
        f"| warm issuance, EC P-256 CSR, handler time ({len(handler['ec'])} issuances) | "
        f"**{rounds_spread(rounds_median['ec'])}**, p95 {percentile(handler['ec'], 0.95):.1f} ms |",
        f"| warm issuance, RSA-2048 CSR, handler time | {rounds_spread(rounds_median['rsa'])}, "
        f"p95 {percentile(handler['rsa'], 0.95):.1f} ms |",
        f"| the same RSA issuance through Lambda Invoke (HTTP), client time | {rounds_spread(rounds_median['http'])} |",
        f"| of which the invoke hop (client time - handler time) | {rounds_spread(hop)} |",
        f"| warm issuance with `idempotency_key`, handler time, table of {table_items:,} items | "
        f"{spread(handler['idem'], 'ms')}; moto's TransactWriteItems in it {spread(idem_moto, 'ms')} |",
        f"| the same without moto's TransactWriteItems (emulator cost removed) | {spread(without_moto, 'ms')} |",
    ]
    return "\n".join(["## Issuance", "", *lines])


def rounds_spread(values: list[float]) -> str:
    """``median ms (min-max)`` of per-round medians."""
    return spread(values, "ms")


class HttpWait:
    """Time spent in botocore's HTTP send (waiting on the service), by installing a wrapper on
    ``Endpoint._send``; the rest of an operation's wall time is our code and botocore."""

    def __init__(self) -> None:
        import botocore.endpoint

        self.seconds = 0.0
        original = botocore.endpoint.Endpoint._send
        wait = self

        def timed(endpoint: Any, request: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(endpoint, request)
            finally:
                wait.seconds += time.perf_counter() - started

        botocore.endpoint.Endpoint._send = timed  # type: ignore[method-assign]


class RevokedIndexPages:
    """Serves ``Query`` on the ``RevokedByCa`` index from memory, page by page, as DynamoDB does:
    items in sort-key order, at most 1 MB of index item size (keys and projected attributes) a
    page, ``LastEvaluatedKey``/``ExclusiveStartKey``. Installed behind botocore's ``before-send``
    on one DynamoDB client, so botocore parses real JSON responses; every other call goes to the
    sandbox. moto's own GSI Query re-reads and deep-copies the whole table for every page and
    counts full items toward the 1 MB, which makes 100,000 entries take hours there."""

    PAGE_BYTES = 1024 * 1024

    def __init__(self, client: Any, ca: str) -> None:
        self.items: list[dict[str, Any]] = []
        self.sizes: list[int] = []
        self._position: dict[str, int] = {}
        self._ca = ca
        self.seconds = 0.0  # time spent serving Query pages (the emulated DynamoDB)
        client.meta.events.register("before-send.dynamodb.Query", self._send)

    def add(self, count: int, not_after: datetime) -> None:
        """Add ``count`` revoked certificates expiring at ``not_after`` (ISO text sorts as time)."""
        from kmsca.table_keys import certificate_key

        expiry = not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        for _ in range(count):
            serial = format(x509.random_serial_number(), "x")
            serial = serial if len(serial) % 2 == 0 else "0" + serial
            item = {  # the index entry: table key, index keys, the projected crl_entry
                "pk": {"S": certificate_key(serial)}, "revoked_ca": {"S": self._ca}, "not_after": {"S": expiry},
                "crl_entry": {"S": "2026-11-01T00:00:00Z keyCompromise"},
            }
            self._position[item["pk"]["S"]] = len(self.items)
            self.items.append(item)
            # DynamoDB item size: attribute names plus values (UTF-8), plus 100 bytes of index overhead
            self.sizes.append(sum(len(k) + len(v["S"]) for k, v in item.items()) + 100)

    def pages_for(self, count: int) -> int:
        pages, used = 1, 0
        for size in self.sizes[:count]:
            if used + size > self.PAGE_BYTES:
                pages, used = pages + 1, 0
            used += size
        return pages

    def _send(self, request: Any, **_: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._page(request)
        finally:
            self.seconds += time.perf_counter() - started

    def _page(self, request: Any) -> Any:
        import json

        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        body = json.loads(request.body)
        start_key = body.get("ExclusiveStartKey")
        index = self._position[start_key["pk"]["S"]] + 1 if start_key else 0
        lower = body["ExpressionAttributeValues"][":from"]["S"]
        page, used = [], 0
        while index < len(self.items):
            item, size = self.items[index], self.sizes[index]
            if item["not_after"]["S"] >= lower:
                if used + size > self.PAGE_BYTES:
                    break
                page.append(item)
                used += size
            index += 1
        response: dict[str, Any] = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
        if index < len(self.items):
            last = page[-1]
            response["LastEvaluatedKey"] = {k: last[k] for k in ("pk", "revoked_ca", "not_after")}
        raw = json.dumps(response).encode()
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, MockRawResponse(raw))


def _admin(sandbox: Any) -> Any:
    """The sandbox administrator's principal (set once the sandbox has started)."""
    if sandbox.admin is None:
        raise RuntimeError("the sandbox has no administrator yet (not started)")
    return sandbox.admin


def _crl_publisher(sandbox_endpoint: str, region: str, credentials: dict[str, str], physical: dict[str, str]) -> Any:
    """(index emulator, publisher, issuing signer) against the sandbox, as the function builds them."""
    from kmsca.ca import load_ca_signers
    from kmsca.certificates import ISSUING
    from kmsca.crl import CrlPublisher
    from kmsca.settings import SigningSettings
    from kmsca.store import DynamoDbCertificateStore

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=sandbox_endpoint, region_name=region, **credentials)

    dynamodb = client("dynamodb")
    index = RevokedIndexPages(dynamodb, ISSUING)
    store = DynamoDbCertificateStore(dynamodb, physical["table"])
    signer = load_ca_signers(store, client("kms"), {ISSUING: physical["key"]}, SigningSettings())[ISSUING]
    publisher = CrlPublisher(store, client("s3"), physical["public"], physical["internal"], timedelta(hours=24))
    return index, publisher, signer


def crl_memory_child(spec_json: str) -> None:
    """In a fresh process: fill the index emulator, reset the peak RSS (``/proc/self/clear_refs``),
    publish once, print the RSS before and the peak during publication (KiB) as JSON."""
    import json

    spec = json.loads(spec_json)
    index, publisher, signer = _crl_publisher(spec["endpoint"], spec["region"], spec["credentials"], spec["physical"])
    index.add(spec["size"], datetime.now(UTC) + timedelta(days=60))
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    before = int(status["VmRSS"].split()[0])
    publisher.publish(signer, datetime.now(UTC))
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    print(json.dumps({"before_kib": before, "peak_kib": int(status["VmHWM"].split()[0])}))


def crl_section(sizes: list[int], runs: int) -> str:
    import json

    counter = CallCounter()
    wait = HttpWait()
    rows = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING", "EnableViewerMtls": "false"}) as sandbox:
        admin = _admin(sandbox)
        credentials = {"aws_access_key_id": admin.access_key_id, "aws_secret_access_key": admin.secret_access_key}
        physical = {"table": sandbox.physical["CaTable"].ref, "key": sandbox.physical["IssuingCaKey"].attrs["Arn"],
                    "public": sandbox.physical["PublicBucket"].ref, "internal": sandbox.physical["InternalBucket"].ref}
        index, publisher, signer = _crl_publisher(sandbox.endpoint_url, sandbox.region, credentials, physical)
        for size in sorted(sizes):
            index.add(size - len(index.items), datetime.now(UTC) + timedelta(days=60))
            totals, waits = [], []
            for _ in range(runs):
                counter.take()
                gc.collect()
                wait.seconds = index.seconds = 0.0
                started = time.perf_counter()
                publication = publisher.publish(signer, datetime.now(UTC))
                totals.append(time.perf_counter() - started)
                waits.append(wait.seconds + index.seconds)
                calls = counter.take()
            spec = {"endpoint": sandbox.endpoint_url, "region": sandbox.region, "credentials": credentials,
                    "physical": physical, "size": size}
            child = subprocess.run(
                [sys.executable, "-c", f"import utils.benchmark as b; b.crl_memory_child({json.dumps(spec)!r})"],
                cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'layers' / 'ca'}"},
                capture_output=True, text=True, check=True,
            )
            memory = json.loads(child.stdout.strip().splitlines()[-1])
            counter.take()
            rows.append(
                f"| {size:,} | {publication.entries:,} | **{spread(totals, 's', 2)}** | {spread(waits, 's', 2)} | "
                f"{memory['peak_kib'] / 1024:.0f} MiB (+{(memory['peak_kib'] - memory['before_kib']) / 1024:.0f}) | "
                f"{fmt_calls(calls)}: **{sum(calls.values())}** | {publication.der_size / 2**20:.2f} MB |"
            )
            print(rows[-1], file=sys.stderr)
    return "\n".join([
        "## CRL publication",
        "",
        "The issuing CA's CRL with N revoked, unexpired certificates, as the publication function does "
        "it: reserve a CRL number (UpdateItem), query the sparse `RevokedByCa` index, build the entries "
        "and the CRL, one `kms:Sign`, archive to the internal bucket, publish DER and PEM with "
        "conditional writes (HeadObject + PutObject each). Query pages are served from memory with "
        "DynamoDB's paging rules (see `RevokedIndexPages`: moto's GSI query is quadratic and would take "
        "hours at 100,000); every other call goes to the sandbox's moto over HTTP. "
        f"Time: {runs} runs, median (min-max). `waiting on AWS` is the time inside HTTP calls to moto "
        "plus serving the emulated Query pages; the rest is our code and botocore parsing. Memory: a "
        "fresh process fills the index emulator, resets its peak RSS, publishes once and reads the peak "
        "(`VmHWM`), native memory (cryptography, OpenSSL) included; in brackets the growth over the RSS "
        "before publication (the process's imports and the emulated index are in the first figure).",
        "",
        "| revoked | CRL entries | total | waiting on AWS (moto) | peak RSS | AWS calls | DER size |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Targets (issue 3, 100,000 entries, this machine): under 5 s and under 512 MB; AWS calls growing "
        "only with Query pages (at most 30); exactly one `kms:Sign`.",
    ])


def kvs_section(count: int) -> str:
    from kmsca.certificates import ISSUING
    from kmsca.kvs import KeyValueStoreSync
    from kmsca.kvs_state import DynamoDbKvsState
    from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream
    from kmsca.table_keys import certificate_key

    rows = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING"}) as sandbox:
        admin = _admin(sandbox)

        def client(service: str, region: str | None = None) -> Any:
            return boto3.client(
                service, endpoint_url=sandbox.endpoint_url, region_name=region or sandbox.region,
                aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key,
            )

        arn = sandbox.outputs["RevokedSerialsStoreArn"]
        dynamodb = client("dynamodb")
        index = RevokedIndexPages(dynamodb, ISSUING)
        store = DynamoDbCertificateStore(dynamodb, sandbox.physical["CaTable"].ref)
        kvs_client = client("cloudfront-keyvaluestore", "us-east-1")  # the sandbox checks the signer
        state = DynamoDbKvsState(dynamodb, sandbox.physical["CaTable"].ref, arn)  # as the function wires it
        sync = KeyValueStoreSync(kvs_client, arn, store, ISSUING, state=state)
        index.add(count, datetime.now(UTC) + timedelta(days=60))

        started = time.perf_counter()
        full = sync.reconcile(datetime.now(UTC))
        full_seconds = time.perf_counter() - started
        started = time.perf_counter()
        idle = sync.reconcile(datetime.now(UTC))
        idle_seconds = time.perf_counter() - started
        pages = index.pages_for(count)
        pages_text = f"`dynamodb:Query` {pages} (pages)"
        query = f"plus {pages_text}"
        rows.append(f"| reconcile, empty store to {count:,} revoked serials | {fmt_calls(Counter(full.calls))}: "
                    f"**{sum((full.calls or {}).values())}**, {query} | {full_seconds:.2f} s |")
        rows.append(f"| reconcile with nothing to do ({count:,} keys; the ETag is the CA's last write) | "
                    f"{fmt_calls(Counter(idle.calls))}: **{sum((idle.calls or {}).values())}**, plus "
                    f"`dynamodb:GetItem` 1 (the state), {pages_text} | {idle_seconds:.2f} s |")
        etag = kvs_client.describe_key_value_store(KvsARN=arn)["ETag"]
        kvs_client.update_keys(KvsARN=arn, IfMatch=etag, Puts=[{"Key": "0bad", "Value": "by hand"}])
        started = time.perf_counter()
        foreign = sync.reconcile(datetime.now(UTC))
        foreign_seconds = time.perf_counter() - started
        rows.append(f"| reconcile after a write the CA did not make (full listing) | "
                    f"{fmt_calls(Counter(foreign.calls))}: **{sum((foreign.calls or {}).values())}**, plus "
                    f"`dynamodb:GetItem` 1, `dynamodb:BatchGetItem` 1, {pages_text} | {foreign_seconds:.2f} s |")

        record = {"eventName": "MODIFY", "dynamodb": {"NewImage": {
            "pk": {"S": certificate_key("0abc")}, "status": {"S": "revoked"},
            "not_after": {"S": (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "crl_entry": {"S": "2026-11-21T08:00:00Z keyCompromise"}}}}
        one = sync.apply_revocations(revoked_entries_from_stream([record]), datetime.now(UTC))
        rows.append(f"| one incremental revocation (stream) | {fmt_calls(Counter(one.calls))}: "
                    f"**{sum((one.calls or {}).values())}** | |")

        # End to end in the sandbox: revoke call returns -> key in the store (stream -> SyncKvsFunction).
        delays = []
        for i in range(5):
            key = ec.generate_private_key(ec.SECP256R1())
            serial = sandbox.invoke("IssueFunction", {"csr": csr_pem(f"kvs-{i}", key)})["serial_number"]
            sandbox.invoke("RevokeFunction", {"serial_number": serial, "reason": "keyCompromise"})
            returned = time.perf_counter()
            while serial not in sandbox.kvs.items(arn):
                if time.perf_counter() - returned > 30:
                    raise RuntimeError(f"{serial} did not reach the KeyValueStore within 30 s")
                time.sleep(0.02)
            delays.append(time.perf_counter() - returned)
        rows.append(f"| revoke call returned -> key in the KeyValueStore (sandbox, {len(delays)} runs) | | "
                    f"median **{statistics.median(delays):.2f} s**, max {max(delays):.2f} s |")
    return "\n".join([
        "## KeyValueStore sync",
        "",
        "`KeyValueStoreSync` against the sandbox's KeyValueStore emulator (SigV4A-signed requests, "
        "ETag/IfMatch, 50 keys per UpdateKeys). The revoked serials come from the `RevokedByCa` index, "
        "served from memory as in the CRL benchmark. The end-to-end delay is mostly the stream's "
        "1-second batching window (`MaximumBatchingWindowInSeconds: 1`) and the sandbox's stream polling.",
        "",
        "| operation | AWS calls | time |",
        "|---|---|---|",
        *rows,
        "",
        f"Floors and targets (issues 4, 13): {count:,} keys need at least {-(-count // 50)} `UpdateKeys`; one "
        "incremental revocation 2 KeyValueStore calls (plus the state's GetItem and PutItem); a reconcile "
        "with nothing to do 1 KeyValueStore call (`DescribeKeyValueStore`, whose ETag is the one the CA's "
        "last write produced; `kmsca/kvs_state.py`); a full listing only after a write the CA did not make, "
        "a digest that differs, or every 24 hours.",
    ])


FLOOR_ROW = "libraries only (no kmsca)"
# What the issue handler's module body needs from its libraries, and nothing of the CA's code.
LIBRARY_FLOOR = """\
import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pydantic import BaseModel, ConfigDict, Field, StrictStr

class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    csr: StrictStr | None = Field(default=None, max_length=32768)

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))
kms = boto3.client("kms")
dynamodb = boto3.client("dynamodb")
"""


def cold_section(runs: int, python: Path, baseline: Path | None = None) -> str:
    """Fresh-process cold start of every handler, spawn -> handler module importable: ``python -c
    "import app"`` with the function's environment and only what its package ships importable (see
    utils/lambda_packages.py), run by ``python`` (CPython 3.12 as the template's runtime,
    utils/cold_python.py makes it). The parent's clock stops when the child writes its READY line
    after the import; the child then exits without interpreter teardown (``os._exit``), as a Lambda
    process is never torn down on the request path.

    Raises:
        SystemExit: ``python`` does not exist.
    """
    import shutil
    import tempfile

    from utils.lambda_packages import READY, function_layers, import_script, interpreter_packages
    from utils.sandbox.template import load_template

    if not python.exists():
        raise SystemExit(f"cold section: no interpreter at {python}; make it with `python utils/cold_python.py` "
                         "(CPython 3.12 with exactly the functions' packages) or pass --cold-python PATH")
    packages = interpreter_packages(str(python))
    python_version = subprocess.run([str(python), "-c", "import sys; print(sys.version.split()[0])"],
                                    capture_output=True, text=True, check=True).stdout.strip()
    layers = function_layers(load_template(REPO / "template.yaml"))
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING"}) as sandbox:
        functions = {name: function for name, function in sandbox.functions.items() if name in layers}
    jobs = {}
    for name, function in functions.items():
        env = {**os.environ, **function.env}
        env.pop("POWERTOOLS_TRACE_DISABLED", None)  # as in Lambda: Tracer on (Tracing: Active)
        # As in Lambda: without LAMBDA_TASK_ROOT the X-Ray SDK's recorder makes a centralised sampler
        # with two X-Ray botocore clients at import (about 0.2 s of CPU here), which Lambda never does.
        env["LAMBDA_TASK_ROOT"] = str(function.spec.code_uri)
        script = import_script(function.spec.code_uri, layers[name], function.spec.module, packages=packages)
        jobs[name] = (script, env)
    # The floor: the issue function's libraries doing what its module body does, without kmsca.
    floor_dir = Path(tempfile.mkdtemp(prefix="cold-floor-"))
    (floor_dir / "app.py").write_text(LIBRARY_FLOOR, encoding="utf-8")
    jobs[FLOOR_ROW] = (import_script(floor_dir, layers["IssueFunction"], "app", packages=packages),
                       jobs["IssueFunction"][1])
    old_layers = {}
    if baseline is not None:  # the same handlers from another checkout, in the same rounds
        old_layers = function_layers(load_template(baseline / "template.yaml"), repo=baseline)
        for name, function in functions.items():
            if name in old_layers:
                code_dir = baseline / function.spec.code_uri.relative_to(REPO)
                script = import_script(code_dir, old_layers[name], function.spec.module, packages=packages)
                jobs[f"{name} (baseline)"] = (script, jobs[name][1])
    # The build's bytecode for the layers' own sources (kmsca), for this interpreter: what a layer that
    # ships bytecode holds (layers/ca/compile_bytecode.py); the children load it, compile the rest.
    checkouts = [(REPO, layers)] + ([(baseline, old_layers)] if baseline is not None else [])
    for _, checkout_layers in checkouts:
        for layer in {layer.path: layer for used in checkout_layers.values() for layer in used}.values():
            if layer.bytecode_modules:
                subprocess.run([str(python), "-m", "compileall", "-q", str(layer.path)], check=True,
                               capture_output=True)
    imports: dict[str, list[float]] = {name: [] for name in jobs}
    walls: dict[str, list[float]] = {name: [] for name in jobs}
    cpus: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(runs):  # interleaved: one run of every handler, then the next round
        for name, (code, env) in jobs.items():
            with tempfile.TemporaryFile("w+") as errors:
                started = time.perf_counter()
                child = subprocess.Popen([str(python), "-c", code], cwd="/", env=env, stdout=subprocess.PIPE,
                                         stderr=errors, text=True)
                assert child.stdout is not None
                ready = next((line for line in child.stdout if line.startswith(READY + " ")), None)
                wall = (time.perf_counter() - started) * 1000
                child.stdout.read()
                child.wait()
                if ready is None or child.returncode != 0:
                    errors.seek(0)
                    raise RuntimeError(f"{name}: import failed\n{errors.read()}")
            _, import_ms, cpu_ms = ready.split()
            walls[name].append(wall)
            imports[name].append(float(import_ms))
            cpus[name].append(float(cpu_ms))
    shutil.rmtree(floor_dir, ignore_errors=True)
    shown_python = python.relative_to(REPO) if python.is_relative_to(REPO) else python
    rows = [
        f"| {name} | **{spread(walls[name], 'ms', 0)}** | {spread(cpus[name], 'ms', 0)} | "
        f"{spread(imports[name], 'ms', 0)} |"
        for name in jobs
    ]
    return "\n".join([
        "## Cold start",
        "",
        f"Interpreter: `{shown_python}`, Python {python_version} (the template's runtime is python3.12; "
        "`utils/cold_python.py` makes this virtualenv with exactly the distributions the functions' "
        "layers ship plus the runtime's boto3 stack, at the versions of the development virtualenv).",
        "",
        f"Each handler imported in a fresh interpreter (`python -c \"import app\"`), {runs} rounds interleaved "
        "across handlers; the function's environment from the template, and `LAMBDA_TASK_ROOT` as Lambda sets "
        "it (so Powertools Tracer is on, as with `Tracing: Active`, and the X-Ray SDK uses its Lambda sampler); "
        "importable: the function's code, its layers' sources and only the distributions its layers' "
        "`requirements.txt` pull in plus the runtime's boto3 stack (`utils/lambda_packages.py`); anything "
        "else (e.g. `awscrt` outside the layers that ship it) raises ImportError as it would in Lambda. "
        "Bytecode as deployed: Lambda's /var/task and /opt are read-only, so Python cannot write "
        "`__pycache__` there and compiles every module it finds without bytecode at every cold start; the "
        "child writes none and compiles from source every module of the function's code and layers for which "
        "the layer's build ships no bytecode (`Layer.bytecode_modules`, `ships_all_bytecode`: the layers' "
        "Makefiles; the runtime's own boto3 is taken as precompiled). "
        "**Ready** = wall time from spawning the child until it reports the handler module imported (what "
        "Lambda's Init Duration ends with: the runtime is then ready for the first event), interpreter "
        "start included; the child then exits with `os._exit(0)`, so interpreter teardown (finalising about "
        "1,000 modules, about 0.1 s), which a Lambda process never does on the request path, is not counted. "
        "CPU = the child's own user + system time at that same point (`getrusage(RUSAGE_SELF)`), which another "
        "process competing for the cores inflates far less than wall time; import = the `import app` "
        "statement alone (wall).",
        "",
        "| function | ready (wall), median (min-max) | CPU until ready | import app (wall) |",
        "|---|---|---|---|",
        *rows,
        f"\n`{FLOOR_ROW}`: a module that does what the issue handler's body needs from its libraries and "
        "nothing of the CA's code (`import boto3`, the KMS and DynamoDB clients, cryptography's x509 and "
        "key modules, one strict pydantic model, Powertools `Logger()`, `Metrics()`, "
        "`Tracer(patch_modules=(\"botocore\",))`), with the issue function's package and environment: the "
        "floor under the issue handler with these libraries.",
        *([f"\nBaseline: `{baseline}` (another checkout, e.g. `git archive main`), measured in the same "
           "rounds, by the same interpreter, under the same load."] if baseline is not None else []),
    ])


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    """``median (min-max) unit`` of repeated measurements."""
    med, low, high = statistics.median(values), min(values), max(values)
    return f"{med:.{digits}f} {unit} ({low:.{digits}f}-{high:.{digits}f})"


def package_section(build_dir: Path) -> str:
    """Deployed size of every function (its code + its layers) from a ``sam build`` directory."""
    import io
    import zipfile

    from utils.lambda_packages import function_layers
    from utils.sandbox.template import load_template

    if not (build_dir / "template.yaml").exists():
        raise SystemExit(f"{build_dir} has no sam build output: run ./dev.sh sam first")

    def sizes(path: Path) -> tuple[int, int]:
        buffer, raw = io.BytesIO(), 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                raw += file.stat().st_size
                archive.write(file, file.relative_to(path))
        return raw, len(buffer.getvalue())

    layers = function_layers(load_template(REPO / "template.yaml"))
    names = {*layers, *(layer.logical_id for used in layers.values() for layer in used)}
    measured = {name: sizes(build_dir / name) for name in names if (build_dir / name).is_dir()}
    rows = []
    for name, function_layers_ in layers.items():
        parts = [name, *(layer.logical_id for layer in function_layers_)]
        raw = sum(measured.get(part, (0, 0))[0] for part in parts)
        zipped = sum(measured.get(part, (0, 0))[1] for part in parts)
        rows.append(f"| {name} | {' + '.join(parts[1:])} | {raw / 2**20:.1f} MiB | **{zipped / 2**20:.1f} MiB** |")
    layer_rows = [f"| {name} | {raw / 2**20:.1f} MiB | {zipped / 2**20:.1f} MiB |"
                  for name, (raw, zipped) in sorted(measured.items()) if name.endswith("Layer")]
    return "\n".join([
        "## Package size",
        "",
        f"From `sam build` (`{build_dir.relative_to(REPO) if build_dir.is_relative_to(REPO) else build_dir}`, "
        "arm64, python3.12): each function's code plus its layers, unzipped and zipped (deflate, as "
        "Lambda stores them). The runtime's own boto3 is not counted (every function has it).",
        "",
        "| function | layers | unzipped | zipped |",
        "|---|---|---|---|",
        *rows,
        "",
        "| layer | unzipped | zipped |",
        "|---|---|---|",
        *layer_rows,
    ])


def environment_note() -> str:
    """Machine, load, Python and library versions: the figures mean nothing without them."""
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    libs = ", ".join(f"{name} {version(name)}" for name in
                     ("boto3", "botocore", "moto", "cryptography", "pydantic", "aws-lambda-powertools"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Machine: {os.uname().machine}, {cpu}, {os.cpu_count()} cores, load average {load} at start; "
            f"Python {sys.version.split()[0]}; {libs}; {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC. "
            "The AWS side is moto (server mode) on 127.0.0.1: every AWS call is an HTTP round trip to an "
            "emulator, so absolute times are this machine's, not Lambda's.")


SECTIONS = ("cold", "package", "issuance", "crl", "kvs", "ocsp", "inventory", "targets")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--issuances", type=int, default=200, help="warm issuances of each kind (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of issuances (default 5)")
    parser.add_argument("--table-items", type=int, default=5000,
                        help="certificate items in the table for the idempotency row (default 5000)")
    parser.add_argument("--crl-sizes", default="1000,10000,100000", help="revoked certificates per CRL run")
    parser.add_argument("--crl-runs", type=int, default=3, help="timed publications per CRL size (default 3)")
    parser.add_argument("--kvs-keys", type=int, default=10000, help="revoked serials for the KVS sync run")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh processes per handler (default 7)")
    parser.add_argument("--cold-python", type=Path, default=REPO / ".venv-bench312" / "bin" / "python",
                        help="interpreter for the cold section: CPython 3.12 with the functions' packages "
                             "(default .venv-bench312, made by utils/cold_python.py)")
    parser.add_argument("--cold-baseline", type=Path,
                        help="also time the handlers of this checkout (before/after in the same rounds)")
    parser.add_argument("--build-dir", type=Path, default=REPO / ".aws-sam" / "build",
                        help="sam build output for the package section (default .aws-sam/build)")
    parser.add_argument("--ocsp-responses", type=int, default=1000, help="warm OCSP responses to time")
    parser.add_argument("--inventory-certificates", type=int, default=1000,
                        help="certificates issued for the inventory section (default 1000)")
    parser.add_argument("--target-counts", default="1,2,4", help="edge targets (workload accounts) per targets run")
    parser.add_argument("--target-runs", type=int, default=5, help="timed revocations per target count (default 5)")
    parser.add_argument("--write", type=Path, help="also write the report to this Markdown file")
    args = parser.parse_args()
    if args.issuances < 2:
        parser.error("--issuances must be at least 2")
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    parts = [environment_note()]
    if "package" in sections:
        parts.append(package_section(args.build_dir))
    if "cold" in sections:
        parts.append(cold_section(args.cold_runs, args.cold_python, args.cold_baseline))
    if "issuance" in sections:
        parts.append(issuance_section(args.issuances, args.rounds, args.table_items))
    if "crl" in sections:
        parts.append(crl_section([int(n) for n in args.crl_sizes.split(",")], args.crl_runs))
    if "kvs" in sections:
        parts.append(kvs_section(args.kvs_keys))
    if "ocsp" in sections:
        from utils.bench_ocsp import ocsp_section

        parts.append(ocsp_section(args.ocsp_responses))
    if "inventory" in sections:
        from utils.bench_inventory import inventory_section

        parts.append(inventory_section(args.inventory_certificates))
    if "targets" in sections:
        from utils.bench_targets import targets_section

        parts.append(targets_section([int(n) for n in args.target_counts.split(",")], args.target_runs))
    report = "\n\n".join(parts)
    print(report)
    if args.write:
        command = "python utils/benchmark.py " + " ".join(sys.argv[1:])
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(
            f"# Benchmarks\n\nProduced by `{command.strip()}` (`./dev.sh bench` runs every section).\n\n"
            f"{report}\n",
            encoding="utf-8",
        )
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
