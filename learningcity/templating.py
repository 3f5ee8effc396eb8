"""Chameleon templates are compiled one at a time.

CPython 3.11 can fail with "SystemError: AST constructor recursion depth mismatch" when
two threads call ``compile()`` at once (CPython gh-106905); waitress and gunicorn threads
render a template for the first time concurrently, so compiling is serialised here.
"""
from __future__ import annotations

import threading
from typing import Any

from chameleon.template import BaseTemplate

_LOCK = threading.RLock()  # re-entrant: compiling a page may load its macro templates
_cook = BaseTemplate.cook


def _serial_cook(self: BaseTemplate, body: str) -> None:
    with _LOCK:
        _cook(self, body)


def includeme(config: Any) -> None:
    if BaseTemplate.cook is not _serial_cook:
        BaseTemplate.cook = _serial_cook  # type: ignore[method-assign]
