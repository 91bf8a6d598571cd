"""A server-rendered API reference built from the OpenAPI document.

Why not Swagger UI / ReDoc: drf-spectacular's views load their JavaScript from a CDN, which deployments of
netdash often cannot reach, and self-hosting needs another package in INSTALLED_APPS. This page renders the same
document without JavaScript; the raw document is at ``openapi.json`` and the browsable API at the root.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@cache
def _schema() -> dict[str, Any]:
    """The OpenAPI document (routes do not change at runtime, so build it once per process)."""
    return SchemaGenerator().get_schema(request=None, public=True)


def _ref_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array" and "items" in schema:
        return f"list of {_ref_name(schema['items'])}"
    return schema.get("type", "")


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for route, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            ok = next((code for code in op.get("responses", {}) if code.startswith("2")), "")
            ok_schema = op.get("responses", {}).get(ok, {}).get("content", {}).get("application/json", {})
            rows.append({
                "tag": (op.get("tags") or ["other"])[0],
                "method": method.upper(),
                "path": route,
                "summary": op.get("summary") or op.get("description", ""),
                "parameters": op.get("parameters", []),
                "request": _ref_name(body),
                "response": f"{ok} {_ref_name(ok_schema.get('schema'))}".strip(),
            })
    return rows


def _components(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = [
            {
                "name": field,
                "type": _ref_name(spec) or ("enum" if "enum" in spec else ""),
                "required": field in required,
                "read_only": spec.get("readOnly", False),
                "nullable": spec.get("nullable", False),
                "description": spec.get("description", ""),
                "enum": spec.get("enum"),
            }
            for field, spec in schema.get("properties", {}).items()
        ]
        out.append({"name": name, "fields": fields, "enum": schema.get("enum"),
                    "description": schema.get("description", "")})
    return out


def api_docs(request: HttpRequest) -> HttpResponse:
    """Endpoints grouped by resource, then the request/response shapes."""
    doc = _schema()
    groups: dict[str, list[dict[str, Any]]] = {}
    for op in _operations(doc):
        groups.setdefault(op["tag"], []).append(op)
    return render(request, "api/docs.html", {
        "info": doc.get("info", {}), "groups": groups, "components": _components(doc),
    })
