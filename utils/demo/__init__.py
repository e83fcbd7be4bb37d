"""End-to-end demo of the private CA on this machine, without an AWS account (README command 1).

Steps (each prints what it does and its result; a summary table closes the run):

1. prerequisites: Python packages and the ``openssl`` command are there (nginx, Node.js and
   awscrt are reported; the steps that need them fail without them).
2. sandbox: start the local sandbox (moto + the real Lambda handlers) as a subprocess.
3. client certificate: ``utils/client-cert.py`` against the sandbox (key made locally, PKCS#12 too).
4. server certificate: ``utils/server-cert.py localhost --san dns:localhost --san ip:127.0.0.1``.
5. published CA: download ``root``/``issuing`` (DER and PEM) and ``ca-bundle.pem`` from the bucket.
6. openssl verify: both leaves against root + issuing and against the CA bundle, with the TLS
   purpose checked (EKU clientAuth / serverAuth), plus an ``openssl x509 -text`` excerpt.
7. mutual TLS: a TLS server on 127.0.0.1 that requires a client certificate from the CA bundle
   accepts the issued client certificate and refuses no certificate, a certificate from another
   CA, and a certificate without clientAuth; clients are ``openssl s_client`` and Python ``ssl``.
8. refusals: the CA refuses a lifetime above its maximum and a wildcard over a public suffix,
   the CLI refuses a server certificate without a SAN, and nothing is written for any of them.
9. a second client certificate, the one to revoke.
10. revoke it with ``utils/revoke-cert.py --cert ... --reason keyCompromise``.
11. wait for the CRL: nothing in the demo publishes it; the table stream (filtered to
    revocations) triggers the CRL function. The public bucket is polled (30 s at most) until
    ``issuing.crl`` lists the serial; the seconds it took and the CRL number are printed, and the
    CRL is checked with cryptography (signature, issuer, reason, number, S3 metadata).
12. revoke again, by serial number in openssl's ``4A:3F:...`` form: "already revoked", unchanged.
13. download both CRLs (DER and PEM) and write ``crls.pem`` (issuing CRL + root CRL).
14. ``openssl verify -crl_check_all``: the good certificate is OK, the revoked one fails with
    "certificate revoked", and with the issuing CRL alone even the good one fails (every CA of
    the chain needs a CRL).
15. nginx (``nginx-light``; a relying party we did not write) on 127.0.0.1 with
    ``ssl_verify_client on``, ``ssl_client_certificate ca-bundle.pem`` and ``ssl_crl crls.pem``:
    HTTP 200 for the good client, 400 "The SSL certificate error" for the revoked one (Python
    and ``openssl s_client`` clients). FAIL with a hint when nginx is not installed.
    After the OCSP step, the same nginx with ``ssl_ocsp on`` and no CRL file asks the responder
    named in each certificate's AIA (leaf and issuing CA): 200 for the good client, 400 for the
    revoked one.
16. the Python ``ssl`` server of step 7 with ``VERIFY_CRL_CHECK_CHAIN`` and both CRLs: the good
    client is accepted, the revoked one refused during the handshake.
17. CloudFront origin mTLS: ``utils/cloudfront-origin-cert.py`` (profile ``cloudfront-origin``: the
    issue function generates the key and imports certificate, key and chain into ACM); the
    ``OriginMtlsConfig`` it prints; then ACM in **us-east-1** (boto3 ``describe_certificate``,
    ``get_certificate``, tags): the ARN's region, status ISSUED, EC P-256, EKU clientAuth, the chain
    (issuing, root) without the leaf, and ``openssl x509 -text`` of the certificate ACM holds.
18. CloudFront viewer mTLS, revocation: the certificate revoked in step 10 appears in the
    KeyValueStore (stack output ``RevokedSerialsStoreArn``; ``cloudfront-keyvaluestore`` client
    against the sandbox). Nothing in the demo invokes the sync: the table stream triggers
    SyncKvsFunction. ``get_key`` is polled (15 s at most); the wait and the store's
    ``LastModified`` lag are printed; ``list_keys`` shows every key; the good certificate's
    serial is absent. The content is exported as JSON (the KVS import-file format).
19. the connection function (``functions/connection/connection.js``, the code the sandbox's
    RevocationCheckFunction runs) under Node.js with ``functions/connection/harness.mjs``'s
    stand-in for the ``cloudfront`` module, holding the exported KeyValueStore content: the
    revoked certificate's serial as CloudFront passes it (``4a:3f:...``) and as ``openssl x509
    -serial`` prints it -> deny, with its ``logCustomData`` line; the good certificate -> allow.

Then two accounts: the sandbox runs a workload account (222222222222) with the edge stack
(``edge/template.yaml``) deployed in it, and the CA stack accepts its callers
(``CallerAccountIds``). The steps of :mod:`utils.demo.steps.accounts`:

20. ``utils/edge-targets.py register workload`` (as the CA administrator): refused with a wrong
    external id (``EdgeRoleRefused``, nothing written), then registered with the edge stack's;
    ``list`` shows ``local`` and ``workload``.
21. ``utils/issuance-policy.py check``, ``put``, ``get``: a rule for the CA account's callers
    (what the earlier steps issued; checked with the CA core on their certificates) and a rule for
    the workload account's ``pipeline`` user (profile client, names under ``.workload.example``,
    30 days at most, revokes its own).
22. the workload administrator creates ``pipeline`` with the IAM API (user, inline policy allowing
    ``lambda:InvokeFunctionUrl``/``InvokeFunction`` on the issue and revoke functions, access
    key); with its key ``client-cert.py api.workload.example --function-name <IssueFunctionUrl>`` is
    issued and the inventory records ``requested_by`` = its ARN; ``www.example.com`` is refused
    with ``NotAuthorized`` naming the rule, and nothing is written or stored.
23. ``cloudfront-origin-cert.py --target workload``: the ARN is in 222222222222 us-east-1, the
    workload administrator's ACM describes it, the CA account's ACM us-east-1 does not have it.
24. ``pipeline`` revokes its certificate (``revoke-cert.py --function-name <RevokeFunctionUrl>``);
    the workload account's KeyValueStore is polled until the serial appears (the seconds from
    revoke are printed); the workload stack's connection function (its deployed code) runs under
    Node.js with that store's content: the revoked certificate denied, a good one allowed.

The sandbox is always stopped at the end (SIGTERM, then SIGKILL). Exit status: 0 when every
step passed, 1 otherwise.

Run it with ``python -m utils.demo`` (``./dev.sh demo``). The package:

- ``cli.py``: the command line (``--out-dir``, ``--sandbox-timeout``); ``__main__.py`` runs it.
- ``runner.py``: :class:`Step`, running the steps in order (skipping those whose requirements
  failed) and the summary table.
- ``steps/``: one module per group of steps; ``steps/__init__.py`` lists them in order (:data:`STEPS`)
  and says how to add one.
- ``context.py``: :class:`Demo`, what every step is given (directories, the sandbox, commands, AWS
  clients); ``state.py``: :class:`DemoState`, what the steps learn and hand on, typed.
- ``sandbox_process.py``: the local sandbox as a subprocess; ``output.py``: printing and
  :class:`StepFailed`; ``constants.py``: shared names.
- ``steps/accounts.py``: the two-account steps; ``state.py`` has their :class:`EdgeTarget` and
  :class:`WorkloadCaller`.
- helpers of one concern each: ``tls.py`` (mutual TLS server and clients), ``nginx.py`` (nginx as
  a relying party), ``crls.py`` (reading CRLs), ``x509_text.py`` (certificate text for the output).
"""

from __future__ import annotations

from utils.demo.cli import main
from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail, say
from utils.demo.runner import Outcome, Step, print_summary, run_steps
from utils.demo.sandbox_process import SandboxProcess, client_environment, free_port
from utils.demo.state import Crls, DemoState, EdgeTarget, Issued, PublishedCa, Revocation, WorkloadCaller, require
from utils.demo.steps import STEPS

__all__ = [
    "STEPS",
    "Crls",
    "Demo",
    "DemoState",
    "EdgeTarget",
    "Issued",
    "Outcome",
    "PublishedCa",
    "Revocation",
    "SandboxProcess",
    "Step",
    "StepFailed",
    "WorkloadCaller",
    "client_environment",
    "detail",
    "free_port",
    "main",
    "print_summary",
    "require",
    "run_steps",
    "say",
]
