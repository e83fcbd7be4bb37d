#!/usr/bin/env python3
"""Issue a TLS client certificate (EKU clientAuth) from the KMS-backed private CA.

The key pair is generated on this machine; only a CSR is sent to the issue function, which
is invoked with your own AWS credentials. Run with ``--help`` for the options; the shared
code is in ``utils/certcli/``.

Example::

    python utils/client-cert.py device-42 --out-dir certs --stack-name kmsca-dev
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 python utils/client-cert.py device-42  # local sandbox

A shim of the installed console script ``kmsca-client-cert`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import client_cert
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(client_cert(sys.argv[1:], prog="client-cert.py"))
