#!/usr/bin/env python3
"""List, show and renew certificates of the KMS-backed private CA (see ``utils/certcli/inventory.py``).

Example::

    python utils/certs.py list --status issued --expiring-before 2026-12-31T00:00:00Z
    python utils/certs.py show 4A:3F:05:...
    python utils/certs.py renew --cert certs/device-42.crt --revoke-old-after-hours 48

A shim of the installed console script ``kmsca-certs`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import certs
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(certs(sys.argv[1:], prog="certs.py"))
