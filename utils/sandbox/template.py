"""Read a SAM/CloudFormation ``template.yaml`` into plain data and resolve it locally.

The sandbox takes every resource name, handler and environment variable from the
template, so the two cannot drift. This module knows nothing about which resources a
given template declares: it parses, evaluates Parameters and Conditions, applies SAM
``Globals``, orders resources by their dependencies, and resolves intrinsic functions
against a map of logical id -> :class:`Physical` (what the sandbox created).

Supported: short tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``, ``!Not``, ``!Equals``,
``!And``, ``!Or``, ``!Join``, ``!Select``, ``!Split``, ``!FindInMap``, ``!Base64``,
``!Condition``, ...), YAML anchors, pseudo parameters (``AWS::AccountId``,
``AWS::Region``, ``AWS::Partition``, ``AWS::StackName``, ``AWS::StackId``,
``AWS::URLSuffix``, ``AWS::NoValue``).

Example::

    t = Template(Path("template.yaml"), stack_name="kmsca-dev", region="eu-west-1")
    for logical_id in t.creation_order():
        resource = t.resources[logical_id]
        ...  # create it, then physical[logical_id] = Physical(ref=..., attrs={...})
    fn = t.function("IssueFunction", physical)   # Function(handler="app.handler", environment={...})
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "NO_VALUE",
    "Function",
    "Output",
    "Physical",
    "Resource",
    "Template",
    "TemplateError",
    "load_template",
    "stringify",
]

#: Account id moto answers with (``moto.core.DEFAULT_ACCOUNT_ID``).
DEFAULT_ACCOUNT_ID = "123456789012"

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
CUSTOM_RESOURCE = "AWS::CloudFormation::CustomResource"


class TemplateError(Exception):
    """The template cannot be read or a value cannot be resolved."""


class _NoValue:
    """``!Ref AWS::NoValue``: the property is removed."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


# ---------------------------------------------------------------------------------------------
# YAML with CloudFormation short tags
# ---------------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader + CloudFormation short tags; dates stay strings (as CloudFormation reads them)."""


_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a template file (YAML or JSON) into plain dicts/lists/strings."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return data


# ---------------------------------------------------------------------------------------------
# Data shapes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Physical:
    """What exists for one logical id: ``!Ref`` gives ``ref``, ``!GetAtt X.Attr`` gives ``attrs[Attr]``.

    ``ref``: e.g. a table name, bucket name, KMS key id, function name, custom resource's
    PhysicalResourceId. ``attrs``: e.g. {"Arn": "arn:aws:...", "StreamArn": "..."}.
    """

    ref: str
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    """One resource whose Condition (if any) holds.

    ``properties`` are unresolved (intrinsics still in place); for SAM functions and layers
    the matching ``Globals`` section is already merged in.
    """

    logical_id: str
    type: str
    properties: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    condition: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_custom_resource(self) -> bool:
        """``Custom::*`` or ``AWS::CloudFormation::CustomResource``."""
        return self.type.startswith("Custom::") or self.type == CUSTOM_RESOURCE


@dataclass(frozen=True)
class Function:
    """An ``AWS::Serverless::Function`` with its environment resolved.

    ``code_uri``: absolute directory; ``handler``: "module.function" (module may be dotted,
    i.e. a path below code_uri); ``timeout``: seconds; ``memory_size``: MB;
    ``environment``: Globals + own variables, all values strings; ``events``: the raw
    ``Events`` map (name -> {"Type": ..., "Properties": {...}}), unresolved.
    """

    logical_id: str
    code_uri: Path
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    events: Mapping[str, Any]
    function_name: str | None
    properties: Mapping[str, Any]

    @property
    def module(self) -> str:
        """Module part of the handler, e.g. "app"."""
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        """Function part of the handler, e.g. "handler"."""
        return self.handler.rsplit(".", 1)[1]

    @property
    def module_path(self) -> Path:
        """The handler's source file, e.g. <code_uri>/app.py."""
        return self.code_uri.joinpath(*self.module.split(".")).with_suffix(".py")


@dataclass(frozen=True)
class Output:
    """A stack output: ``value`` is a string, as DescribeStacks returns it."""

    key: str
    value: str
    description: str | None = None
    export_name: str | None = None


# ---------------------------------------------------------------------------------------------
# Template
# ---------------------------------------------------------------------------------------------

_SUB_RE = re.compile(r"\$\{([^}]*)\}")


def _sam_merge(global_value: Any, local_value: Any) -> Any:
    """SAM Globals semantics: maps merge recursively, lists concatenate, scalars: local wins."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _sam_merge(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


def _to_str(value: Any) -> str:
    """CloudFormation's string form of a scalar (booleans lowercase)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"expected a scalar, got {value!r}")
    return str(value)


def stringify(value: Any) -> Any:
    """Every scalar in a nested structure turned into its string form (as CFN sends custom resources)."""
    if isinstance(value, dict):
        return {k: stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringify(v) for v in value]
    return _to_str(value) if value is not None else value


class Template:
    """A parsed template with Parameters and Conditions evaluated.

    ``parameter_overrides``: {"Name": "value"}; each is checked against the parameter's
    AllowedValues / AllowedPattern / MinLength / MaxLength / MinValue / MaxValue as
    CloudFormation does. Unknown names are an error.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        stack_name: str,
        region: str,
        account_id: str = DEFAULT_ACCOUNT_ID,
        parameter_overrides: Mapping[str, str] | None = None,
        stack_id: str | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.root = self.path.parent
        self.raw = load_template(self.path)
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.partition = "aws-cn" if region.startswith("cn-") else "aws"
        self.url_suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        self.stack_id = stack_id or (
            f"arn:{self.partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/"
            "00000000-0000-4000-8000-000000000000"
        )
        self.description: str = str(self.raw.get("Description", "")).strip()
        self.mappings: dict[str, Any] = self.raw.get("Mappings") or {}
        self.parameter_specs: dict[str, dict[str, Any]] = self.raw.get("Parameters") or {}
        self.parameters = self._evaluate_parameters(dict(parameter_overrides or {}))
        self._condition_specs: dict[str, Any] = self.raw.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self.conditions = {name: self.condition(name) for name in self._condition_specs}
        self.resources = self._load_resources()

    # -- parameters and conditions -------------------------------------------------------------

    def _evaluate_parameters(self, overrides: dict[str, str]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.parameter_specs))
        if unknown:
            raise TemplateError(f"Parameters {unknown} do not exist in the template")
        values: dict[str, Any] = {}
        for name, spec in self.parameter_specs.items():
            if name in overrides:
                value = str(overrides[name])
            elif "Default" in spec:
                value = _to_str(spec["Default"])
            else:
                raise TemplateError(f"Parameter {name} has no default and no override")
            self._check_parameter(name, spec, value)
            kind = str(spec.get("Type", "String"))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                values[name] = [item.strip() for item in value.split(",")] if value else []
            else:
                values[name] = value
        return values

    @staticmethod
    def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [_to_str(v) for v in allowed]:
            raise TemplateError(f"Parameter {name}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(str(pattern), value):
            raise TemplateError(f"Parameter {name}={value!r} does not match {pattern}")
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            raise TemplateError(f"Parameter {name} is shorter than {spec['MinLength']}")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            raise TemplateError(f"Parameter {name} is longer than {spec['MaxLength']}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise TemplateError(f"Parameter {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"Parameter {name}={value} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"Parameter {name}={value} is above {spec['MaxValue']}")

    def condition(self, name: str) -> bool:
        """Value of a named condition (evaluated once)."""
        if name not in self._conditions:
            if name not in self._condition_specs:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self._condition_specs[name], {}))
        return self._conditions[name]

    @property
    def pseudo_parameters(self) -> dict[str, Any]:
        """``AWS::*`` pseudo parameters of this (local) stack."""
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    # -- resources ----------------------------------------------------------------------------

    def _load_resources(self) -> dict[str, Resource]:
        globals_ = self.raw.get("Globals") or {}
        sam_globals = {
            SERVERLESS_FUNCTION: globals_.get("Function") or {},
            "AWS::Serverless::LayerVersion": globals_.get("LayerVersion") or {},
            "AWS::Serverless::SimpleTable": globals_.get("SimpleTable") or {},
        }
        resources: dict[str, Resource] = {}
        for logical_id, spec in self.raw["Resources"].items():
            if not isinstance(spec, dict) or "Type" not in spec:
                raise TemplateError(f"resource {logical_id} has no Type")
            condition = spec.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            kind = str(spec["Type"])
            properties = spec.get("Properties") or {}
            if sam_globals.get(kind):
                properties = _sam_merge(sam_globals[kind], properties)
            depends_on = spec.get("DependsOn") or []
            resources[logical_id] = Resource(
                logical_id=logical_id,
                type=kind,
                properties=properties,
                depends_on=tuple([depends_on] if isinstance(depends_on, str) else depends_on),
                condition=condition,
                metadata=spec.get("Metadata") or {},
            )
            url_config = properties.get("FunctionUrlConfig") if kind == SERVERLESS_FUNCTION else None
            if isinstance(url_config, dict):  # SAM generates <Function>Url (AWS::Lambda::Url)
                resources[f"{logical_id}Url"] = Resource(
                    logical_id=f"{logical_id}Url",
                    type="AWS::Lambda::Url",
                    properties={"TargetFunctionArn": {"Fn::GetAtt": [logical_id, "Arn"]}, **url_config},
                    condition=condition,
                )
        return resources

    def of_type(self, *types: str) -> list[Resource]:
        """Resources of these types, in template order; a type ending in "::*" matches a prefix."""
        return [
            r
            for r in self.resources.values()
            if any(r.type == t or (t.endswith("*") and r.type.startswith(t[:-1])) for t in types)
        ]

    @property
    def custom_resources(self) -> list[Resource]:
        """``Custom::*`` and ``AWS::CloudFormation::CustomResource`` resources, in template order."""
        return [r for r in self.resources.values() if r.is_custom_resource]

    def dependencies(self, logical_id: str) -> set[str]:
        """Logical ids this resource needs first: DependsOn, Ref, GetAtt, ${} in Sub."""
        resource = self.resources[logical_id]
        found: set[str] = set(resource.depends_on)
        self._collect_refs(resource.properties, found)
        return {d for d in found if d in self.resources and d != logical_id}

    def _collect_refs(self, value: Any, found: set[str]) -> None:
        if isinstance(value, list):
            for item in value:
                self._collect_refs(item, found)
            return
        if not isinstance(value, dict):
            return
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
                return
            if key == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).partition(".")[0]
                found.add(str(target))
                return
            if key == "Fn::Sub":
                text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
                for name in _SUB_RE.findall(str(text)):
                    if not name.startswith("!") and name not in variables:
                        found.add(name.partition(".")[0])
                self._collect_refs(variables, found)
                return
        for item in value.values():
            self._collect_refs(item, found)

    def creation_order(self) -> list[str]:
        """Logical ids ordered so that every resource follows its dependencies (template order otherwise)."""
        pending = {lid: self.dependencies(lid) for lid in self.resources}
        order: list[str] = []
        while pending:
            ready = [lid for lid, deps in pending.items() if not deps - set(order)]
            if not ready:
                raise TemplateError(f"circular dependency between {sorted(pending)}")
            for lid in ready:
                order.append(lid)
                del pending[lid]
        return order

    # -- intrinsic functions --------------------------------------------------------------------

    def resolve(self, value: Any, physical: Mapping[str, Physical]) -> Any:
        """Resolve every intrinsic function in ``value`` (dicts/lists/scalars, any depth).

        ``physical``: logical id -> :class:`Physical` for the resources that exist. A Ref or
        GetAtt to a resource missing there raises :class:`TemplateError`. ``!Ref AWS::NoValue``
        entries are dropped from dicts and lists.
        """
        if isinstance(value, list):
            items = [self.resolve(v, physical) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                return self._intrinsic(key, arg, physical)
        resolved = {k: self.resolve(v, physical) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str, physical: Mapping[str, Physical]) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        pseudo = self.pseudo_parameters
        if name in pseudo:
            return pseudo[name]
        if name in physical:
            return physical[name].ref
        if name in self.resources:
            raise TemplateError(f"!Ref {name}: resource not created (yet) in the sandbox")
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def _get_att(self, logical_id: str, attribute: str, physical: Mapping[str, Physical]) -> Any:
        if logical_id not in physical:
            if logical_id in self.resources:
                raise TemplateError(f"!GetAtt {logical_id}.{attribute}: resource not created in the sandbox")
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: no such resource")
        attrs = physical[logical_id].attrs
        if attribute not in attrs:
            raise TemplateError(
                f"!GetAtt {logical_id}.{attribute}: attribute not available in the sandbox (has {sorted(attrs)})"
            )
        return attrs[attribute]

    def _sub(self, arg: Any, physical: Mapping[str, Physical]) -> str:
        text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
        values = {k: self.resolve(v, physical) for k, v in (variables or {}).items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return _to_str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                return _to_str(self._get_att(logical_id, attribute, physical))
            return _to_str(self._ref(name, physical))

        return _SUB_RE.sub(replace, str(text))

    def _intrinsic(self, key: str, arg: Any, physical: Mapping[str, Physical]) -> Any:
        if key == "Ref":
            return self._ref(str(arg), physical)
        if key == "Condition":
            return self.condition(str(arg))
        if key == "Fn::GetAtt":
            logical_id, attribute = (arg if isinstance(arg, list) else str(arg).split(".", 1))[:2]
            return self._get_att(str(logical_id), str(self.resolve(attribute, physical)), physical)
        if key == "Fn::Sub":
            return self._sub(arg, physical)
        if key == "Fn::If":
            name, if_true, if_false = arg
            return self.resolve(if_true if self.condition(name) else if_false, physical)
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            values = [self.resolve(v, physical) for v in arg]
            if key == "Fn::Equals":
                return _to_str(values[0]) == _to_str(values[1])
            if key == "Fn::Not":
                return not values[0]
            return all(values) if key == "Fn::And" else any(values)
        if key == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(_to_str(v) for v in self.resolve(items, physical))
        if key == "Fn::Select":
            index, items = self.resolve(arg, physical)
            return items[int(index)]
        if key == "Fn::Split":
            delimiter, text = self.resolve(arg, physical)
            return str(text).split(str(delimiter))
        if key == "Fn::FindInMap":
            name, first, second = (self.resolve(v, physical) for v in arg[:3])
            try:
                return self.mappings[name][first][second]
            except KeyError:
                raise TemplateError(f"!FindInMap {name}/{first}/{second}: not found") from None
        if key == "Fn::Base64":
            return base64.b64encode(_to_str(self.resolve(arg, physical)).encode()).decode("ascii")
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg, physical), separators=(",", ":"))
        if key == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        raise TemplateError(f"{key} is not supported by the local sandbox")

    # -- views the sandbox uses -----------------------------------------------------------------

    def function(self, logical_id: str, physical: Mapping[str, Physical]) -> Function:
        """The function ``logical_id`` (an AWS::Serverless::Function) with its environment resolved."""
        resource = self.resources[logical_id]
        if resource.type != SERVERLESS_FUNCTION:
            raise TemplateError(f"{logical_id} is a {resource.type}, not {SERVERLESS_FUNCTION}")
        props = resource.properties
        scalars = {
            key: self.resolve(props[key], physical)
            for key in ("CodeUri", "Handler", "Runtime", "Timeout", "MemorySize", "FunctionName")
            if key in props
        }
        code_uri = scalars.get("CodeUri")
        handler = scalars.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}: needs a local CodeUri directory and a module.function Handler")
        variables = (props.get("Environment") or {}).get("Variables") or {}
        environment = {k: _to_str(v) for k, v in self.resolve(variables, physical).items()}
        name = scalars.get("FunctionName")
        return Function(
            logical_id=logical_id,
            code_uri=(self.root / code_uri).resolve(),
            handler=handler,
            runtime=str(scalars.get("Runtime", "")),
            timeout=int(scalars.get("Timeout", 3)),
            memory_size=int(scalars.get("MemorySize", 128)),
            environment=environment,
            events=props.get("Events") or {},
            function_name=_to_str(name) if name is not None else None,
            properties=props,
        )

    def functions(self, physical: Mapping[str, Physical]) -> dict[str, Function]:
        """Every AWS::Serverless::Function, logical id -> :class:`Function` (template order)."""
        return {r.logical_id: self.function(r.logical_id, physical) for r in self.of_type(SERVERLESS_FUNCTION)}

    def outputs(self, physical: Mapping[str, Physical]) -> dict[str, Output]:
        """Outputs whose Condition holds, values resolved to strings (lists joined with ",")."""
        result: dict[str, Output] = {}
        for key, spec in (self.raw.get("Outputs") or {}).items():
            if spec.get("Condition") and not self.condition(spec["Condition"]):
                continue
            value = self.resolve(spec.get("Value"), physical)
            export = self.resolve((spec.get("Export") or {}).get("Name"), physical)
            description = spec.get("Description")
            result[key] = Output(
                key=key,
                value=",".join(map(_to_str, value)) if isinstance(value, list) else _to_str(value),
                description=str(description).strip() if description is not None else None,
                export_name=_to_str(export) if export is not None else None,
            )
        return result
