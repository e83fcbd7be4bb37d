"""The demo's steps, in the order they run (:data:`STEPS`).

To add a step: write ``step_x(demo: Demo) -> str`` in a module of this package (return a one-line
result, raise :class:`utils.demo.output.StepFailed` on failure; read what earlier steps learnt from
``demo.state`` with :func:`utils.demo.state.require`, and add a field to
:class:`utils.demo.state.DemoState` for what later steps need), then append
``Step("x", "title", step_x, requires=(...))`` to :data:`STEPS`.
"""

from __future__ import annotations

from utils.demo.runner import Step
from utils.demo.steps.accounts import (
    step_edge_target,
    step_issuance_policy,
    step_workload_caller,
    step_workload_origin,
    step_workload_revoke,
)
from utils.demo.steps.cloudfront import step_connection_function, step_kvs, step_origin_cert
from utils.demo.steps.crls import step_crl_by_url, step_crls, step_openssl_crl
from utils.demo.steps.inventory import step_lifecycle
from utils.demo.steps.issue import step_client_cert, step_server_cert
from utils.demo.steps.nginx import step_nginx, step_nginx_ocsp
from utils.demo.steps.ocsp import step_ocsp
from utils.demo.steps.published import step_openssl_verify, step_published_ca
from utils.demo.steps.refusals import step_refusals
from utils.demo.steps.revocation import step_crl_published, step_revoke, step_revoke_again, step_second_client
from utils.demo.steps.setup import step_prerequisites, step_sandbox
from utils.demo.steps.tls import step_mtls, step_python_crl

STEPS: list[Step] = [
    Step("prerequisites", "Prerequisites", step_prerequisites),
    Step("sandbox", "Start the local sandbox (moto + real handlers)", step_sandbox, ("prerequisites",)),
    Step("client_cert", "Issue a client certificate with utils/client-cert.py", step_client_cert, ("sandbox",)),
    Step(
        "server_cert",
        "Issue a server certificate for localhost with utils/server-cert.py",
        step_server_cert,
        ("sandbox",),
    ),
    Step(
        "published_ca",
        "Download the published CA certificates and bundle",
        step_published_ca,
        ("client_cert", "server_cert"),
    ),
    Step("openssl_verify", "openssl verify against the published CA", step_openssl_verify, ("published_ca",)),
    Step("mtls", "Mutual TLS handshake on 127.0.0.1", step_mtls, ("client_cert", "server_cert")),
    Step("refusals", "Bad requests are refused, nothing is written", step_refusals, ("sandbox",)),
    Step(
        "lifecycle", "List, show, renew with utils/certs.py; the expiry job's event", step_lifecycle, ("client_cert",)
    ),
    Step("second_client", "Issue a second client certificate (to revoke)", step_second_client, ("sandbox",)),
    Step("revoke", "Revoke it (keyCompromise) with utils/revoke-cert.py", step_revoke, ("second_client",)),
    Step(
        "crl_published",
        "Wait for the stream-triggered CRL that lists it",
        step_crl_published,
        ("revoke", "published_ca"),
    ),
    Step("revoke_again", "Revoke it again: nothing changes", step_revoke_again, ("revoke",)),
    Step("crls", "Download the published CRLs", step_crls, ("crl_published",)),
    Step("openssl_crl", "openssl verify -crl_check_all with the CRLs", step_openssl_crl, ("crls",)),
    Step("nginx", "nginx mutual TLS checking CRLs (ssl_crl)", step_nginx, ("crls", "client_cert", "server_cert")),
    Step("ocsp", "OCSP with openssl from the URLs in the certificates", step_ocsp, ("crl_published", "published_ca")),
    Step(
        "nginx_ocsp",
        "nginx mutual TLS checking OCSP (ssl_ocsp on, no CRL file)",
        step_nginx_ocsp,
        ("ocsp", "client_cert", "server_cert"),
    ),
    Step(
        "crl_by_url",
        "CRLs fetched from the URLs in the certificates",
        step_crl_by_url,
        ("crl_published", "published_ca"),
    ),
    Step(
        "python_crl",
        "Python ssl mutual TLS with VERIFY_CRL_CHECK_CHAIN",
        step_python_crl,
        ("crls", "client_cert", "server_cert"),
    ),
    Step(
        "origin_cert",
        "CloudFront origin certificate: issued, imported into ACM us-east-1",
        step_origin_cert,
        ("sandbox",),
    ),
    Step("kvs", "Revoked serial in the CloudFront KeyValueStore", step_kvs, ("revoke", "client_cert")),
    Step(
        "connection_function",
        "Connection function under Node.js: revoked denied, good allowed",
        step_connection_function,
        ("kvs",),
    ),
    Step(
        "edge_target",
        "Register the workload edge stack as target 'workload' (edge-targets.py)",
        step_edge_target,
        ("sandbox",),
    ),
    Step(
        "issuance_policy",
        "Store a per-caller issuance policy (utils/issuance-policy.py)",
        step_issuance_policy,
        ("sandbox",),
    ),
    Step(
        "workload_caller",
        "A workload-account caller: its name issued, another refused (NotAuthorized)",
        step_workload_caller,
        ("issuance_policy",),
    ),
    Step(
        "workload_origin",
        "cloudfront-origin --target workload: ACM us-east-1 of the workload account",
        step_workload_origin,
        ("edge_target", "issuance_policy"),
    ),
    Step(
        "workload_revoke",
        "Workload caller revokes: its KeyValueStore, its connection function denies",
        step_workload_revoke,
        ("workload_caller", "edge_target", "client_cert"),
    ),
]
