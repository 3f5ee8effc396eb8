"""Template compilation is serialised (a CPython 3.11 compile() race in threads)."""
from __future__ import annotations

import threading
import time
from typing import Any

from chameleon.template import BaseTemplate
from chameleon.zpt.template import PageTemplate


def test_templates_compile_one_at_a_time(wsgi_app: Any, monkeypatch: Any) -> None:
    """With the app loaded, two threads never run the compiler at the same moment."""
    from learningcity import templating

    assert BaseTemplate.cook is templating._serial_cook
    inside, overlaps = [0], []

    def slow_cook(self: Any, body: str) -> None:
        inside[0] += 1
        overlaps.append(inside[0])
        time.sleep(0.02)
        inside[0] -= 1
        self._cooked = True  # what the real compiler leaves behind (cook_check asserts it)

    monkeypatch.setattr(templating, "_cook", slow_cook)
    failures: list[BaseException] = []

    def render(i: int) -> None:
        try:
            PageTemplate(f"<p>{i}</p>").cook_check()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=render, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(overlaps) == 8 and max(overlaps) == 1
