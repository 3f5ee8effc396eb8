"""Helpers for the browser tests: the app served by waitress on a free loopback port,
and Debian's chromium driven by Playwright (headless, ``--no-sandbox --disable-gpu``).

Screenshots go to the folder ``LC_SCREENSHOTS`` names (``LC_SCREENSHOTS=docs/screenshots``
refreshes the pictures in the docs), else to a temporary folder, so a test run never
changes tracked files.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(os.environ.get("LC_SCREENSHOTS") or tempfile.mkdtemp(prefix="lc-shots-"))


def make_app(folder: Path, *, demo_content: bool = True, **settings: str) -> Any:
    """The app on a fresh SQLite file in ``folder``, migrated on start, with the demo
    content loaded (as ``pserve development.ini`` serves it) unless told otherwise;
    ``settings`` adds .ini settings (e.g. ``{"monitoring.demo_city": "true"}``)."""
    from learningcity import main
    from tests.conftest import app_settings

    return main({}, **app_settings(f"sqlite:///{folder / 'app.sqlite'}", **{
        "learningcity.auto_migrate": "true",
        "learningcity.demo_content": "true" if demo_content else "false", **settings}))


@contextmanager
def serving(app: Any, threads: int = 4) -> Iterator[str]:
    """Serve ``app`` with waitress on a free loopback port; yields the base URL."""
    from waitress import wasyncore
    from waitress.server import create_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = create_server(app, host="127.0.0.1", port=port, threads=threads)
    loop = threading.Thread(target=server.run, daemon=True)
    loop.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # close every socket from inside the server's own loop (closing them from here
        # races its select() into EBADF); the loop ends when nothing is left to watch
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        loop.join(10)
        server.task_dispatcher.shutdown()


def chromium() -> Iterator[Any]:
    """A headless chromium (for a fixture); missing chromium skips, or fails in CI."""
    from playwright import sync_api as playwright  # a test dependency (setup.cfg)

    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def submit(page: Any, selector: str) -> None:
    """Click what sends a form or follows a link, and wait until the next page has
    loaded (reading the page right after a bare click can catch it half-parsed)."""
    with page.expect_navigation(wait_until="load"):
        page.click(selector)


def fits(page: Any, width: int = 360) -> bool:
    """Nothing on the page is wider than the screen (after any navigation finished)."""
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth") <= width


#: axe-core impacts that fail a browser test (issue 15: none on any resident or staff page)
AXE_FAILING = frozenset({"serious", "critical"})


def axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each (rule,
    impact, help, count, first targets); the context needs ``bypass_csp=True``."""
    from axe_playwright_python.sync_playwright import Axe  # a test dependency (setup.cfg)

    found = Axe().run(page).response["violations"]
    return [f"{page.url}: {v['id']} ({v['impact']}): {v['help']} x{len(v['nodes'])} "
            f"{[n['target'] for n in v['nodes'][:3]]}"
            for v in found if v["impact"] in AXE_FAILING]
