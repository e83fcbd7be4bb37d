"""Mutual TLS steps with the Python ``ssl`` server: the issued client certificate gets in and nothing
else does; then, with both CRLs, the revoked one is refused."""

from __future__ import annotations

from utils.demo.constants import CLIENT_CN, TLS_HOST
from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import require
from utils.demo.tls import MtlsServer, TlsClient, foreign_client_cert, try_clients


def step_mtls(demo: Demo) -> str:
    """Mutual TLS on 127.0.0.1: the issued client certificate in, everything else out."""
    client, server_cert = require(demo.state.client, "the client"), require(demo.state.server, "the server")
    bundle = client.ca_bundle
    other_chain, other_key = foreign_client_cert(demo.out_dir / "other-ca")
    detail(f"throwaway CA and client certificate (CN={CLIENT_CN}) in {demo.shown(str(other_chain.parent))}")
    ours, server_as_client = (client.fullchain, client.key), (server_cert.fullchain, server_cert.key)
    clients = [
        TlsClient("issued client certificate", "openssl", *ours, expect_accept=True),
        TlsClient("issued client certificate", "python", *ours, expect_accept=True),
        TlsClient("issued client certificate, TLS 1.2", "python", *ours, expect_accept=True, tls12=True),
        TlsClient("no client certificate", "openssl", None, None, expect_accept=False),
        TlsClient("no client certificate", "python", None, None, expect_accept=False),
        TlsClient("no client certificate, TLS 1.2", "python", None, None, expect_accept=False, tls12=True),
        TlsClient("certificate from another CA", "python", other_chain, other_key, expect_accept=False),
        TlsClient("certificate from another CA", "openssl", other_chain, other_key, expect_accept=False),
        TlsClient("our server certificate as client (EKU serverAuth only)", "python", *server_as_client, False),
    ]
    with MtlsServer(server_cert.fullchain, server_cert.key, bundle) as server:
        detail(f"TLS server on {TLS_HOST}:{server.port}: CERT_REQUIRED, trust = {demo.shown(str(bundle))}")
        failures = try_clients(demo, server, clients, bundle, client)
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures))
    refused = sum(not c.expect_accept for c in clients)
    return f"accepted the issued certificate ({len(clients) - refused} clients), refused {refused} others"


def step_python_crl(demo: Demo) -> str:
    """The Python ssl server of step 7, now with VERIFY_CRL_CHECK_CHAIN and both CRLs."""
    client, server_cert = require(demo.state.client, "the client"), require(demo.state.server, "the server")
    revoked_cert, crls = require(demo.state.revoked, "the revoked certificate"), require(demo.state.crls, "the CRLs")
    bundle = client.ca_bundle
    good, revoked = (client.fullchain, client.key), (revoked_cert.fullchain, revoked_cert.key)
    clients = [
        TlsClient("good client certificate", "python", *good, expect_accept=True),
        TlsClient("good client certificate", "openssl", *good, expect_accept=True),
        TlsClient("revoked client certificate", "python", *revoked, expect_accept=False),
        TlsClient("revoked client certificate, TLS 1.2", "python", *revoked, expect_accept=False, tls12=True),
        TlsClient("revoked client certificate", "openssl", *revoked, expect_accept=False),
    ]
    with MtlsServer(server_cert.fullchain, server_cert.key, bundle, crl_file=crls.both_pem) as server:
        detail(f"TLS server on {TLS_HOST}:{server.port}: CERT_REQUIRED, VERIFY_CRL_CHECK_CHAIN, "
               f"CRLs = {demo.shown(str(crls.both_pem))}")  # fmt: skip
        failures = try_clients(demo, server, clients, bundle, client)
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures))
    return "good certificate accepted; revoked certificate refused (certificate revoked)"
