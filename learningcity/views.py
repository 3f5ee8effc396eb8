"""Shell pages: home, health check, staff login/logout, staff home, district page, errors."""
from __future__ import annotations

import functools
import logging
from typing import Any

import sqlalchemy as sa
from pyramid.csrf import get_csrf_token
from pyramid.events import BeforeRender
from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response
from pyramid.security import forget, remember
from pyramid.view import (
    exception_view_config,
    forbidden_view_config,
    notfound_view_config,
    view_config,
)

from . import display, i18n, labels
from .accounts import authenticate
from .api import API_PREFIX, error_body
from .i18n import _
from .models import District
from .redirects import is_local, see_other
from .resources import DistrictResource, district_factory, staff_factory
from .throttle import Throttled

log = logging.getLogger(__name__)


class LazyCSRFToken:
    """The CSRF token, created only when a page really renders a form (no cookie otherwise)."""

    def __init__(self, request: Any) -> None:
        self.request = request

    def __str__(self) -> str:
        return get_csrf_token(self.request)

    __html__ = __str__


def add_layout_globals(event: BeforeRender) -> None:
    """Values every page's layout needs: language links, identity, CSRF token."""
    request = event.get("request")
    if request is None or not str(event.get("renderer_name", "")).endswith(".pt"):
        return
    event["lang_links"] = i18n.language_links(request)
    size = display.text_size(request)
    event["size_links"] = display.size_links(request, current=size)
    event["text_size"] = size
    event["html_lang"] = i18n.html_lang(request)
    # with the database unavailable, the page saying so must not look the staff member up
    event["identity"] = None if isinstance(getattr(request, "exception", None),
                                           DATABASE_UNAVAILABLE) else request.identity
    event["csrf_token"] = LazyCSRFToken(request)
    event["_"] = request.translate
    event["code_label"] = functools.partial(labels.code_label, request.translate)


@view_config(route_name="home", renderer="learningcity:templates/home.pt")
def home(request: Any) -> dict[str, Any]:
    links = sorted(request.registry.get("home_links", []), key=lambda link: link["order"])
    return {"links": links}


@view_config(route_name="healthz", renderer="json")
def healthz(request: Any) -> dict[str, Any]:
    """200 when both databases answer, 503 otherwise (for load balancers and monitoring)."""
    status: dict[str, Any] = {}
    healthy = True
    for name, engine in (("database", request.registry.engine),
                         ("monitoring", request.registry.monitoring_engine)):
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            status[name] = "ok"
        except Exception as exc:  # any failure means unhealthy, and we say which
            healthy = False
            status[name] = f"error: {exc.__class__.__name__}"
    status["status"] = "ok" if healthy else "unhealthy"
    if not healthy:
        request.response.status_int = 503
    request.response.cache_control = "no-store"
    return status


@view_config(route_name="login", renderer="learningcity:templates/login.pt",
             request_method="GET")
def login_form(request: Any) -> dict[str, Any]:
    return {"error": None, "username": "", "next": request.GET.get("next", "")}


def wait_message(seconds: int) -> Any:
    """"Try again in N seconds/minutes", in the page's language."""
    if seconds < 120:
        return _("Too many login attempts. Please wait ${seconds} seconds and try again.",
                 mapping={"seconds": seconds})
    return _("Too many login attempts. Please wait ${minutes} minutes and try again.",
             mapping={"minutes": -(-seconds // 60)})


@view_config(route_name="login", renderer="learningcity:templates/login.pt",
             request_method="POST")
def login_submit(request: Any) -> Any:
    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    next_url = request.POST.get("next", "")
    try:
        user = authenticate(request.dbsession, username, password, request.client_address,
                            policies=request.registry.throttle_policies)
    except Throttled as exc:
        request.response.status_int = 429
        request.response.headers["Retry-After"] = str(exc.retry_after)
        return {"error": wait_message(exc.retry_after), "username": username,
                "next": next_url}
    if user is None:
        request.response.status_int = 401
        return {"error": _("Wrong username or password."), "username": username,
                "next": next_url}
    headers = remember(request, user.id)
    # Only local paths: never redirect a staff member to another site after login.
    target = next_url if is_local(next_url) else request.route_url("staff")
    return see_other(request, target, headers=headers)


@view_config(route_name="logout", request_method="POST")
def logout(request: Any) -> Any:
    return see_other(request, request.route_url("home"), headers=forget(request))


@view_config(route_name="staff", renderer="learningcity:templates/staff.pt",
             permission="staff")
def staff_home(request: Any) -> dict[str, Any]:
    user = request.identity
    query = sa.select(District).order_by(District.code)
    if user.role == "district":
        query = query.where(District.code == user.district_code)
    links = sorted(request.registry.get("staff_links", []), key=lambda link: link["order"])
    districts = request.dbsession.scalars(query).all()
    # a district's page is linked only for those who may open it (researchers may not)
    openable = {d.code for d in districts
                if request.has_permission("view", DistrictResource(d))}
    return {"districts": districts, "openable": openable, "staff_links": links}


@view_config(route_name="district", context=DistrictResource,
             renderer="learningcity:templates/district.pt", permission="view")
def district_page(context: DistrictResource, request: Any) -> dict[str, Any]:
    return {"district": context.district}


def _api_error(request: Any, status: int, code: str, message: str) -> Response | None:
    """API clients get JSON errors, people get pages."""
    if request.path.startswith(API_PREFIX + "/"):
        return Response(json_body=error_body(code, message), status=status)
    return None


@notfound_view_config(renderer="learningcity:templates/error.pt")
def not_found(request: Any) -> Any:
    api = _api_error(request, 404, "not_found", f"no API endpoint at {request.path}")
    if api is not None:
        return api
    request.response.status_int = 404
    return {"title": _("Page not found"),
            "message": _("The page you asked for does not exist. Check the link or start "
                         "again from the home page.")}


@forbidden_view_config(renderer="learningcity:templates/error.pt")
def forbidden(request: Any) -> Any:
    api = _api_error(request, 403, "forbidden", "not allowed")
    if api is not None:
        return api
    if request.identity is None and request.method == "GET":
        return HTTPFound(request.route_url("login", _query={"next": request.path_qs}))
    request.response.status_int = 403
    return {"title": _("Not allowed"),
            "message": _("Your account is not allowed to see this page.")}


#: errors meaning the database cannot be reached or has no connection to spare now (a
#: pool wait beyond ``sqlalchemy.pool_timeout``, a refused or lost connection once the
#: retries are spent, a statement cancelled by the timeout): 503, try again shortly
DATABASE_UNAVAILABLE = (sa.exc.TimeoutError, sa.exc.OperationalError, sa.exc.InterfaceError)
#: seconds a client is asked to wait before trying again
UNAVAILABLE_RETRY_AFTER = 5


@exception_view_config(sa.exc.TimeoutError, renderer="learningcity:templates/error.pt")
@exception_view_config(sa.exc.OperationalError, renderer="learningcity:templates/error.pt")
@exception_view_config(sa.exc.InterfaceError, renderer="learningcity:templates/error.pt")
def database_unavailable(exc: Exception, request: Any) -> Any:
    """503 with Retry-After: JSON under the API, a page for people; nothing was saved."""
    log.warning("database unavailable on %s: %s", request.path, exc.__class__.__name__)
    retry = str(UNAVAILABLE_RETRY_AFTER)
    api = _api_error(request, 503, "unavailable",
                     "the service is busy or its database cannot be reached; nothing was "
                     f"saved, try again in {retry} seconds")
    if api is not None:
        api.headers["Retry-After"] = retry
        api.cache_control = "no-store"
        return api
    request.response.status_int = 503
    request.response.headers["Retry-After"] = retry
    request.response.cache_control = "no-store"
    return {"title": _("Busy just now"),
            "message": _("The service cannot be reached for a moment, so nothing you sent "
                         "was saved. Please wait a few seconds and try again; your answers "
                         "so far are kept.")}


def includeme(config: Any) -> None:
    config.add_subscriber(add_layout_globals, BeforeRender)
    config.add_route("home", "/")
    config.add_route("healthz", "/healthz")
    config.add_route("login", "/login")
    config.add_route("logout", "/logout")
    config.add_route("staff", "/staff/", factory=staff_factory)
    config.add_route("district", "/staff/districts/{code}", factory=district_factory)
    config.scan(".views")
