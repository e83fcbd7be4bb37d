"""Each function ships what it imports and nothing more (issue 13).

The layers come from template.yaml; what a built layer contains from its requirements.txt (see
utils/lambda_packages.py). The sandbox imports from the development virtualenv, so the split is
checked here: the lists are closed under their dependencies, awscrt is only in the KeyValueStore
sync function's package, and every handler imports with nothing but its own package.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from utils.lambda_packages import (
    REPO,
    RUNTIME_PROVIDED,
    function_layers,
    import_script,
    needed_distributions,
    shipped_distributions,
)
from utils.sandbox.template import load_template

TEMPLATE = load_template(REPO / "template.yaml")
LAYERS = function_layers(TEMPLATE)
ENV = {  # every setting a handler reads at cold start, with placeholder values
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "CA_TABLE_NAME": "table",
    "PUBLIC_BUCKET_NAME": "public",
    "INTERNAL_BUCKET_NAME": "internal",
    "ROOT_CA_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/root",
    "ISSUING_CA_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/issuing",
    "MAX_LIFETIME_DAYS": "365",
    "DEFAULT_LIFETIME_DAYS": "90",
    "CRL_VALIDITY_HOURS": "24",
    "ACM_ROTATION_WINDOW_DAYS": "30",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:topic",
    "KVS_ARN": "arn:aws:cloudfront::123456789012:key-value-store/0123",
    "EDGE_ROLE_NAME_PREFIX": "kmsca-dev-edge-",
    "EVENT_SOURCE": "kmsca.test",
    "OCSP_VALIDITY_MINUTES": "60",
    "POWERTOOLS_SERVICE_NAME": "kmsca-test",
    "POWERTOOLS_METRICS_NAMESPACE": "kmsca",
    "PATH": "/usr/bin:/bin",
}


def test_every_function_has_the_ca_layer() -> None:
    assert LAYERS, "no functions found in template.yaml"
    for name, layers in LAYERS.items():
        assert layers[0].logical_id == "CaLayer", name


@pytest.mark.parametrize("function", sorted(LAYERS))
def test_package_holds_every_dependency_of_its_layers(function: str) -> None:
    """A --no-deps layer must list every dependency the runtime does not provide."""
    missing = needed_distributions(LAYERS[function]) - shipped_distributions(LAYERS[function])
    assert not missing, f"{function} needs {sorted(missing)}: add them to the layer's requirements.txt"


def test_awscrt_only_in_the_kvs_sync_function() -> None:
    """And the targets function: registration's DescribeKeyValueStore is signed with SigV4A too."""
    with_crt = {name for name, layers in LAYERS.items() if "awscrt" in shipped_distributions(layers)}
    assert with_crt == {"SyncKvsFunction", "TargetsFunction"}


@pytest.mark.parametrize("function", ["IssueFunction", "RevokeFunction"])
def test_hot_path_functions_use_the_runtime_sdk(function: str) -> None:
    """The issue and revoke functions ship no boto3 stack of their own (the runtime has one)."""
    bundled = set().union(*(layer.distributions for layer in LAYERS[function]))
    assert not bundled & RUNTIME_PROVIDED


@pytest.mark.parametrize("function", sorted(LAYERS))
def test_handler_imports_with_only_its_package(function: str) -> None:
    """Imports the handler in a fresh interpreter where nothing but its package is importable, and
    checks that awscrt was loaded only where the KeyValueStore client needs it."""
    code_dir = REPO / TEMPLATE["Resources"][function]["Properties"]["CodeUri"]
    check = "print('awscrt' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", import_script(code_dir, LAYERS[function], "app", after=check)],
        cwd="/", env=ENV, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded_crt = result.stdout.strip().splitlines()[-2] == "True"
    assert loaded_crt is (function in ("SyncKvsFunction", "TargetsFunction"))
