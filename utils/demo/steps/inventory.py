"""Inventory step: list, show and renew with ``utils/certs.py``; the daily expiry job's event."""

from __future__ import annotations

import json
import time

from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import require


def step_lifecycle(demo: Demo) -> str:
    """List (the index lags: poll with a deadline), show, renew the client certificate with
    utils/certs.py, then run the daily expiry job (as its schedule does) and show its event."""
    from cryptography import x509

    client = require(demo.state.client, "the client certificate")
    cert = x509.load_pem_x509_certificate(client.certificate.read_bytes())
    serial = f"{cert.serial_number:x}".rjust(2 * ((cert.serial_number.bit_length() + 7) // 8), "0")
    deadline = time.monotonic() + 30
    while True:
        listed = demo.cli("certs.py", "list", "--json")
        if listed.returncode != 0:
            raise StepFailed(f"certs.py list failed: {listed.stderr.strip()}")
        entries = json.loads(listed.stdout)["certificates"]
        if serial in [e["serial_number"] for e in entries]:
            break
        if time.monotonic() > deadline:
            raise StepFailed("certs.py list did not show the client certificate within 30 s")
        time.sleep(0.5)
    detail(f"certs.py list: {len(entries)} certificate(s), earliest expiry first")
    shown = demo.cli("certs.py", "show", serial, "--json")
    if shown.returncode != 0:
        raise StepFailed(f"certs.py show failed: {shown.stderr.strip()}")
    info = json.loads(shown.stdout)
    detail(
        f"certs.py show {serial[:16]}...: {info['subject']}, {info['status']}, requested by {info.get('requested_by')}"
    )
    renewed = demo.cli("certs.py", "renew", "--cert", str(client.certificate), "--json")
    if renewed.returncode != 0:
        raise StepFailed(f"certs.py renew failed: {renewed.stderr.strip()}")
    new = json.loads(renewed.stdout)
    detail(f"renewed: {new['serial_number'][:16]}... (new key) succeeds {new['renews'][:16]}...")
    expiry = demo.client("lambda").invoke(FunctionName=demo.sandbox.state["outputs"]["ExpiryFunctionName"])
    report = json.loads(expiry["Payload"].read())
    if expiry.get("FunctionError"):
        raise StepFailed(f"the expiry job failed: {report}")
    notices = report.get("notices", [])
    if not notices:
        raise StepFailed(f"the expiry job sent no notice for the 30-day client certificate: {report}")
    first = notices[0]
    detail(
        f"EventBridge 'Certificate Expiring': {first['serial_number'][:16]}... "
        f"at the {first['threshold_days']}-day threshold"
    )
    return f"{len(entries)} listed, renewed {serial[:12]}..., {len(notices)} expiry event(s)"
