"""The versioned JSON API: one OpenAPI 3.1 document assembled from the packages.

Each package contributes its paths and schemas with
``config.add_api_spec(fragment)``; the document is served at
``/api/v1/openapi.json``. A view registered with ``openapi=True`` gets its
request (path, query, body) validated against the document by openapi-core
before it runs; ``request.openapi_body`` holds the validated body. Every API
error is JSON: ``{"error": code, "message": text, "details": [...]}``.

Each operation's parameters and body schema are compiled once, at start-up, into
plain checks (:mod:`learningcity.schemacheck`): a request they accept costs
microseconds; any other request (a wrong body, a keyword the checks do not know) goes
to openapi-core, which accepts it or reports the error as always (about 5 ms).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from openapi_core import OpenAPI
from openapi_core.datatypes import Parameters
from openapi_core.validation.request.datatypes import RequestParameters
from pyramid.httpexceptions import HTTPException
from pyramid.view import exception_view_config, view_config

from .schemacheck import Check, Refused, compile_schema

API_PREFIX = "/api/v1"

BASE_SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Learning-city assessment engine API",
        "version": "1.0.0",
        "description": "Adaptive lifelong-learning ability test, learning-needs surveys "
                       "and monitoring. Errors are JSON objects "
                       "{error, message, details}.",
    },
    "servers": [{"url": API_PREFIX}],
    "paths": {
        "/": {"get": {"operationId": "apiRoot", "summary": "API index",
                      "responses": {"200": {"description": "links",
                                            "content": {"application/json": {
                                                "schema": {"type": "object"}}}}}}},
        "/openapi.json": {"get": {"operationId": "openapiDocument",
                                  "summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI document"}}}},
        "/echo": {"post": {
            "operationId": "echo",
            "summary": "Validate a body and echo it back (for clients checking their JSON)",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/EchoRequest"}}}},
            "responses": {"200": {"description": "the validated body"},
                          "400": {"$ref": "#/components/responses/Error"}}}},
    },
    "components": {
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message", "details"],
                      "properties": {"error": {"type": "string"},
                                     "message": {"type": "string"},
                                     "details": {"type": "array", "items": {}}}},
            "EchoRequest": {"type": "object", "required": ["message"],
                            "additionalProperties": False,
                            "properties": {"message": {"type": "string", "maxLength": 1000},
                                           "count": {"type": "integer", "minimum": 0}}},
        },
        "responses": {"Error": {"description": "error", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}},
    },
}


class ApiError(Exception):
    """An error to report to an API client as JSON with a 4xx status."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details or []}


class _PyramidOpenAPIRequest:
    """What openapi-core needs to know about a Pyramid request."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.parameters = RequestParameters(path=request.matchdict or {}, query=request.GET,
                                            header=request.headers, cookie=request.cookies)

    host_url = property(lambda self: self.request.host_url)
    path = property(lambda self: self.request.path)
    method = property(lambda self: self.request.method.lower())
    body = property(lambda self: self.request.body)
    content_type = property(lambda self: self.request.content_type or "")
    mimetype = content_type

    @property
    def path_pattern(self) -> str:
        route = self.request.matched_route
        return self.request.script_name + (route.pattern if route else self.request.path_info)


def _describe(error: BaseException) -> list[str]:
    """Flatten openapi-core's nested errors into readable lines naming the field."""
    out: list[str] = []
    inner = getattr(error, "__cause__", None)
    schema_errors = getattr(inner, "schema_errors", None) or getattr(error, "schema_errors", None)
    if schema_errors:
        for e in schema_errors:
            where = "/".join(str(p) for p in e.absolute_path) or "(body)"
            out.append(f"{where}: {e.message}")
    else:
        described = inner if inner is not None and inner is not error else error
        try:
            out.append(str(described))
        except UnicodeDecodeError:  # openapi-core quotes the raw body (found by fuzzing)
            out.append("the request body is not UTF-8 text")
    return out


def validate_request(request: Any) -> Any:
    openapi: OpenAPI = request.registry.openapi
    result = openapi.unmarshal_request(_PyramidOpenAPIRequest(request))
    if result.errors:
        details: list[str] = []
        for err in result.errors:
            details.extend(_describe(err))
        raw = (request.body or b"").strip()
        if request.content_type == "application/json" and raw:
            try:
                _ = request.json_body
            except ValueError:
                raise ApiError(400, "invalid_json", "the request body is not valid JSON",
                               details) from None
        raise ApiError(400, "invalid_request",
                       "the request does not match the API description: " + "; ".join(details),
                       details)
    return result


@dataclass(frozen=True)
class OperationCheck:
    """One operation's path and query parameters and its JSON body, compiled."""

    path: tuple[tuple[str, Check], ...]
    #: (name, check, required)
    query: tuple[tuple[str, Check, bool], ...]
    #: None: the operation takes no body
    body: Check | None
    body_required: bool


_PARAMETER_KEYS = {"name", "in", "required", "schema", "description"}


def compile_operation(operation: dict[str, Any], path_item: dict[str, Any],
                      components: dict[str, Any]) -> OperationCheck | None:
    """The compiled checks of one operation; None when any part would need openapi-core
    (a header or cookie parameter, a parameter that is not a plain string, a body that is
    not JSON, a schema keyword :mod:`learningcity.schemacheck` does not know)."""
    declared = {(p.get("in"), p.get("name")): p for p in path_item.get("parameters", [])}
    declared.update({(p.get("in"), p.get("name")): p for p in operation.get("parameters", [])})
    path: list[tuple[str, Check]] = []
    query: list[tuple[str, Check, bool]] = []
    for (where, name), parameter in declared.items():
        schema = parameter.get("schema")
        if set(parameter) - _PARAMETER_KEYS or where not in ("path", "query") or \
                not isinstance(schema, dict) or schema.get("type") != "string":
            return None  # strings only: openapi-core casts other types
        check = compile_schema(schema, components)
        if check is None:
            return None
        if where == "path":
            path.append((name, check))
        else:
            query.append((name, check, bool(parameter.get("required"))))
    body = operation.get("requestBody")
    if body is None:
        return OperationCheck(tuple(path), tuple(query), None, False)
    content = body.get("content", {})
    media = content.get("application/json")
    if set(body) - {"required", "content", "description"} or set(content) != \
            {"application/json"} or not isinstance(media, dict) or set(media) != {"schema"}:
        return None
    check = compile_schema(media["schema"], components)
    if check is None:
        return None
    return OperationCheck(tuple(path), tuple(query), check, bool(body.get("required")))


def compile_operations(spec: dict[str, Any]) -> dict[tuple[str, str], OperationCheck | None]:
    """(HTTP method, route pattern under :data:`API_PREFIX`) -> the operation's checks."""
    out: dict[tuple[str, str], OperationCheck | None] = {}
    components = spec.get("components", {})
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                out[(method.upper(), API_PREFIX + path)] = compile_operation(
                    operation, item, components)
    return out


def checked_request(request: Any) -> tuple[Any, Parameters] | None:
    """The request's body and parameters when the compiled checks accept them, else None
    (openapi-core must decide)."""
    route = request.matched_route
    if route is None or request.script_name:
        return None
    operation = request.registry.get("openapi_checks", {}).get((request.method, route.pattern))
    if operation is None:
        return None
    try:
        path = {name: check(request.matchdict[name]) for name, check in operation.path}
        query: dict[str, Any] = {}
        for name, check, required in operation.query:
            values = request.GET.getall(name)
            if len(values) > 1:
                return None
            if values:
                query[name] = check(values[0])
            elif required:
                return None
        body = None
        if operation.body is not None:
            raw = request.body
            if raw:
                if request.content_type != "application/json":
                    return None
                body = operation.body(json.loads(raw))
            elif operation.body_required:
                return None
    except (Refused, KeyError, ValueError, RecursionError):
        return None
    return body, Parameters(path=path, query=query)


def openapi_view_deriver(view: Any, info: Any) -> Any:
    """``openapi=True`` on a view: validate the request before the view runs."""
    if not info.options.get("openapi"):
        return view

    def wrapper(context: Any, request: Any) -> Any:
        checked = checked_request(request)
        if checked is None:
            result = validate_request(request)
            checked = result.body, result.parameters
        request.openapi_body, request.openapi_parameters = checked
        return view(context, request)

    return wrapper


openapi_view_deriver.options = ("openapi",)


def add_api_spec(config: Any, fragment: dict[str, Any]) -> None:
    """Merge a package's ``paths`` and ``components`` into the API document."""
    spec = config.registry.api_spec
    for path, item in fragment.get("paths", {}).items():
        if path in spec["paths"]:
            raise ValueError(f"API path {path} described twice")
        spec["paths"][path] = item
    for section, entries in fragment.get("components", {}).items():
        spec["components"].setdefault(section, {}).update(entries)
    for tag in fragment.get("tags", []):
        spec.setdefault("tags", []).append(tag)


def _build_openapi(config: Any) -> None:
    config.registry.openapi = OpenAPI.from_dict(config.registry.api_spec)
    config.registry["openapi_checks"] = compile_operations(config.registry.api_spec)


@view_config(route_name="api.root", renderer="json", request_method="GET")
def api_root(request: Any) -> dict[str, Any]:
    return {"name": "learningcity", "version": BASE_SPEC["info"]["version"],
            "openapi": request.route_url("api.openapi")}


@view_config(route_name="api.openapi", renderer="json", request_method="GET")
def openapi_document(request: Any) -> dict[str, Any]:
    return request.registry.api_spec


@view_config(route_name="api.echo", renderer="json", request_method="POST",
             openapi=True, require_csrf=False)
def echo(request: Any) -> dict[str, Any]:
    return {"received": dict(request.openapi_body)}


@exception_view_config(ApiError, renderer="json")
def api_error_view(exc: ApiError, request: Any) -> dict[str, Any]:
    request.response.status_int = exc.status
    return error_body(exc.code, exc.message, exc.details)


@exception_view_config(HTTPException, path_info=r"^/api/", renderer="json")
def api_http_error_view(exc: HTTPException, request: Any) -> dict[str, Any]:
    """404/405/403 and friends under /api/ as JSON, not HTML."""
    request.response.status_int = exc.status_int
    code = exc.title.lower().replace(" ", "_")
    return error_body(code, exc.detail or exc.explanation or exc.title)


def includeme(config: Any) -> None:
    config.registry.api_spec = copy.deepcopy(BASE_SPEC)
    config.add_directive("add_api_spec", add_api_spec)
    config.add_view_deriver(openapi_view_deriver)
    config.add_route("api.root", API_PREFIX + "/")
    config.add_route("api.openapi", API_PREFIX + "/openapi.json")
    config.add_route("api.echo", API_PREFIX + "/echo")
    # Build the validator after every package has added its paths.
    config.action(("learningcity.openapi",), _build_openapi, args=(config,), order=10_000)
    config.scan(".api")
