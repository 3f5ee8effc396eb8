"""Text size for older adults: ``?size=large`` on any page, remembered in a cookie."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pyramid.events import NewResponse

from .redirects import self_path

COOKIE = "lc_size"
SIZES = ("normal", "large")


def text_size(request: Any) -> str:
    chosen = request.GET.get("size")
    if chosen in SIZES:
        return chosen
    return request.cookies.get(COOKIE) if request.cookies.get(COOKIE) in SIZES else "normal"


def size_links(request: Any, current: str | None = None) -> list[dict[str, Any]]:
    """Links to the current page in each text size; ``current``: :func:`text_size`, when
    the caller has it already."""
    current = current or text_size(request)
    kept = [(k, v) for k, v in request.GET.items() if k != "size"]
    links = []
    for size, label in (("normal", "A"), ("large", "A+")):
        links.append({"size": size, "label": label,
                      "url": self_path(request) + "?" + urlencode(kept + [("size", size)]),
                      "current": current == size})
    return links


def remember_size(event: NewResponse) -> None:
    chosen = event.request.GET.get("size")
    if chosen in SIZES and event.request.cookies.get(COOKIE) != chosen:
        event.response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600, httponly=True,
                                  samesite="Lax")


def includeme(config: Any) -> None:
    config.add_subscriber(remember_size, NewResponse)
