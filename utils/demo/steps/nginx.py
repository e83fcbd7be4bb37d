"""nginx steps: mutual TLS checked by nginx with the CRLs (``ssl_crl``), then with OCSP (``ssl_ocsp``)."""

from __future__ import annotations

import time

from utils.demo.constants import TLS_HOST
from utils.demo.context import Demo
from utils.demo.nginx import Nginx, http_summary, nginx_binary, openssl_https_get, python_https_get
from utils.demo.output import StepFailed, detail
from utils.demo.state import require
from utils.demo.x509_text import aia_url


def _nginx_clients(demo: Demo, nginx: Nginx, version: str, revoked_reason: str) -> None:
    """Good, revoked and no client certificate against ``nginx``, each with Python and openssl
    s_client: 200 for the good one, 400 for the others; StepFailed naming every unexpected outcome."""
    client = require(demo.state.client, "the client certificate")
    revoked = require(demo.state.revoked, "the revoked certificate")
    bundle = client.ca_bundle
    cases = [
        ("good client certificate", client.fullchain, client.key, 200, client.serial_number),
        ("revoked client certificate", revoked.fullchain, revoked.key, 400, revoked_reason),
        ("no client certificate", None, None, 400, "No required SSL certificate was sent"),
    ]  # fmt: skip
    failures = []
    detail(f"{version} on https://{TLS_HOST}:{nginx.port}/ (prefix <tmp>/{nginx.prefix.name}, not a daemon):")
    for line in nginx.config().splitlines():
        if line.strip().startswith(("ssl_verify", "ssl_client_certificate", "ssl_crl", "ssl_ocsp", "listen")):
            detail("  " + line.strip().replace(str(demo.out_dir), "<out>"))
    for label, cert, key, want, must_show in cases:
        for tool in ("python", "openssl"):
            if tool == "python":
                status, body = python_https_get(nginx.port, bundle, cert, key)
            else:
                status, body = openssl_https_get(demo, nginx.port, bundle, cert, key)
            seen = http_summary(status, body)
            ok = status == want and must_show.lower() in body.lower()
            detail(f"[{'ok  ' if ok else 'FAIL'}] {label} ({tool}): want {want}, got {seen}")
            if not ok:
                failures.append(f"{label} ({tool})")
    time.sleep(0.1)  # let the worker flush its log line
    for line in (nginx.log_lines("verify error") + nginx.log_lines("OCSP"))[:3]:
        detail(f"nginx error.log: {line}")
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures) + "\n" + nginx.log_tail())


def step_nginx(demo: Demo) -> str:
    """nginx with ssl_verify_client on and ssl_crl (both CRLs): good client 200, revoked client 400."""
    binary, version = nginx_binary()
    server, client = require(demo.state.server, "the server certificate"), require(demo.state.client, "the client")
    crls = require(demo.state.crls, "the CRLs")
    with Nginx(binary, demo.work / "nginx", fullchain=server.fullchain, key=server.key,
               ca_bundle=client.ca_bundle, crls=crls.both_pem) as nginx:  # fmt: skip
        _nginx_clients(demo, nginx, version, "The SSL certificate error")
    return (
        f"{version.split(': ')[-1]}: 200 for the good certificate, 400 'The SSL certificate error' for the revoked one"
    )


def step_nginx_ocsp(demo: Demo) -> str:
    """nginx with ssl_verify_client on and ``ssl_ocsp on`` (no CRL file): nginx asks the responder
    named in each certificate's AIA (the sandbox's 127.0.0.1 URL) about the leaf and the issuing CA
    (whose status is root-signed); good client 200, revoked client 400."""
    binary, version = nginx_binary()
    server, client = require(demo.state.server, "the server certificate"), require(demo.state.client, "the client")
    url = aia_url(client.certificate, "OCSP")
    detail(f"OCSP URL in the client certificate: {demo.shown(url)}")
    with Nginx(binary, demo.work / "nginx-ocsp", fullchain=server.fullchain, key=server.key,
               ca_bundle=client.ca_bundle, ocsp="on") as nginx:  # fmt: skip
        _nginx_clients(demo, nginx, version, "The SSL certificate error")
        # No CRL is configured, so "certificate revoked" can only come from an OCSP answer. With
        # `ssl_ocsp on` nginx also asks about the issuing CA (root-signed answer) and refuses the chain
        # when any lookup fails: the good client's 200 shows both answers were obtained and verified.
        if not nginx.log_lines("verify error: certificate revoked"):
            raise StepFailed("nginx refused the revoked client, but not as 'certificate revoked':\n" + nginx.log_tail())
    return f"{version.split(': ')[-1]} with ssl_ocsp on: 200 for the good certificate, 400 for the revoked one (OCSP)"
