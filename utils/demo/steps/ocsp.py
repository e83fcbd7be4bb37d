"""OCSP step: ``openssl ocsp`` asks the responder named in each certificate (RFC 6960)."""

from __future__ import annotations

from utils.demo.constants import REVOCATION_REASON
from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import require
from utils.demo.x509_text import aia_url


def step_ocsp(demo: Demo) -> str:
    """openssl ocsp with the responder URL from each certificate: good, revoked (with reason), and the
    issuing CA itself (root-signed); every response verifies against the CA bundle."""
    published = require(demo.state.published, "the published CA")
    client = require(demo.state.client, "the client certificate")
    revoked = require(demo.state.revoked, "the revoked certificate")
    cases = [
        ("client", client.certificate, published.issuing_pem, "good"),
        ("revoked", revoked.certificate, published.issuing_pem, "revoked"),
        ("issuing CA", published.issuing_pem, published.root_pem, "good"),
    ]
    answers = []
    for label, certificate, issuer, expected in cases:
        url = aia_url(certificate, "OCSP")
        result = demo.run(["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(certificate), "-url", url,
                           "-CAfile", str(client.ca_bundle), "-nonce"], check=False)  # fmt: skip
        lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        for line in lines[:6]:
            detail("  " + line)
        status = f"{certificate}: {expected}"
        if result.returncode != 0 or "Response verify OK" not in result.stderr or status not in result.stdout:
            raise StepFailed(f"{label}: expected {expected!r} verified: {result.stdout}{result.stderr}")
        if expected == "revoked" and f"Reason: {REVOCATION_REASON}" not in result.stdout:
            raise StepFailed(f"{label}: the reason is not {REVOCATION_REASON}: {result.stdout}")
        answers.append(f"{label} {expected}")
    return "OCSP from the certificates' AIA URL: " + ", ".join(answers) + " (responses verified)"
