"""AWS errors are translated only in adapters: a module of the CA core that is not an adapter (a
module wrapping one AWS API) must not import botocore. Its adapters raise the CA's errors
(:class:`kmsca.errors.AwsCallFailed` and the precise ones), which the domain catches."""

from __future__ import annotations

import ast
from pathlib import Path

import kmsca
import pytest

CORE = Path(kmsca.__file__).parent

#: The adapters (module -> the AWS API it wraps); only these may import botocore.
ADAPTERS = {
    "acm.py": "ACM (us-east-1 imports of origin certificates)",
    "aws_errors.py": "the translation helpers every adapter uses",
    "edge_probe.py": "KeyValueStore and CloudFront reads through an edge role (registration checks)",
    "edge_session.py": "STS AssumeRole into edge targets, and their clients",
    "kvs.py": "the CloudFront KeyValueStore data plane",
    "kvs_state.py": "DynamoDB (the remembered KeyValueStore state)",
    "ocsp_presigned.py": "S3 (root-signed OCSP responses)",
    "policy_store.py": "DynamoDB (the issuance policy)",
    "targets.py": "DynamoDB (the edge target registry)",
    "store/dynamodb/acm_imports.py": "DynamoDB",
    "store/dynamodb/acm_rotations.py": "DynamoDB",
    "store/dynamodb/ca_records.py": "DynamoDB",
    "store/dynamodb/certificate_index.py": "DynamoDB",
    "store/dynamodb/certificates.py": "DynamoDB",
    "store/dynamodb/notices.py": "DynamoDB",
    "store/dynamodb/revocations.py": "DynamoDB",
    "store/dynamodb/table.py": "DynamoDB",
}


def _imports_botocore(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "botocore" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "botocore":
            return True
    return False


MODULES = sorted(p.relative_to(CORE).as_posix() for p in CORE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_only_adapters_import_botocore(module: str) -> None:
    if module in ADAPTERS:
        return
    assert not _imports_botocore(CORE / module), (
        f"kmsca/{module} imports botocore but is not an adapter: let the adapter it calls translate "
        "ClientError/BotoCoreError into a KmscaError (kmsca.aws_errors) and catch that"
    )


def test_the_allow_list_names_existing_modules() -> None:
    assert set(ADAPTERS) <= set(MODULES)


def test_the_check_sees_an_import() -> None:
    assert _imports_botocore(CORE / "aws_errors.py")
    assert not _imports_botocore(CORE / "rotation.py")
