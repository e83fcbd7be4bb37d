"""Benchmark section ``targets``: one revocation fanned out to N edge targets (workload accounts).

For each N, a sandbox runs the CA account and N workload accounts; each workload account gets the
edge stack (``edge/template.yaml``) and is registered through the targets function, as an operator
would with ``utils/edge-targets.py``. A certificate is issued and revoked through the real
functions (IAM enforced, each function with its own role); the time from the revoke call's return
to the serial in every workload account's KeyValueStore is measured, and every AWS call is counted
at the sandbox's HTTP front with the function that made it (by the caller's access key), so the
revocation's writes (the table's UpdateItem, one ``UpdateKeys`` per target) are told apart from the
CRL publication the same stream record triggers.

    python utils/benchmark.py --sections targets [--target-counts 1,2,4] [--target-runs 5]
"""

from __future__ import annotations

import io
import statistics
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, quote

from cryptography.hazmat.primitives.asymmetric import ec

#: What the CA's functions do for one revocation; other functions (the CRL publication) are shown apart.
EDGE_SESSION = "SyncKvsFunction (edge role session)"
REVOCATION_PATH = ("RevokeFunction", "SyncKvsFunction", EDGE_SESSION)
SHORT = {"RevokeFunction": "revoke:", "SyncKvsFunction": "sync:", EDGE_SESSION: "sync (edge role):"}
WRITES = {"dynamodb:UpdateItem", "dynamodb:PutItem", "cloudfront-keyvaluestore:UpdateKeys"}


class CallerCounter:
    """Counts the sandbox front's AWS calls per (calling function, ``service:Operation``).

    JSON protocols by ``X-Amz-Target``; the KeyValueStore data plane by its path; S3 by the
    method; STS by the ``Action`` of the form body (read and put back). The caller is the
    function whose role session signed the request (its access key), else ``other``.
    """

    def __init__(self, sandbox: Any) -> None:
        from utils.sandbox import front
        from utils.sandbox.kvs import is_kvs_request, kvs_operation

        self.calls: Counter[tuple[str, str]] = Counter()
        self._sandbox = sandbox
        original = front.Front.__call__
        counter = self

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            operation = counter._operation(environ, is_kvs_request, kvs_operation)
            if operation:
                counter.calls[(counter._caller(environ), operation)] += 1
            return original(app, environ, start_response)

        self._restore = lambda: setattr(front.Front, "__call__", original)
        front.Front.__call__ = counted  # type: ignore[method-assign,assignment]

    def close(self) -> None:
        self._restore()

    def _operation(self, environ: dict[str, Any], is_kvs: Any, kvs_operation: Any) -> str:
        from utils.benchmark import ServerCallCounter  # one table of JSON-protocol services

        prefixes = ServerCallCounter.PREFIXES
        prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if prefix in prefixes:
            return f"{prefixes[prefix]}:{operation}"
        path, authorization = environ.get("PATH_INFO", ""), environ.get("HTTP_AUTHORIZATION", "")
        if is_kvs(path, authorization):
            raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(path))  # as the front reads it
            return f"cloudfront-keyvaluestore:{kvs_operation(environ.get('REQUEST_METHOD', ''), raw)[1]}"
        if "/s3/aws4_request" in authorization:  # REST: the method names the object operation
            method = environ.get("REQUEST_METHOD", "")
            return f"s3:{ {'PUT': 'PutObject', 'GET': 'GetObject', 'HEAD': 'HeadObject'}.get(method, method) }"
        if "/sts/aws4_request" in authorization and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
            return f"sts:{action}"
        return ""

    def _caller(self, environ: dict[str, Any]) -> str:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        key = authorization.partition("Credential=")[2].partition("/")[0]
        for logical_id, function in self._sandbox.functions.items():
            if function.credentials.get("AWS_ACCESS_KEY_ID") == key:
                return str(logical_id)
        # The KeyValueStores are written only by the sync function, through its edge role sessions.
        return EDGE_SESSION if "/cloudfront-keyvaluestore/" in authorization else "other"

    def take(self) -> Counter[tuple[str, str]]:
        taken = Counter(self.calls)
        self.calls.clear()
        return taken


def _fmt(calls: Counter[str]) -> str:
    return ", ".join(f"`{name}` {count}" for name, count in sorted(calls.items())) or "none"


def _workload_accounts(count: int) -> list[str]:
    return [f"{222222222222 + i * 1111:012d}" for i in range(count)]


def _run(count: int, runs: int) -> tuple[list[float], Counter[str], Counter[str], Counter[str]]:
    """Returns (delays in s, warm revocation-path calls, first (cold) revocation-path calls, other
    functions' calls on the warm revocation)."""
    from utils.benchmark import REPO, csr_pem
    from utils.sandbox.server import Sandbox

    accounts = _workload_accounts(count)
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING"}, workload_accounts=accounts) as sandbox:
        stores = []
        for i, account in enumerate(accounts):
            external_id = f"bench-external-id-{i:04d}-0123456789"
            edge = sandbox.deploy_edge_stack(account, external_id=external_id)
            sandbox.run_function("TargetsFunction", {
                "operation": "register", "name": f"workload-{i}", "account_id": account,
                "role_arn": edge["EdgeRoleArn"], "external_id": external_id,
                "kvs_arn": edge["RevokedSerialsStoreArn"], "registered_by": "benchmark",
            }).raise_for_error()  # fmt: skip
            stores.append(edge["RevokedSerialsStoreArn"])
        counter = CallerCounter(sandbox)
        try:
            delays: list[float] = []
            first: Counter[str] = Counter()
            warm: Counter[str] = Counter()
            others: Counter[str] = Counter()
            for run in range(runs + 1):  # run 0: the containers' first revocation (role sessions made)
                key = ec.generate_private_key(ec.SECP256R1())
                serial = sandbox.run_function(
                    "IssueFunction", {"csr": csr_pem(f"targets-{run}", key)}
                ).raise_for_error()["serial_number"]
                time.sleep(1.5)  # let the issuance's own stream deliveries finish before counting
                counter.take()
                sandbox.run_function(
                    "RevokeFunction", {"serial_number": serial, "reason": "keyCompromise"}
                ).raise_for_error()
                returned = time.perf_counter()
                while not all(serial in sandbox.kvs.items(arn) for arn in stores):
                    if time.perf_counter() - returned > 60:
                        raise RuntimeError(f"{serial} did not reach every workload KeyValueStore within 60 s")
                    time.sleep(0.02)
                delay = time.perf_counter() - returned
                time.sleep(2.0)  # the sync's state write and the CRL publication finish after the key lands
                calls = counter.take()
                path = Counter({f"{SHORT[fn]} {op}": n for (fn, op), n in calls.items() if fn in REVOCATION_PATH})
                rest = Counter({f"{fn} {op}": n for (fn, op), n in calls.items() if fn not in REVOCATION_PATH})
                if run == 0:
                    first = path
                    continue
                delays.append(delay)
                warm, others = path, rest
            return delays, warm, first, others
        finally:
            counter.close()


def targets_section(counts: list[int], runs: int) -> str:
    """Markdown for the ``targets`` section (see the module docstring)."""
    rows = []
    for count in counts:
        delays, warm, first, others = _run(count, runs)
        writes = sum(n for op, n in warm.items() if op.rpartition(" ")[2] in WRITES)
        kvs_writes = sum(n for op, n in warm.items() if op.endswith("cloudfront-keyvaluestore:UpdateKeys"))
        rows.append(
            f"| {count} + local | {_fmt(warm)}: **{sum(warm.values())}**; writes **{writes}** "
            f"(`UpdateKeys` {kvs_writes}) | "
            f"{_fmt(Counter({op: n for op, n in first.items() if 'sts:' in op}))} | "
            f"median **{statistics.median(delays):.2f} s** (min {min(delays):.2f}, max {max(delays):.2f}, "
            f"n={len(delays)}) |"
        )
        rows.append(f"|  | other functions on the same stream record: {_fmt(others)} | | |")
    return "\n".join(
        [
            "## One revocation, N edge targets",
            "",
            "The CA account plus N workload accounts in one sandbox, each with the edge stack and registered "
            "through the targets function. Calls of the revoke and KeyValueStore sync functions for one warm "
            "revocation (counted at the sandbox front by the calling function's credentials); the role sessions "
            "(`sts:AssumeRole`) happen on a container's first revocation only (cached until 5 minutes before "
            "they expire). Time: revoke call returned -> the serial in every workload account's KeyValueStore "
            "(stream batching window of 1 s included).",
            "",
            "| targets (workload accounts + the nested local edge stack) | AWS calls of RevokeFunction + "
            "SyncKvsFunction (warm) | role sessions (first revocation) | "
            "revoke -> serial in every KeyValueStore |",
            "|---|---|---|---|",
            *rows,
            "",
            "Goal (issue 10): N + 1 writes at most for N targets (the revocation's UpdateItem and one "
            "`UpdateKeys` per target; here N counts the local target too), plus the role sessions, which "
            "are cached per container. Each `UpdateKeys` needs the store's ETag (`IfMatch`), hence one "
            "`DescribeKeyValueStore` per target; the sync reads the registry and each target's remembered "
            "state (`GetItem`) and writes the state only when it described the store the write started from.",
        ]
    )
