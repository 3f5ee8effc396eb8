"""Security policy: staff identity from the session cookie, roles and district scoping.

Principals: ``role:<role>`` for every staff member, ``district:<code>`` for
district staff. Resources carry ACLs; a district resource allows its own
district's staff, monitors and admins. Residents are anonymous here: their
test and survey sessions are bound to unguessable tokens, not to accounts.
"""
from __future__ import annotations

from typing import Any

from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import asbool

from .models import StaffUser

SESSION_KEY = "staff_id"


class StaffSecurityPolicy:
    """Pyramid 2 security policy: identity = the logged-in StaffUser, ACL permits."""

    def __init__(self) -> None:
        self.acl = ACLHelper()

    def identity(self, request: Any) -> StaffUser | None:
        staff_id = request.session.get(SESSION_KEY)
        if staff_id is None:
            return None
        user = request.dbsession.get(StaffUser, staff_id)
        if user is None or not user.active:
            return None
        return user

    def authenticated_userid(self, request: Any) -> int | None:
        user = request.identity
        return user.id if user is not None else None

    def principals(self, request: Any) -> list[str]:
        user = request.identity
        principals = [Everyone]
        if user is not None:
            principals += [Authenticated, f"user:{user.id}", f"role:{user.role}"]
            if user.district_code:
                principals.append(f"district:{user.district_code}")
        return principals

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        return self.acl.permits(context, self.principals(request), permission)

    def remember(self, request: Any, userid: int, **kw: Any) -> list:
        request.session.invalidate()  # a new session on login: no session fixation
        request.session[SESSION_KEY] = userid
        request.session.new_csrf_token()
        return []

    def forget(self, request: Any, **kw: Any) -> list:
        request.session.invalidate()
        return []


class StaffArea:
    """Root of the staff pages: any logged-in staff member may look."""

    __acl__ = [
        (Allow, "role:admin", ("staff", "admin")),
        (Allow, Authenticated, "staff"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


def includeme(config: Any) -> None:
    settings = config.registry.settings
    session_factory = SignedCookieSessionFactory(
        settings["learningcity.secret"],
        cookie_name="lc_session",
        httponly=True,
        samesite="Lax",
        secure=asbool(settings.get("learningcity.secure_cookies", False)),
        max_age=None,
        timeout=8 * 3600,
        reissue_time=600,
    )
    config.set_session_factory(session_factory)
    config.set_security_policy(StaffSecurityPolicy())
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    # Every POST/PUT/DELETE needs the token (form field csrf_token or header X-CSRF-Token);
    # JSON API views that authenticate by resident token opt out explicitly.
    config.set_default_csrf_options(require_csrf=True, token="csrf_token",
                                    header="X-CSRF-Token")
    config.add_tween("learningcity.security.security_headers_tween_factory")


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


#: headers every response carries unless its view set them itself
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def security_headers_tween_factory(handler: Any, registry: Any) -> Any:
    """Add CSP (no inline script), frame denial, no-sniff and friends to every response."""
    hsts = asbool(registry.settings.get("learningcity.secure_cookies", False))
    wanted = SECURITY_HEADERS + ((HSTS,) if hsts else ())

    def tween(request: Any) -> Any:
        response = handler(request)
        # one pass over the header list (setdefault on webob's headers scans it per name)
        headerlist = response.headerlist
        present = {name.lower() for name, _value in headerlist}
        headerlist.extend(header for header in wanted if header[0].lower() not in present)
        return response

    return tween
