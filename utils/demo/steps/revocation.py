"""Revocation steps: a second client certificate, revoked with ``utils/revoke-cert.py``; the
stream-triggered CRL that lists it; revoking again changes nothing."""

from __future__ import annotations

import json
import time

from utils.demo.constants import REVOCATION_REASON, REVOKED_CN
from utils.demo.context import Demo
from utils.demo.crls import crl_number, entries, entry_reason, fetch_crl, listed
from utils.demo.output import StepFailed, detail
from utils.demo.state import Revocation, require
from utils.demo.steps.issue import issue_with_cli
from utils.demo.x509_text import describe_key

CRL_WAIT_SECONDS = 30.0
CRL_POLL_SECONDS = 0.2


def step_second_client(demo: Demo) -> str:
    """Issue the certificate that will be revoked (a device whose key was lost)."""
    info = demo.state.revoked = issue_with_cli(
        demo, "client-cert.py", REVOKED_CN, REVOKED_CN, "--organization", "KMS CA demo"
    )
    return f"serial {info.serial_number}, expires {info.not_after}"


def step_revoke(demo: Demo) -> str:
    """Revoke the second client certificate with utils/revoke-cert.py (by its certificate file)."""
    revoked = require(demo.state.revoked, "the certificate to revoke")
    serial = revoked.serial_number
    crl, _, _ = fetch_crl(demo, "issuing.crl")
    if listed(crl, serial) is not None:
        raise StepFailed(f"issuing.crl number {crl_number(crl)} lists {serial} before it was revoked")
    before = crl_number(crl)
    detail(f"before: issuing.crl number {crl_number(crl)}, {entries(crl)}, {serial} not listed")

    result = demo.cli("revoke-cert.py", "--cert", str(revoked.certificate), "--reason",
                      REVOCATION_REASON, "--json")  # fmt: skip
    recorded, recorded_wall = time.monotonic(), time.time()
    if result.returncode != 0:
        raise StepFailed(f"revoke-cert.py exited with status {result.returncode}: {result.stderr.strip()}")
    first = json.loads(result.stdout)
    detail(f"revoked {first['serial_number']}: reason {first['reason']}, revoked at {first['revoked_at']}, "
           f"already revoked: {first['already_revoked']}")  # fmt: skip
    if (first["serial_number"], first["reason"], first["already_revoked"]) != (serial, REVOCATION_REASON, False):
        raise StepFailed(f"unexpected answer: {first}")
    demo.state.revocation = Revocation(serial, before, first["revoked_at"], recorded, recorded_wall)
    return f"{serial} revoked ({REVOCATION_REASON}) at {first['revoked_at']}"


def step_revoke_again(demo: Demo) -> str:
    """Revoking again (serial as openssl prints it, another reason) changes nothing and says so."""
    revocation = require(demo.state.revocation, "the revocation")
    serial, revoked_at = revocation.serial, revocation.revoked_at
    shown = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()
    again = demo.cli("revoke-cert.py", "--serial", shown, "--reason", "superseded")
    for line in (again.stdout + again.stderr).strip().splitlines():
        detail("  " + line)
    if again.returncode != 0 or "already revoked" not in again.stdout or revoked_at not in again.stdout:
        raise StepFailed(f"the second revocation did not report the first one unchanged: {again.stdout}{again.stderr}")
    if REVOCATION_REASON not in again.stdout:
        raise StepFailed(f"the reason changed: {again.stdout}")
    return f"exit status 0, 'already revoked': still {REVOCATION_REASON} at {revoked_at}"


def step_crl_published(demo: Demo) -> str:
    """Poll the public bucket until issuing.crl lists the revoked serial (the stream triggers publication)."""
    from cryptography import x509

    revocation = require(demo.state.revocation, "the revocation")
    serial, before = revocation.serial, revocation.crl_number_before
    detail(f"nothing here invokes PublishCrlFunction: the table stream (filtered to revocations) does; "
           f"polling issuing.crl every {CRL_POLL_SECONDS:g} s for {CRL_WAIT_SECONDS:g} s")  # fmt: skip
    deadline = revocation.recorded + CRL_WAIT_SECONDS
    polls, crl = 0, None
    while True:
        polls += 1
        crl, der, metadata = fetch_crl(demo, "issuing.crl")
        entry = listed(crl, serial)
        if entry is not None:
            break
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"no published issuing.crl lists {serial} {CRL_WAIT_SECONDS:g} s after the revocation "
                f"(still number {crl_number(crl)}, {entries(crl)}, {polls} polls): the stream-triggered "
                f"publication did not run (the sandbox delivers the table's stream to PublishCrlFunction)\n"
                f"{demo.sandbox.log_tail(6)}"
            )
        time.sleep(CRL_POLL_SECONDS)
    seconds = time.monotonic() - revocation.recorded
    number = crl_number(crl)
    lag = (crl.last_update_utc - entry.revocation_date_utc).total_seconds()
    detail(f"issuing.crl number {number} ({len(der)} bytes DER, {entries(crl)}) lists {serial}: seen "
           f"{seconds:.1f} s after revoke-cert.py returned ({polls} {'poll' if polls == 1 else 'polls'}); "
           f"the CRL's thisUpdate is {lag:.0f} s after the revocation date (whole seconds)")  # fmt: skip
    problems = []
    if number <= before:
        problems.append(f"CRL number {number} is not above {before}")
    if metadata.get("crl-number") != str(number):
        problems.append(f"S3 metadata crl-number {metadata.get('crl-number')!r} is not {number}")
    if entry_reason(entry) != REVOCATION_REASON:
        problems.append(f"the entry's reason is {entry_reason(entry)}, not {REVOCATION_REASON}")
    published = require(demo.state.published, "the published CA")
    ca = x509.load_pem_x509_certificate(published.issuing_pem.read_bytes())
    valid = crl.is_signature_valid(ca.public_key())
    if not valid:
        problems.append("its signature does not verify under the issuing CA's key")
    if crl.issuer.public_bytes() != ca.subject.public_bytes():
        problems.append("its issuer is not the issuing CA's subject (byte for byte)")
    detail(f"issuer {crl.issuer.rfc4514_string()}; signature under the issuing CA's {describe_key(ca).split(',')[0]}: "
           f"{'valid' if valid else 'INVALID'}")  # fmt: skip
    detail(f"entry: serial {serial}, revoked {entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ}, "
           f"reason {entry_reason(entry)}; thisUpdate {crl.last_update_utc:%H:%M:%S}, "
           f"nextUpdate {crl.next_update_utc:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    if problems:
        raise StepFailed("; ".join(problems))
    revocation.seconds, revocation.crl_number = seconds, number
    return (
        f"CRL number {before} -> {number} lists the revoked serial {seconds:.1f} s after revoke-cert.py "
        f"returned (thisUpdate - revocation date = {lag:.0f} s)"
    )
