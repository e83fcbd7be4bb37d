"""Symbolic resolution of a CloudFormation template's intrinsic functions, for the IAM tests
(tests/deploy/test_template_iam.py, test_edge_template.py): ``!GetAtt X.Arn`` is ``arn:aws:X``,
``!Ref`` and ``${Name}`` a pseudo value (``pseudo``), else ``${X.Arn}`` ``arn:aws:X``, else the
parameter's default (``template["Parameters"]``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def resolve(value: Any, pseudo: Mapping[str, str], template: Mapping[str, Any]) -> Any:
    """``value`` with every ``Fn::GetAtt``, ``Ref`` and ``Fn::Sub`` replaced by a symbolic string."""
    if isinstance(value, list):
        return [resolve(v, pseudo, template) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"arn:aws:{logical_id}" if attribute == "Arn" else f"{logical_id}.{attribute}"
    if set(value) == {"Ref"}:
        return pseudo.get(value["Ref"], f"ref:{value['Ref']}")
    if set(value) == {"Fn::Sub"}:

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in pseudo:
                return pseudo[name]
            if name.endswith(".Arn"):
                return f"arn:aws:{name[:-4]}"
            return str(template["Parameters"][name]["Default"])

        return re.sub(r"\$\{([^}]+)\}", sub, value["Fn::Sub"])
    return {k: resolve(v, pseudo, template) for k, v in value.items()}


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (IAM allows a single value or a list)."""
    return value if isinstance(value, list) else [value]
