"""Benchmark section ``inventory``: a list page of 100, a show, and the daily expiry job.

Certificates are issued through the real issue function in the sandbox (IAM enforced), a part
of them inside the 30-day notice window; then the inventory function lists a page of 100 and
shows one certificate, and the expiry job runs over the whole inventory. AWS calls are counted at
the sandbox's HTTP front (the handlers run in worker processes); handler times are measured in
the worker (``InvocationResult.duration_ms``), each operation repeated and given with its spread.

    python utils/benchmark.py --sections inventory [--inventory-certificates 1000]
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} ms (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def _calls(calls: Counter[str]) -> str:
    return ", ".join(f"`{name}` {count}" for name, count in sorted(calls.items())) or "none"


def inventory_section(certificates: int, repeats: int = 5) -> str:
    """Markdown for the ``inventory`` section (see the module docstring)."""
    from utils.benchmark import REPO, ServerCallCounter, csr_pem
    from utils.sandbox.server import Sandbox

    counter = ServerCallCounter()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = csr_pem("bench-inventory", key)
    soon = max(1, certificates // 10)  # this many expire within the 30-day notice window
    with Sandbox(REPO, parameter_overrides={"LogLevel": "WARNING"}) as sandbox:
        started = time.perf_counter()
        serials = []
        for i in range(certificates):
            request: dict[str, Any] = {"csr": csr, "lifetime_days": 10 if i < soon else 90}
            serials.append(sandbox.run_function("IssueFunction", request).raise_for_error()["serial_number"])
        filled = time.perf_counter() - started
        time.sleep(1)  # let the index settle before timing reads
        counter.take()
        lists, list_calls = [], Counter[str]()
        for _ in range(repeats):
            result = sandbox.run_function("InventoryFunction", {"operation": "list", "page_size": 100})
            assert len(result.raise_for_error()["certificates"]) == min(100, certificates)
            lists.append(result.duration_ms)
            list_calls = counter.take()
        shows, show_calls = [], Counter[str]()
        for serial in serials[:repeats]:
            result = sandbox.run_function("InventoryFunction", {"operation": "show", "serial_number": serial})
            result.raise_for_error()
            shows.append(result.duration_ms)
            show_calls = counter.take()
        first = sandbox.trigger_schedule("ExpiryFunction")
        first.raise_for_error()
        first_calls = counter.take()
        again = sandbox.trigger_schedule("ExpiryFunction")
        again.raise_for_error()
        again_calls = counter.take()
    everything = list_calls + show_calls + first_calls + again_calls
    scans = sum(count for name, count in everything.items() if ":Scan" in name)
    return "\n".join([
        "## Inventory and expiry",
        "",
        f"{certificates} certificates issued through the issue function in the sandbox ({filled:.0f} s), "
        f"{soon} of them inside the 30-day notice window. AWS calls counted at the sandbox front; handler "
        "time measured in the worker. The SNS digest (query protocol) is not in the counts: one Publish per run "
        "with notices.",
        "",
        "| operation | AWS calls | handler time |",
        "|---|---|---|",
        f"| list, a page of 100 | {_calls(list_calls)} | {_spread(lists)} |",
        f"| show one certificate | {_calls(show_calls)} | {_spread(shows)} |",
        f"| expiry job, first run ({soon} notices) | {_calls(first_calls)} | {first.duration_ms:.0f} ms |",
        f"| expiry job, run again (each notice refused by its conditional write: sent once) | "
        f"{_calls(again_calls)} | {again.duration_ms:.0f} ms |",
        "",
        f"Table scans in all of the above: **{scans}** (goal: index queries only). The expiry job reads only "
        "the certificates inside its largest window, so its cost follows the certificates expiring soon, "
        "not the size of the inventory.",
    ])
