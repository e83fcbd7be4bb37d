"""Before a second CloudFront origin certificate for one name: find the first one.

``cloudfront-origin-cert.py`` asks the inventory function (the API of ``certs.py list``) for
unexpired, unrevoked ``cloudfront-origin`` certificates that name one of the requested DNS names.
One already in ACM is renewed in place by the rotation function, so a second import is usually a
mistake (two ARNs, and the old one is never updated by hand); it needs ``--allow-second``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .aws import OUTPUT_ROTATE_FUNCTION_NAME, invoke_function
from .contract import UTC, _iso
from .errors import CliError, Refused
from .inventory import ENV_INVENTORY_FUNCTION_NAME, OUTPUT_INVENTORY_FUNCTION_NAME
from .names import San

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

#: Inventory pages read at most (100 entries each) before giving up the check with a warning.
MAX_PAGES = 5


def inventory_function(environ: Mapping[str, str], outputs: Mapping[str, str]) -> str | None:
    """The inventory function: ``KMSCA_INVENTORY_FUNCTION_NAME``, else the stack's output, else None."""
    return environ.get(ENV_INVENTORY_FUNCTION_NAME) or outputs.get(OUTPUT_INVENTORY_FUNCTION_NAME) or None


def find_origin_certificates(
    lambda_client: LambdaClient, function_name: str, sans: Sequence[San], now: dt.datetime
) -> list[dict[str, Any]]:
    """Unexpired, unrevoked ``cloudfront-origin`` certificates in ACM naming one of ``sans``' DNS names.

    Raises:
        Refused, CliError, botocore errors: the inventory call failed (see :func:`invoke_function`).
    """
    wanted = {f"dns:{s.value.lower()}" for s in sans if s.type == "dns"}
    if not wanted:
        return []
    payload: dict[str, Any] = {
        "operation": "list",
        "profile": "cloudfront-origin",
        "status": "issued",
        "name_contains": min(wanted)[4:],
        "expiring_after": _iso(now),
        "page_size": 100,
    }
    found: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = invoke_function(lambda_client, function_name, payload, "inventory function")
        for entry in page.get("certificates", []):
            names = {str(n).lower() for n in entry.get("sans", [])}
            if entry.get("acm_certificate_arn") and names & wanted:
                found.append(entry)
        token = page.get("next_token")
        if not token:
            return found
        payload["next_token"] = token
    return found


def check_no_origin_certificate(
    lambda_client: LambdaClient,
    inventory: str | None,
    sans: Sequence[San],
    outputs: Mapping[str, str],
    warn: Callable[[str], None],
) -> None:
    """Refuse a second CloudFront origin certificate for a name that has one in ACM.

    Without an inventory function to ask, or when asking fails, warns and lets the request go on
    (the check guards against a mistake; it must not block issuance when the inventory is unreadable).

    Raises:
        Refused: code ``CertificateExists`` naming the ARN, the serial and how to rotate it.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if inventory is None:
        warn(
            "cannot check for an existing origin certificate of this name: no inventory function "
            f"(pass --stack-name, or set {ENV_INVENTORY_FUNCTION_NAME})"
        )
        return
    try:
        existing = find_origin_certificates(lambda_client, inventory, sans, dt.datetime.now(UTC))
    except (CliError, ClientError, BotoCoreError) as exc:
        warn(f"cannot check for an existing origin certificate of this name ({exc})")
        return
    if not existing:
        return
    first = existing[0]
    rotate = outputs.get(OUTPUT_ROTATE_FUNCTION_NAME) or f"<the stack's {OUTPUT_ROTATE_FUNCTION_NAME} output>"
    raise Refused(
        "CertificateExists",
        f"{', '.join(s.value for s in sans)} already has a CloudFront origin certificate in ACM: "
        f"{first['acm_certificate_arn']} (serial {first['serial_number']}, valid until {first.get('not_after')}"
        f"{f'; {len(existing) - 1} more' if len(existing) > 1 else ''}). The ACM rotation function re-issues it "
        f"into the same ARN before it expires; to rotate it now: aws lambda invoke --function-name {rotate} "
        "rotation.json (as an identity allowed to invoke it, e.g. an administrator). "
        "Pass --allow-second to import a second certificate under a new ARN",
    )
