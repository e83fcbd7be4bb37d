"""Names and places the demo's modules share: the repository, the certificates' names, the TLS host."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "utils"
CLIENT_CN = "demo-client"
SERVER_CN = "localhost"
REVOKED_CN = "demo-client-2"
ORIGIN_CN = "origin.demo.example"
REVOCATION_REASON = "keyCompromise"
TLS_HOST = "127.0.0.1"
ACM_REGION = "us-east-1"
WORKLOAD_ACCOUNT = "222222222222"  # the sandbox's workload account (edge stack deployed, callers accepted)
WORKLOAD_TARGET = "workload"  # its name as the CA's edge target
CONNECTION_DIR = REPO / "functions" / "connection"
SUBPROCESS_TIMEOUT = 180  # seconds for one CLI or openssl run
