"""Checking objects against a CRD's schema the way the API server would.

The API server prunes, defaults, then validates a custom resource: the OpenAPI v3
schema (types, enums, bounds, patterns), then every ``x-kubernetes-validations`` CEL
rule with ``self`` bound to the value it sits on, numbers typed as the schema says
(a ``number`` is a CEL double even when written ``99``). :class:`CrdSchema` does the
same offline with ``jsonschema`` (Draft 4, whose boolean ``exclusiveMinimum`` is the
one OpenAPI v3 uses) and ``celpy``. Unknown fields are errors rather than pruned, as
``kubectl apply`` reports them with its default strict field validation.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

Schema = dict[str, Any]

_COMBINATORS = ("oneOf", "anyOf", "allOf", "not")
_EMBEDDED_FIELDS = ("apiVersion", "kind", "metadata")


def to_json_schema(node: Schema) -> Schema:
    """An OpenAPI v3 schema of a CRD as JSON Schema, unknown fields refused."""
    converted = {
        key: value
        for key, value in node.items()
        if not key.startswith("x-kubernetes-") and key != "nullable"
    }
    if "properties" in node:
        converted["properties"] = {
            name: to_json_schema(child) for name, child in node["properties"].items()
        }
    if isinstance(node.get("additionalProperties"), dict):
        converted["additionalProperties"] = to_json_schema(node["additionalProperties"])
    if "items" in node:
        converted["items"] = to_json_schema(node["items"])
    for combinator in ("oneOf", "anyOf", "allOf"):
        if combinator in node:
            converted[combinator] = [to_json_schema(sub) for sub in node[combinator]]
    if node.get("x-kubernetes-int-or-string"):
        converted.pop("type", None)
        converted.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("x-kubernetes-embedded-resource"):
        properties = converted.setdefault("properties", {})
        for field in _EMBEDDED_FIELDS:
            properties.setdefault(field, {})
    closed = not node.get("x-kubernetes-preserve-unknown-fields")
    if closed and "properties" in converted and "additionalProperties" not in node:
        converted["additionalProperties"] = False
    if node.get("nullable"):
        converted = {"anyOf": [{"type": "null"}, converted]}
    return converted


def apply_defaults(node: Schema, value: Any) -> Any:
    """``value`` with the schema's defaults filled in, as the API server does."""
    if isinstance(value, dict):
        result = dict(value)
        for name, child in node.get("properties", {}).items():
            if name not in result and "default" in child:
                result[name] = copy.deepcopy(child["default"])
            if name in result:
                result[name] = apply_defaults(child, result[name])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for name in set(result) - set(node.get("properties", {})):
                result[name] = apply_defaults(extra, result[name])
        return result
    if isinstance(value, list) and "items" in node:
        return [apply_defaults(node["items"], item) for item in value]
    return value


def to_cel(node: Schema, value: Any) -> Any:
    """A JSON value as the CEL value the API server would bind for this schema."""
    kind = node.get("type")
    if value is None:
        return None
    if kind == "number":
        return celtypes.DoubleType(float(value))
    if kind == "integer":
        return celtypes.IntType(value)
    if kind == "boolean":
        return celtypes.BoolType(value)
    if kind == "string":
        return celtypes.StringType(value)
    if kind == "array":
        return celtypes.ListType(to_cel(node.get("items", {}), item) for item in value)
    if kind == "object":
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        return celtypes.MapType(
            {
                celtypes.StringType(name): to_cel(
                    properties.get(name, extra if isinstance(extra, dict) else {}),
                    item,
                )
                for name, item in value.items()
            }
        )
    return celpy.json_to_cel(value)


@cache
def compile_rule(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def rule_holds(rule: str, activation: dict[str, Any]) -> bool:
    """Whether a CEL rule evaluates to true; an evaluation error is a failure."""
    try:
        result = compile_rule(rule).evaluate(activation)
    except celpy.CELEvalError:
        return False
    return isinstance(result, celtypes.BoolType) and bool(result)


def cel_errors(node: Schema, value: Any, path: str = "") -> list[str]:
    """Messages of the CEL rules and list-type constraints ``value`` breaks."""
    errors = [
        f"{path or '<root>'}: {rule.get('message', rule['rule'])}"
        for rule in node.get("x-kubernetes-validations", [])
        if not rule_holds(rule["rule"], {"self": to_cel(node, value)})
    ]
    errors += _list_type_errors(node, value, path)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        for name, item in value.items():
            child = properties.get(name, extra if isinstance(extra, dict) else None)
            if child is not None:
                errors += cel_errors(child, item, f"{path}.{name}" if path else name)
    if isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            errors += cel_errors(node["items"], item, f"{path}[{index}]")
    return errors


def _list_type_errors(node: Schema, value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        return []
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = node["x-kubernetes-list-map-keys"]
        identities = [tuple(item.get(key) for key in keys) for item in value]
    elif list_type == "set":
        identities = [repr(item) for item in value]
    else:
        return []
    if len(set(identities)) != len(identities):
        return [f"{path}: duplicate entries in a list of type {list_type}"]
    return []


class CrdSchema:
    """One served version of a CustomResourceDefinition, as a validator."""

    def __init__(self, crd: dict[str, Any], version: str, *, cel: bool = True):
        served = {entry["name"]: entry for entry in crd["spec"]["versions"]}
        self.schema: Schema = served[version]["schema"]["openAPIV3Schema"]
        self.cel = cel
        root = to_json_schema(self.schema)
        # The API server types the root's apiVersion, kind and metadata itself; some
        # CRDs leave them out of their schema.
        for field in _EMBEDDED_FIELDS:
            root.setdefault("properties", {}).setdefault(field, {})
        self._validator = jsonschema.Draft4Validator(root)

    def errors(self, document: dict[str, Any]) -> list[str]:
        """Why the API server would refuse ``document``; empty when it would not."""
        defaulted = apply_defaults(self.schema, document)
        schema_errors = [
            f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: "
            f"{error.message}"
            for error in self._validator.iter_errors(defaulted)
        ]
        # CEL rules run on values that already have their schema's types.
        if schema_errors or not self.cel:
            return schema_errors
        return cel_errors(self.schema, defaulted)


def structural_problems(node: Schema, path: str = "") -> list[str]:
    """Where a schema is not structural, or leaves a value untyped or unchecked."""
    here = path or "<root>"
    problems = [f"{here}: uses {key}" for key in _COMBINATORS if key in node]
    untyped = node.get("x-kubernetes-int-or-string") or node.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "type" not in node and not untyped:
        problems.append(f"{here}: has no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{here}: has both properties and additionalProperties")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{here}: is an array without items")
    if node.get("type") == "object" and not _object_is_described(node, path):
        problems.append(f"{here}: is an object without properties")
    if "default" in node:
        problems += [
            f"{here}: default {error.message}"
            for error in jsonschema.Draft4Validator(to_json_schema(node)).iter_errors(
                node["default"]
            )
        ]
    for rule in node.get("x-kubernetes-validations", []):
        try:
            compile_rule(rule["rule"])
        except celpy.CELParseError as exc:
            problems.append(f"{here}: rule does not compile: {exc}")
    for name, child in node.get("properties", {}).items():
        problems += structural_problems(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        problems += structural_problems(node["items"], f"{path}[]")
    return problems


def _object_is_described(node: Schema, path: str) -> bool:
    # metadata is the one object the API server types itself.
    return (
        path == ".metadata"
        or "properties" in node
        or isinstance(node.get("additionalProperties"), dict)
        or bool(node.get("x-kubernetes-preserve-unknown-fields"))
    )
