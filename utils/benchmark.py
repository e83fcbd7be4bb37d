#!/usr/bin/env python3
"""Benchmark of issuance: AWS API calls per certificate, latency, cold import time.

Runs the real issue handler in-process against the local sandbox (moto server on 127.0.0.1,
resources from template.yaml, CA bootstrapped by the real custom resource), so every AWS call
crosses HTTP as it would in Lambda. Prints a Markdown report; ``--write docs/benchmark.md``
also stores it with the command that produced it.

    python utils/benchmark.py [--issuances 200] [--write docs/benchmark.md]

Figures:
- AWS API calls per issuance by operation (counted with botocore ``before-call`` events on the
  handler's own clients), cold (first invocation: CA records and public key) and warm, with and
  without an idempotency key;
- median and p95 milliseconds per warm issuance (handler time, CSR made beforehand);
- the issue handler's cold import time (fresh interpreter, median of 5).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
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


def run(issuances: int) -> str:
    counter = CallCounter()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    csrs = [csr_pem(f"bench-{i}", ec_key) for i in range(issuances)]
    lines: list[str] = []
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING"}) as sandbox:
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
        f"| issue handler cold import, median of {len(import_ms)} (min / max) | **{statistics.median(import_ms):.0f} ms** "
        f"({min(import_ms):.0f} / {max(import_ms):.0f}) |",
        "",
        "Targets (issue 2): exactly one `kms:Sign` per issuance: "
        + ("met" if sign_calls == 1 else "NOT MET")
        + "; at most 3 AWS calls per warm issuance: "
        + ("met" if total_warm <= 3 and sum(idem_calls.values()) / 20 <= 3 else "NOT MET")
        + ".",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuances", type=int, default=200, help="warm issuances to time (default 200)")
    parser.add_argument("--write", type=Path, help="also write the report to this Markdown file")
    args = parser.parse_args()
    if args.issuances < 2:
        parser.error("--issuances must be at least 2")
    report = run(args.issuances)
    print(report)
    if args.write:
        command = "python utils/benchmark.py" + (f" --issuances {args.issuances}" if args.issuances != 200 else "")
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(
            f"# Benchmark: issuance\n\nProduced by `{command}` (or `./dev.sh bench`).\n\n{report}\n", encoding="utf-8"
        )
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
