"""``python -m utils.demo``: run the demo (exit status 0 when every step passed, 1 otherwise, 130 on Ctrl-C)."""

from __future__ import annotations

import contextlib
import sys

from utils.demo.cli import main

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
