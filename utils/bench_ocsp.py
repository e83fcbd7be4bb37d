"""OCSP benchmark section of utils/benchmark.py (``--sections ocsp``); a module of its own so the
section stays self-contained.

The sandbox provides the stack (the CA bootstrapped by the real custom resource, certificates
issued and one revoked by the real functions). The OCSP handler (``functions/ocsp/app.py``) is then
imported **in this process** with the function's environment and its role's credentials (IAM is
enforced by the sandbox), so its AWS calls are counted here with botocore ``before-call`` events;
each one is an HTTP round trip to moto on 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[1]

#: AWS list prices (us-east-1, USD) used for the cost estimate; RE-CHECK them on the pricing pages
#: (CloudFront, Lambda, DynamoDB, KMS) before quoting a figure.
PRICES = {
    "cloudfront_https_per_10k": 0.0100,  # HTTPS requests, US/Europe (HTTP: 0.0075)
    "cloudfront_out_per_gb": 0.085,  # data transfer out, first 10 TB, US/Europe
    "lambda_per_million": 0.20,
    "lambda_arm64_gb_second": 0.0000133334,
    "dynamodb_per_million_rru": 0.125,  # on-demand read request units (a strongly consistent 4 KB read = 1)
    "kms_per_10k_sign": 0.03,  # asymmetric Sign requests
}
LAMBDA_MEMORY_GB = 0.5  # template Globals: MemorySize 512, arm64


def _csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _get_event(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, Any]:
    """A function URL event (payload 2.0) for ``GET /ocsp/<url-encoded base64 request>``, as the
    distribution forwards it."""
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()
    path = "/ocsp/" + quote(base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode(), safe="")
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": path}},
        "isBase64Encoded": False,
    }


class _Calls:
    """AWS calls by operation, from every boto3 client of the default session (the handler's)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", self._count)  # type: ignore[union-attr]

    def _count(self, event_name: str, **_kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}:{operation}"] += 1

    def take(self) -> Counter[str]:
        taken = Counter(self.calls)
        self.calls.clear()
        return taken


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _load_ocsp_handler() -> ModuleType:
    """Import functions/ocsp/app.py fresh (a cold start) under the current environment."""
    spec = importlib.util.spec_from_file_location("_bench_ocsp_app", REPO / "functions" / "ocsp" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _cost_rows(calls_per_1000: Counter[str], median_ms: float, hit_ratio: float) -> list[str]:
    """Cost per million viewer requests with ``hit_ratio`` of them answered from CloudFront's cache."""
    p = PRICES
    misses = 1_000_000 * (1 - hit_ratio)
    cloudfront = 100 * p["cloudfront_https_per_10k"] + 1_000_000 * 1.5e3 / 1e9 * p["cloudfront_out_per_gb"]
    billed_seconds = max(1.0, median_ms) / 1000  # Lambda bills per 1 ms
    lam = misses / 1e6 * p["lambda_per_million"] + misses * billed_seconds * LAMBDA_MEMORY_GB * p[
        "lambda_arm64_gb_second"
    ]
    reads = calls_per_1000.get("dynamodb:GetItem", 0) / 1000 * misses
    dynamodb = reads / 1e6 * p["dynamodb_per_million_rru"]
    kms = calls_per_1000.get("kms:Sign", 0) / 1000 * misses / 1e4 * p["kms_per_10k_sign"]
    total = cloudfront + lam + dynamodb + kms
    return [
        f"| {hit_ratio:.0%} | ${cloudfront:.2f} | ${lam:.2f} | ${dynamodb:.3f} | ${kms:.4f} | **${total:.2f}** |"
    ]


def ocsp_section(responses: int) -> str:
    """Warm ms per response (median, p95), AWS calls and ``kms:Sign`` per 1,000 responses, cost per
    million requests at list prices with CloudFront's cache in front."""
    from utils.sandbox.server import Sandbox

    overrides = {"LogLevel": "WARNING", "EnableViewerMtls": "false"}
    with Sandbox(REPO, parameter_overrides=overrides) as sandbox:
        issued = [sandbox.invoke("IssueFunction", {"csr": _csr(f"ocsp-bench-{i}")}) for i in range(4)]
        sandbox.invoke("RevokeFunction", {"serial_number": issued[0]["serial_number"], "reason": "keyCompromise"})
        public = sandbox.client("s3").get_object(Bucket=sandbox.outputs["PublicBucketName"], Key="issuing.pem")
        issuer = x509.load_pem_x509_certificate(public["Body"].read())
        events = [_get_event(x509.load_pem_x509_certificate(i["certificate"].encode()), issuer) for i in issued]

        function = sandbox.functions["OcspFunction"]
        env = {
            **function.env,
            **sandbox.runtime_env(),
            **function.credentials,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        # Powertools flushes EMF metrics to stdout every 100 entries: keep them out of the report.
        with _environment(env), contextlib.redirect_stdout(io.StringIO()):
            counter = _Calls()
            module = _load_ocsp_handler()
            started = time.perf_counter()
            first = module.respond(events[1], module.datetime.now(module.UTC))
            cold_ms = (time.perf_counter() - started) * 1000
            cold_calls = counter.take()
            statuses: Counter[str] = Counter()
            durations: list[float] = []
            for n in range(responses):
                event = events[n % len(events)]
                started = time.perf_counter()
                answer = module.respond(event, module.datetime.now(module.UTC))
                durations.append((time.perf_counter() - started) * 1000)
                parsed = ocsp.load_der_ocsp_response(base64.b64decode(answer["body"]))
                statuses[parsed.certificate_status.name if parsed.response_status.name == "SUCCESSFUL" else
                         parsed.response_status.name] += 1  # fmt: skip
            warm_calls = counter.take()
    if first["statusCode"] != 200 or statuses.get("REVOKED", 0) == 0:
        raise RuntimeError(f"unexpected OCSP answers: {statuses}")
    per_1000 = Counter({op: n * 1000 / responses for op, n in warm_calls.items()})
    median = statistics.median(durations)
    calls_text = ", ".join(f"`{op}` {n:g}" for op, n in sorted(per_1000.items())) or "none"
    cold_text = ", ".join(f"`{op}` {n}" for op, n in sorted(cold_calls.items()))
    lines = [
        "## OCSP responder",
        "",
        "`functions/ocsp/app.py` imported in this process with `OcspFunction`'s environment and role "
        "credentials against the sandbox (moto on 127.0.0.1, IAM enforced); GET requests (SHA-1 CertID) "
        f"cycling over {len(events)} certificates, one revoked. No cache in front: every call below is a "
        "CloudFront cache miss. Timed: the handler's `respond()` (event in, HTTP answer out).",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| first response in a container (cold), AWS calls | {cold_text} ({cold_ms:.0f} ms) |",
        f"| warm response, median / p95 ({responses} responses) | **{median:.1f} ms / "
        f"{_percentile(durations, 0.95):.1f} ms** |",
        f"| AWS calls per 1,000 warm responses | {calls_text} |",
        f"| `kms:Sign` per 1,000 warm responses (goal 0) | **{per_1000.get('kms:Sign', 0):g}** |",
        f"| answers | {', '.join(f'{k.lower()} {v}' for k, v in sorted(statuses.items()))} |",
        "",
        "Cost per million OCSP requests through CloudFront, by the share answered from CloudFront's cache "
        "(GET responses are cacheable until nextUpdate; POSTs always reach the function). List prices, "
        "us-east-1, **to be re-checked on the AWS pricing pages**: CloudFront HTTPS $"
        f"{PRICES['cloudfront_https_per_10k']:.4f}/10,000 requests and ${PRICES['cloudfront_out_per_gb']}/GB out "
        f"(1.5 KB per response assumed); Lambda ${PRICES['lambda_per_million']:.2f}/million requests and "
        f"${PRICES['lambda_arm64_gb_second']:.10f}/GB-s (arm64, {LAMBDA_MEMORY_GB * 1024:.0f} MB, billed at the "
        f"median above); DynamoDB on-demand ${PRICES['dynamodb_per_million_rru']}/million read units; KMS "
        f"${PRICES['kms_per_10k_sign']}/10,000 Sign; function URLs cost nothing extra. Free tiers ignored.",
        "",
        "| cache hits | CloudFront | Lambda | DynamoDB | KMS | total |",
        "|---|---|---|---|---|---|",
    ]
    for hit_ratio in (0.0, 0.9, 0.99):
        lines += _cost_rows(per_1000, median, hit_ratio)
    return "\n".join(lines)
