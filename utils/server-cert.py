#!/usr/bin/env python3
"""Issue a TLS server certificate (EKU serverAuth) from the KMS-backed private CA.

Same as ``client-cert.py`` with the ``server`` profile; at least one ``--san`` is required
(checked before anything is sent). Run with ``--help`` for the options.

Example::

    python utils/server-cert.py localhost --san dns:localhost --san ip:127.0.0.1 --out-dir certs

A shim of the installed console script ``kmsca-server-cert`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import server_cert
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(server_cert(sys.argv[1:], prog="server-cert.py"))
