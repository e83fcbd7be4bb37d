#!/usr/bin/env python3
"""Benchmarks: issuance, CRL publication, KeyValueStore sync. Figures in the output, not in tests.

Everything runs in-process against the local sandbox (moto server on 127.0.0.1, resources from
template.yaml, the CA bootstrapped by the real custom resource), so every AWS call crosses HTTP
as it would from Lambda. AWS calls are counted by operation with botocore ``before-call``
events. Prints Markdown; ``--write docs/benchmark.md`` also stores it with the command.

    python utils/benchmark.py [--sections issuance,crl,kvs,ocsp] [--issuances 200]
                              [--crl-sizes 1000,10000,100000] [--write docs/benchmark.md]

issuance: AWS calls per issuance (cold, warm, with an idempotency key, a replay); median and p95
    ms per warm issuance; the issue handler's cold import time (fresh interpreter, median of 5).
crl: the issuing CA's CRL with N revoked certificates: seconds to query, build, sign (KMS) and
    publish; the part spent waiting on moto; peak traced memory; AWS calls by operation; DER size.
kvs: KeyValueStore sync from empty to 10,000 serials, a reconcile with nothing to do, one
    incremental revocation (calls by operation), and revoke -> key in the store in the sandbox.
ocsp: warm ms per OCSP response (median, p95), AWS calls and ``kms:Sign`` per 1,000 responses,
    cost per million requests at list prices with CloudFront's cache in front (utils/bench_ocsp.py).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
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
        _, service, operation = event_name.split(".", 2)
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


def cold_import_ms(env: dict[str, str], runs: int = 5) -> list[float]:
    """Import time of functions/issue/app.py in fresh interpreters (module scope: settings,
    boto3 clients, Powertools, pydantic, cryptography), milliseconds."""
    code = (
        "import sys,time; sys.path[:0]=['functions/issue','layers/ca']; t=time.perf_counter(); "
        "import app; print((time.perf_counter()-t)*1000)"
    )
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env},
            capture_output=True, text=True, check=True,
        )
        results.append(float(out.stdout.strip().splitlines()[-1]))
    return results


def fmt_calls(calls: Counter[str], per: int = 1) -> str:
    return ", ".join(f"`{op}` {n / per:g}" for op, n in sorted(calls.items())) or "none"


def issuance_section(issuances: int) -> str:
    counter = CallCounter()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    csrs = [csr_pem(f"bench-{i}", ec_key) for i in range(issuances)]
    lines: list[str] = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING", "EnableViewerMtls": "false"}) as sandbox:
        counter.take()  # forget the bootstrap's calls
        sandbox.functions["IssueFunction"].env["POWERTOOLS_METRICS_DISABLED"] = "true"
        sandbox.invoke("IssueFunction", {"csr": csrs[0]})
        cold_calls = counter.take()

        durations: list[float] = []
        for pem in csrs[1:]:
            started = time.perf_counter()
            sandbox.invoke("IssueFunction", {"csr": pem})
            durations.append((time.perf_counter() - started) * 1000)
        warm_calls = counter.take()
        warm_n = len(csrs) - 1

        idem_durations: list[float] = []
        for i in range(20):
            started = time.perf_counter()
            sandbox.invoke("IssueFunction", {"csr": csrs[i], "idempotency_key": f"bench-{i}"})
            idem_durations.append((time.perf_counter() - started) * 1000)
        idem_calls = counter.take()
        sandbox.invoke("IssueFunction", {"csr": csrs[0], "idempotency_key": "bench-0"})
        replay_calls = counter.take()

        rsa_durations: list[float] = []
        rsa_csr = csr_pem("bench-rsa", rsa_key)
        for _ in range(20):
            started = time.perf_counter()
            sandbox.invoke("IssueFunction", {"csr": rsa_csr})
            rsa_durations.append((time.perf_counter() - started) * 1000)
        counter.take()
        function_env = dict(sandbox.functions["IssueFunction"].env)

    import_ms = cold_import_ms(function_env)
    sign_calls = warm_calls.get("kms:Sign", 0) / warm_n
    total_warm = sum(warm_calls.values()) / warm_n
    lines += [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d')}; moto server on 127.0.0.1 (every AWS call is an HTTP "
        "round trip); handler run in-process through the sandbox's Lambda Invoke.",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| AWS calls, cold issuance (first in a container) | {fmt_calls(cold_calls)} |",
        f"| AWS calls per warm issuance ({warm_n} issuances) | {fmt_calls(warm_calls, warm_n)}: "
        f"**{total_warm:g} in total** |",
        f"| AWS calls per warm issuance with `idempotency_key` | {fmt_calls(idem_calls, 20)} |",
        f"| AWS calls for an idempotent replay | {fmt_calls(replay_calls)} |",
        f"| `kms:Sign` per issuance | **{sign_calls:g}** |",
        f"| warm issuance, EC P-256 CSR, median / p95 | **{statistics.median(durations):.1f} ms / "
        f"{percentile(durations, 0.95):.1f} ms** |",
        f"| warm issuance with `idempotency_key`, median / p95 | {statistics.median(idem_durations):.1f} ms / "
        f"{percentile(idem_durations, 0.95):.1f} ms |",
        f"| warm issuance, RSA-2048 CSR, median / p95 | {statistics.median(rsa_durations):.1f} ms / "
        f"{percentile(rsa_durations, 0.95):.1f} ms |",
        f"| issue handler cold import, median of {len(import_ms)} (min / max) | "
        f"**{statistics.median(import_ms):.0f} ms** ({min(import_ms):.0f} / {max(import_ms):.0f}) |",
        "",
        "Targets (issue 2): exactly one `kms:Sign` per issuance: "
        + ("met" if sign_calls == 1 else "NOT MET")
        + "; at most 3 AWS calls per warm issuance: "
        + ("met" if total_warm <= 3 and sum(idem_calls.values()) / 20 <= 3 else "NOT MET")
        + ".",
    ]
    return "\n".join(["## Issuance", "", *lines])


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
        client.meta.events.register("before-send.dynamodb.Query", self._send)

    def add(self, count: int, not_after: datetime) -> None:
        """Add ``count`` revoked certificates expiring at ``not_after`` (ISO text sorts as time)."""
        expiry = not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        for _ in range(count):
            serial = format(x509.random_serial_number(), "x")
            serial = serial if len(serial) % 2 == 0 else "0" + serial
            item = {  # the index entry: table key, index keys, the projected crl_entry
                "pk": {"S": f"CERT#{serial}"}, "revoked_ca": {"S": self._ca}, "not_after": {"S": expiry},
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


def crl_section(sizes: list[int]) -> str:
    from kmsca.certificates import ISSUING
    from kmsca.crl import CrlPublisher, load_ca_signers
    from kmsca.settings import SigningSettings
    from kmsca.store import DynamoDbCertificateStore

    counter = CallCounter()
    wait = HttpWait()
    rows = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING", "EnableViewerMtls": "false"}) as sandbox:
        def client(service: str) -> Any:
            return boto3.client(
                service, endpoint_url=sandbox.endpoint_url, region_name=sandbox.region,
                aws_access_key_id=sandbox.admin.access_key_id, aws_secret_access_key=sandbox.admin.secret_access_key,
            )

        dynamodb = client("dynamodb")
        index = RevokedIndexPages(dynamodb, ISSUING)
        store = DynamoDbCertificateStore(dynamodb, sandbox.physical["CaTable"].ref)
        signer = load_ca_signers(
            store, client("kms"), {ISSUING: sandbox.physical["IssuingCaKey"].attrs["Arn"]}, SigningSettings()
        )[ISSUING]
        publisher = CrlPublisher(
            store, client("s3"), sandbox.physical["PublicBucket"].ref,
            sandbox.physical["InternalBucket"].ref, timedelta(hours=24),
        )
        for size in sorted(sizes):
            index.add(size - len(index.items), datetime.now(UTC) + timedelta(days=60))
            counter.take()
            gc.collect()
            wait.seconds = 0.0
            started = time.perf_counter()
            publication = publisher.publish(signer, datetime.now(UTC))
            total = time.perf_counter() - started
            waited = wait.seconds
            calls = counter.take()
            # memory in a second run: tracing slows Python down, so it is not timed
            gc.collect()
            tracemalloc.start()
            publisher.publish(signer, datetime.now(UTC))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            counter.take()
            rows.append(
                f"| {size:,} | {publication.entries:,} | **{total:.2f} s** | {waited:.2f} s | "
                f"{peak / 2**20:.0f} MB | {fmt_calls(calls)}: **{sum(calls.values())}** | "
                f"{publication.der_size / 2**20:.2f} MB |"
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
        "hours at 100,000); every other call goes to the sandbox's moto over HTTP. `waiting on AWS` is "
        "the time inside HTTP calls to moto; the total includes botocore parsing every Query page. Peak "
        "memory is traced (tracemalloc) over a second, untimed publication, emulator threads included.",
        "",
        "| revoked | CRL entries | total | waiting on AWS (moto) | peak memory | AWS calls | DER size |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Targets (issue 3, 100,000 entries, this machine): under 5 s and under 512 MB; AWS calls growing "
        "only with Query pages (at most 30); exactly one `kms:Sign`.",
    ])


def kvs_section(count: int) -> str:
    from kmsca.certificates import ISSUING
    from kmsca.kvs import KeyValueStoreSync
    from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream

    rows = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING"}) as sandbox:
        def client(service: str, region: str | None = None) -> Any:
            return boto3.client(
                service, endpoint_url=sandbox.endpoint_url, region_name=region or sandbox.region,
                aws_access_key_id=sandbox.admin.access_key_id, aws_secret_access_key=sandbox.admin.secret_access_key,
            )

        arn = sandbox.outputs["RevokedSerialsStoreArn"]
        dynamodb = client("dynamodb")
        index = RevokedIndexPages(dynamodb, ISSUING)
        store = DynamoDbCertificateStore(dynamodb, sandbox.physical["CaTable"].ref)
        kvs_client = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
        sync = KeyValueStoreSync(kvs_client, arn, store, ISSUING)
        index.add(count, datetime.now(UTC) + timedelta(days=60))

        started = time.perf_counter()
        full = sync.reconcile(datetime.now(UTC))
        full_seconds = time.perf_counter() - started
        started = time.perf_counter()
        idle = sync.reconcile(datetime.now(UTC))
        idle_seconds = time.perf_counter() - started
        pages = index.pages_for(count)
        query = f"plus {pages} `dynamodb:Query` pages"
        rows.append(f"| reconcile, empty store to {count:,} revoked serials | {fmt_calls(Counter(full.calls))}: "
                    f"**{sum((full.calls or {}).values())}**, {query} | {full_seconds:.2f} s |")
        rows.append(f"| reconcile with nothing to do ({count:,} keys) | {fmt_calls(Counter(idle.calls))}: "
                    f"**{sum((idle.calls or {}).values())}**, {query} | {idle_seconds:.2f} s |")

        record = {"eventName": "MODIFY", "dynamodb": {"NewImage": {
            "pk": {"S": "CERT#0abc"}, "status": {"S": "revoked"},
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
        f"Floors and targets (issue 4): {count:,} keys need at least {-(-count // 50)} `UpdateKeys`; one "
        "incremental revocation 2 calls; a reconcile with nothing to do reads only (describe + list pages).",
    ])


SECTIONS = ("issuance", "crl", "kvs", "ocsp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--issuances", type=int, default=200, help="warm issuances to time (default 200)")
    parser.add_argument("--crl-sizes", default="1000,10000,100000", help="revoked certificates per CRL run")
    parser.add_argument("--kvs-keys", type=int, default=10000, help="revoked serials for the KVS sync run")
    parser.add_argument("--ocsp-responses", type=int, default=1000, help="warm OCSP responses to time")
    parser.add_argument("--write", type=Path, help="also write the report to this Markdown file")
    args = parser.parse_args()
    if args.issuances < 2:
        parser.error("--issuances must be at least 2")
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    parts = []
    if "issuance" in sections:
        parts.append(issuance_section(args.issuances))
    if "crl" in sections:
        parts.append(crl_section([int(n) for n in args.crl_sizes.split(",")]))
    if "kvs" in sections:
        parts.append(kvs_section(args.kvs_keys))
    if "ocsp" in sections:
        from utils.bench_ocsp import ocsp_section

        parts.append(ocsp_section(args.ocsp_responses))
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
