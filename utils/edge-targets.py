#!/usr/bin/env python3
"""Register, list and deregister the CA's edge targets (workload accounts whose KeyValueStore, ACM
us-east-1 and trust store the CA keeps up to date; see ``utils/certcli/targets.py``).

Example::

    KMSCA_EDGE_EXTERNAL_ID=... python utils/edge-targets.py register prod-web --account-id 222222222222 \\
        --role-arn arn:aws:iam::222222222222:role/kmsca-dev-edge-us-east-1 \\
        --kvs-arn arn:aws:cloudfront::222222222222:key-value-store/0a1b... --stack-name kmsca-dev
    python utils/edge-targets.py list --json
    python utils/edge-targets.py deregister prod-web

A shim of the installed console script ``kmsca-edge-targets`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import edge_targets
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(edge_targets(sys.argv[1:], prog="edge-targets.py"))
