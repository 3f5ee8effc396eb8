"""Security policy: staff identity from the session cookie, roles and district scoping.

Principals: ``role:<role>`` for every staff member, ``district:<code>`` for
district staff, ``department:<code>`` for department staff. Resources carry ACLs; a
district resource allows its own district's staff, monitors and admins. Residents are
anonymous here: their test and survey sessions are bound to unguessable tokens, not to
accounts.
"""
from __future__ import annotations

from typing import Any

from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import asbool

from . import accounts
from .models import StaffUser

#: the session cookie holds the id of a row of ``staff_login``, never the user's id, so a
#: login can be revoked on the server (logout, password or role change, disabled account)
SESSION_KEY = "staff_login"
#: the identity of this request, looked up once (request.identity is not cached by Pyramid);
#: kept on the request object, not the environ, which pyramid_retry reuses for a retried
#: request whose database session (and so this user object) is gone
_IDENTITY = "_learningcity_identity"
_NOT_LOOKED_UP = object()


class StaffSecurityPolicy:
    """Pyramid 2 security policy: identity = the StaffUser of a live login, ACL permits."""

    def __init__(self) -> None:
        self.acl = ACLHelper()

    def identity(self, request: Any) -> StaffUser | None:
        """The active user whose live (unrevoked) login the session cookie names, else None."""
        cached = request.__dict__.get(_IDENTITY, _NOT_LOOKED_UP)
        if cached is not _NOT_LOOKED_UP:
            return cached
        login_id = request.session.get(SESSION_KEY)
        user = (accounts.login_user(request.dbsession, login_id)
                if isinstance(login_id, str) else None)
        request.__dict__[_IDENTITY] = user
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
            if getattr(user, "department_code", None):
                principals.append(f"department:{user.department_code}")
        return principals

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        return self.acl.permits(context, self.principals(request), permission)

    def remember(self, request: Any, userid: int, **kw: Any) -> list:
        """Start a login of ``userid`` in a fresh session (no session fixation)."""
        user = request.dbsession.get(StaffUser, userid)
        login_id = accounts.start_login(request.dbsession, user, request.client_address)
        request.session.invalidate()
        request.session[SESSION_KEY] = login_id
        request.session.new_csrf_token()
        request.__dict__.pop(_IDENTITY, None)
        return []

    def forget(self, request: Any, **kw: Any) -> list:
        """Revoke this session's login on the server, then drop the session."""
        login_id = request.session.get(SESSION_KEY)
        if isinstance(login_id, str):
            accounts.end_login(request.dbsession, login_id, request.client_address)
        request.session.invalidate()
        request.__dict__[_IDENTITY] = None
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
