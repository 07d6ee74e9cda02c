"""budget-api's OpenAPI 3.1 document, assembled from the pydantic models.

pydantic writes JSON Schema 2020-12, which is OpenAPI 3.1's schema dialect, so the
models' schemas go into ``components.schemas`` as they are; this module adds the
paths, the query and path parameters (from each endpoint's query model), the
request bodies, the responses and the bearer security scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from sla.model.api import ApiError

OPENAPI_VERSION: Final = "3.1.0"
REF_TEMPLATE: Final = "#/components/schemas/{model}"

NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
"""Kubernetes object names (RFC 1123), as the catalogue keys them."""

NO_CONTENT: Final = 204

Access = Literal["open", "read", "write"]

ERROR_DESCRIPTIONS: Final = {
    400: "a parameter or the body cannot be read",
    401: "no bearer token, or not the right one",
    404: "no such object",
    405: "the path does not take this method",
    409: "the policy is not valid, so no decision can be made",
    413: "the body is larger than the endpoint takes",
    415: "the body is declared as another type than application/json",
    422: "the body does not match the request model",
    503: "the store or the sink is unavailable, or writes are not configured",
}


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the document describes it."""

    method: str
    path: str
    summary: str
    access: Access
    response: type[BaseModel] | str
    """A response model, or a media type for a body that is not JSON."""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: Sequence[int] = (400, 503)
    success: int = 200
    tags: Sequence[str] = field(default_factory=tuple)

    @property
    def path_parameters(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


def _model_schemas(
    operations: Sequence[Operation],
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Any], dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ApiError, "serialization")]
    for op in operations:
        if isinstance(op.response, type):
            wanted.append((op.response, "serialization"))
        if op.body is not None:
            wanted.append((op.body, "validation"))
    unique = list(dict.fromkeys(wanted))
    refs, definitions = models_json_schema(unique, ref_template=REF_TEMPLATE)
    return {key: refs[key] for key in unique}, definitions.get("$defs", {})


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One ``in: query`` parameter per field, named by its alias."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in property_schema.items() if k != "title"},
        }
        if "description" in property_schema:
            parameter["description"] = property_schema["description"]
        if property_schema.get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _path_parameter(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 253},
    }


def _json(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(
    op: Operation, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Any]
) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "OK"}
    if op.success == NO_CONTENT:
        pass
    elif isinstance(op.response, type):
        success["content"] = _json(refs[(op.response, "serialization")])
    else:
        success["content"] = {op.response: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.success): success}
    error = _json(refs[(ApiError, "serialization")])
    codes = set(op.errors) | ({401} if op.access != "open" else set()) | {405}
    for code in sorted(codes):
        responses[str(code)] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": error,
        }
    return responses


def _operation(
    op: Operation,
    refs: dict[tuple[type[BaseModel], JsonSchemaMode], Any],
    *,
    read_auth: bool,
) -> dict[str, Any]:
    parameters = [_path_parameter(name) for name in op.path_parameters]
    if op.query is not None:
        parameters += query_parameters(op.query)
    described: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method}_{op.path}".replace("/", "_").strip("_"),
        "parameters": parameters,
        "responses": _responses(op, refs),
    }
    if op.tags:
        described["tags"] = list(op.tags)
    if op.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": _json(refs[(op.body, "validation")]),
        }
    protected = op.access == "write" or (op.access == "read" and read_auth)
    described["security"] = [{"bearer": []}] if protected else []
    return described


def openapi_document(
    operations: Sequence[Operation], *, title: str, version: str, read_auth: bool
) -> dict[str, Any]:
    """The whole document; ``read_auth`` marks reads as needing the token too."""
    refs, definitions = _model_schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, refs, read_auth=read_auth
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
