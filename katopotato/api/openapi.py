"""Operations (a route with its contract) and the OpenAPI 3.1 document generated from them.

An ``Operation`` names its handler, the scope it needs, and the pydantic models of its path, query,
body and answers. The app registers routes from operations and ``openapi`` renders the very same
list, so the document and the behaviour come from one declaration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .models import ErrorOut

MAX_BODY_BYTES = 64 * 1024  # the app's client_max_size: a larger body gets 413 `payload_too_large`


def too_large(error: Mapping[str, Any]) -> dict[str, Any]:
    """The 413 every operation with a body may answer (the app enforces the limit for all routes)."""
    return {"description": f"the body is larger than {MAX_BODY_BYTES} bytes: `payload_too_large`", "content": error}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"
PUBLIC: None = None  # scope of a route anyone may call
ANY_TOKEN = ""  # scope of a route any valid token may call


@dataclass(frozen=True)
class Answer:
    """One documented answer: a JSON model, or other media types with a plain schema."""

    description: str
    model: type[BaseModel] | None = None
    media: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class HeaderParam:
    name: str
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """A route and its contract.

    Attributes:
        scope: the token scope it needs; ``PUBLIC`` (None) for none, ``ANY_TOKEN`` for any token.
    """

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    scope: str | None
    answers: Mapping[int, Answer]
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    headers: Sequence[HeaderParam] = ()
    description: str = ""


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query/path parameter is optional by ``required: false``, never by a null value."""
    schema = dict(schema)
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            schema.pop("anyOf")
            schema = {**kept[0], **schema}
        else:
            schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        schema.pop("default")
    schema.pop("title", None)
    return schema


def _parameters(model: type[BaseModel], where: str, defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": _strip_null(prop),
        }
        if prop.get("description"):
            param["description"] = prop["description"]
        out.append(param)
    return out


def openapi(operations: Sequence[Operation], *, title: str, version: str, description: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorOut, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        for answer in op.answers.values():
            if answer.model is not None:
                wanted.append((answer.model, "serialization"))
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    error = {"application/json": {"schema": ref(ErrorOut, "serialization")}}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        params: list[dict[str, Any]] = []
        if op.path_params is not None:
            params += _parameters(op.path_params, "path", schemas)
        if op.query is not None:
            params += _parameters(op.query, "query", schemas)
        for h in op.headers:
            params.append(
                {
                    "name": h.name,
                    "in": "header",
                    "required": False,
                    "schema": dict(h.schema),
                    "description": h.description,
                }
            )
        responses: dict[str, Any] = {}
        for status, answer in sorted(op.answers.items()):
            entry: dict[str, Any] = {"description": answer.description}
            content: dict[str, Any] = {}
            if answer.model is not None:
                content["application/json"] = {"schema": ref(answer.model, "serialization")}
            for media, schema in answer.media.items():
                content[media] = {"schema": dict(schema)}
            if content:
                entry["content"] = content
            if answer.headers:
                entry["headers"] = {k: {"schema": dict(v)} for k, v in answer.headers.items()}
            responses[str(status)] = entry
        if params or op.body is not None:
            responses.setdefault("400", {"description": "invalid request", "content": error})
        if op.body is not None:
            responses.setdefault("413", too_large(error))
        if op.scope is not None:
            responses.setdefault("401", {"description": "no token, or an unknown one", "content": error})
            responses.setdefault("403", {"description": "the token lacks the scope", "content": error})
        if op.path_params is not None:
            responses.setdefault("404", {"description": "not found", "content": error})
        spec: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        if op.description:
            spec["description"] = op.description
        if op.scope is None:
            spec["security"] = []
        elif op.scope:
            spec["x-scope"] = op.scope
            spec["description"] = (spec.get("description", "") + f"\n\nNeeds a token with scope `{op.scope}`.").strip()
        if params:
            spec["parameters"] = params
        if op.body is not None:
            spec["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(op.body, "validation")}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


__all__ = ["ANY_TOKEN", "PUBLIC", "Answer", "Handler", "HeaderParam", "Operation", "openapi"]
