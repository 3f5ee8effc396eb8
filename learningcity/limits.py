"""Hard limits on request bodies: refuse oversized posts with 413 before reading them.

Every request body is limited to ``learningcity.max_body_bytes`` (default 64 KB: a
form page or a JSON answer is a few hundred bytes). Staff file uploads (item bank,
survey and campaign frame imports) may reach ``learningcity.max_upload_bytes``
(default 10 MB) on the routes named in the registry set ``upload_routes`` (packages
add their upload route names in ``includeme``) or in the setting
``learningcity.upload_routes`` (names separated by spaces). A route whose files have a
smaller cap of their own (an evidence file of at most 5 MB) sets its body limit in the
registry dict ``upload_limits`` (route name -> bytes, at least the general limit), so a
too-large file is refused before it is read rather than after.

A declared ``Content-Length`` above the limit is refused without reading a byte; a
chunked body is read at most up to the limit plus one byte, then either refused or
handed on as an ordinary body. API clients get the usual JSON error
``{"error": "too_large", ...}``; people get an HTML page.

The check runs in the execution policy, before pyramid_retry copies the body to make
it replayable (it would otherwise read a huge body first); the limits tween then
raises :class:`RequestTooLarge` so the exception views render the refusal.

The same tween parses form bodies before any view (webob keeps the result) and
refuses one that cannot be read (``multipart/form-data`` without a boundary, a broken
part, text that is not UTF-8) with 400 instead of a server error in the view.

It also refuses text with NUL characters (``%00`` in the address or a form,
``\\u0000`` in JSON) with 400: no field here has a use for them and PostgreSQL cannot
store them, so they would otherwise surface as a server error wherever such text
reaches a query. Uploaded files are left alone; their importers refuse NULs by row.
"""
from __future__ import annotations

import io
import tempfile
from typing import Any

from pyramid.interfaces import IExecutionPolicy, IRoutesMapper
from pyramid.response import Response
from pyramid.router import default_execution_policy
from pyramid.tweens import EXCVIEW
from pyramid.view import exception_view_config

from .api import API_PREFIX, error_body
from .i18n import _

DEFAULT_MAX_BODY = 64 * 1024
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
#: upload routes known when this module was written (survey import, population margins,
#: the campaign tabs where the sampling frame is uploaded); packages may add theirs to
#: the registry set ``upload_routes``
DEFAULT_UPLOAD_ROUTES = frozenset({"surveys.staff_list", "monitoring.margins",
                                   "campaigns.tab"})
_READ_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY = 1024 * 1024


class NulInText(Exception):
    """A path, query, form field or JSON string holds a NUL character."""

    def __init__(self, where: str) -> None:
        super().__init__(f"NUL character in {where}")
        self.where = where


def _nul_in(request: Any) -> str | None:
    """Where the request carries a NUL character in text, or None."""
    if "\x00" in request.path_info:
        return "the address"
    if "%00" in request.query_string or "\x00" in request.query_string:
        return "the query string"
    if request.method in ("GET", "HEAD") or not request.content_length:
        return None
    kind = request.content_type
    if kind == "application/x-www-form-urlencoded":
        body = request.body.lower()
        return "the form" if b"%00" in body or b"\x00" in body else None
    if kind == "application/json" or kind.endswith("+json"):
        body = request.body.lower()
        return "the JSON body" if b"\\u0000" in body or b"\x00" in body else None
    if kind == "multipart/form-data":
        for name, value in request.POST.items():
            if isinstance(value, str) and "\x00" in value:
                return f"the form field {name[:40]!r}"
    return None


class MalformedBody(Exception):
    """A form body that cannot be parsed (``multipart/form-data`` without a boundary, a
    broken part, text that is not UTF-8)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"the form cannot be read: {problem}")
        self.problem = problem


#: the body types read as a form (``request.POST``)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _check_form(request: Any) -> None:
    """Parse a form body now (webob keeps the result for the view) and raise
    :class:`MalformedBody` when it cannot be read, instead of a 500 in the view."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.content_type not in FORM_TYPES:
        return
    try:
        for _name, value in request.POST.items():
            # bytes: a file field left empty (filename="", no content), which webob
            # hands on as b""; the view says a file is needed where one is
            if not isinstance(value, (str, bytes)) and getattr(value, "file", None) is None:
                raise ValueError("a part of the form has no content")
    except MalformedBody:
        raise
    except (ValueError, UnicodeDecodeError, LookupError, TypeError, KeyError,
            IndexError) as exc:
        raise MalformedBody(str(exc)[:200] or exc.__class__.__name__) from None


class RequestTooLarge(Exception):
    """The request body is larger than the limit for its route."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit, self.declared = limit, declared


def _int_setting(settings: dict[str, Any], key: str, default: int) -> int:
    raw = settings.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {key} must be a whole number of bytes, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"setting {key} must be positive")
    return value


def _route_name(request: Any) -> str | None:
    """The name of the route this request will match (routing happens later)."""
    mapper = request.registry.queryUtility(IRoutesMapper)
    if mapper is None:
        return None
    info = mapper(request)
    route = info.get("route") if info else None
    return route.name if route is not None else None


#: what a form adds around its one file (multipart headers, the other fields): a route's
#: own limit is its largest file plus this
FORM_OVERHEAD = DEFAULT_MAX_BODY


def route_limit(config: Any, route: str, file_bytes: int) -> None:
    """Limit ``route``'s body to one file of ``file_bytes`` and the form around it (it is
    an upload route with a smaller limit than ``learningcity.max_upload_bytes``)."""
    config.registry.setdefault("upload_routes", set()).add(route)
    config.registry.setdefault("upload_limits", {})[route] = file_bytes + FORM_OVERHEAD


def limit_for(request: Any, max_body: int, max_upload: int) -> int:
    """The body limit for this request: the route's own limit, the upload limit on
    upload routes, else the general one."""
    name = _route_name(request)
    if name is None:
        return max_body
    own = request.registry.get("upload_limits", {}).get(name)
    if own is not None:
        return max(own, max_body)
    return max_upload if name in request.registry.get("upload_routes", ()) else max_body


def _bounded_read(environ: dict[str, Any], limit: int) -> None:
    """Read a body of unknown length up to ``limit``; replace it by a plain seekable body."""
    source = environ["wsgi.input"]
    sink: Any = io.BytesIO() if limit <= _SPOOL_IN_MEMORY else \
        tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    total = 0
    while True:
        chunk = source.read(min(_READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RequestTooLarge(limit)
        sink.write(chunk)
    sink.seek(0)
    environ["wsgi.input"] = sink
    environ["CONTENT_LENGTH"] = str(total)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = False


MARK = "learningcity.too_large"  # environ key: the limit a refused request exceeded


def check_body(environ: dict[str, Any], request: Any, max_body: int, max_upload: int) -> None:
    """Refuse an oversized body unread (or after a bounded read when its length is unknown).

    A refused request gets an empty body and ``environ[MARK]``, for the tween to raise.
    """
    declared = environ.get("CONTENT_LENGTH")
    try:
        if declared not in (None, ""):
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                raise RequestTooLarge(max_body)  # nonsense length: refuse, read nothing
            if length > max_body:
                limit = limit_for(request, max_body, max_upload)
                if length > limit:
                    raise RequestTooLarge(limit, length)
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or \
                environ.get("wsgi.input_terminated"):
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD", "OPTIONS"):
                _bounded_read(environ, limit_for(request, max_body, max_upload))
    except RequestTooLarge as exc:
        environ[MARK] = exc.limit
        environ["wsgi.input"] = io.BytesIO()
        environ["CONTENT_LENGTH"] = "0"
        environ.pop("HTTP_TRANSFER_ENCODING", None)


def _declared_within(environ: dict[str, Any], max_body: int) -> bool:
    """A declared length within the general limit (nearly every request): nothing to check,
    and no request object to build for it."""
    declared = environ.get("CONTENT_LENGTH")
    return bool(declared) and declared.isascii() and declared.isdigit() and \
        int(declared) <= max_body


def limited_policy(inner: Any, registry: Any) -> Any:
    """Wrap the execution policy (pyramid_retry's) so bodies are checked before it runs."""
    settings = registry.settings
    max_body = _int_setting(settings, "learningcity.max_body_bytes", DEFAULT_MAX_BODY)
    max_upload = _int_setting(settings, "learningcity.max_upload_bytes", DEFAULT_MAX_UPLOAD)

    def policy(environ: dict[str, Any], router: Any) -> Any:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD") and \
                not _declared_within(environ, max_body):
            request = router.request_factory(environ)
            request.registry = registry
            check_body(environ, request, max_body, max_upload)
        return inner(environ, router)

    return policy


def limits_tween_factory(handler: Any, registry: Any) -> Any:
    """A tween below the exception view: turns the policy's mark into a rendered 413."""

    def limits_tween(request: Any) -> Any:
        limit = request.environ.get(MARK)
        if limit is not None:
            raise RequestTooLarge(limit)
        _check_form(request)
        where = _nul_in(request)
        if where is not None:
            raise NulInText(where)
        return handler(request)

    return limits_tween


@exception_view_config(RequestTooLarge, renderer="learningcity:templates/error.pt")
def too_large_view(exc: RequestTooLarge, request: Any) -> Any:
    """413: JSON under the API, a page for people; the connection is closed after it."""
    request.response.status_int = 413
    request.response.headers["Connection"] = "close"
    if request.path.startswith(API_PREFIX + "/"):
        body = error_body("too_large", f"the request body is larger than the limit of "
                                       f"{exc.limit} bytes", [{"limit": exc.limit}])
        response = Response(json_body=body, status=413)
        response.headers["Connection"] = "close"
        return response
    if exc.limit >= 1024 * 1024:
        message = _("What you sent is larger than this page accepts (${mb} MB). Send a "
                    "smaller file, or split it into several.",
                    mapping={"mb": f"{exc.limit / (1024 * 1024):.0f}"})
    else:
        message = _("What you sent is larger than this page accepts. Send a smaller "
                    "file, or split it into several.")
    return {"title": _("The file or form is too large"), "message": message}


@exception_view_config(NulInText, renderer="learningcity:templates/error.pt")
def nul_view(exc: NulInText, request: Any) -> Any:
    """400: JSON under the API, a page for people."""
    request.response.status_int = 400
    if request.path.startswith(API_PREFIX + "/"):
        body = error_body("bad_text", f"text may not contain NUL characters ({exc.where})",
                          [{"where": exc.where}])
        return Response(json_body=body, status=400)
    return {"title": _("Something in what you sent cannot be read"),
            "message": _("The address or the form holds a character that is not text. "
                         "Go back and type it again.")}


@exception_view_config(MalformedBody, renderer="learningcity:templates/error.pt")
def malformed_view(exc: MalformedBody, request: Any) -> Any:
    """400: JSON under the API, a page for people."""
    request.response.status_int = 400
    if request.path.startswith(API_PREFIX + "/"):
        body = error_body("bad_body", str(exc), [{"problem": exc.problem}])
        return Response(json_body=body, status=400)
    return {"title": _("What you sent cannot be read"),
            "message": _("The form arrived damaged or incomplete. Go back, reload the page "
                         "and send it again.")}


def includeme(config: Any) -> None:
    """Register the body check (around the execution policy), its tween, the upload routes."""
    uploads = config.registry.setdefault("upload_routes", set())
    uploads.update(DEFAULT_UPLOAD_ROUTES)
    uploads.update(config.registry.settings.get("learningcity.upload_routes", "").split())
    registry = config.registry

    def wrap_policy() -> None:  # runs after pyramid_retry registered its policy
        inner = registry.queryUtility(IExecutionPolicy, default=default_execution_policy)
        registry.registerUtility(limited_policy(inner, registry), IExecutionPolicy)

    config.action(("learningcity.limits", "execution_policy"), wrap_policy, order=100)
    config.add_tween("learningcity.limits.limits_tween_factory", under=EXCVIEW)
    config.scan(".limits")
