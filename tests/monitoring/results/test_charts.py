"""Every chart type draws Chinese (issue 15 item 1), even when matplotlib's font cache was
built before the CJK font was installed; value axes read honestly (shares 0-100 %, ability
on the reporting scale).

The glyph test runs in subprocesses with ``MPLCONFIGDIR`` on a temporary folder: the first
builds matplotlib's font cache there and writes it back without any CJK font (what a cache
built before ``apt-get install fonts-wqy-microhei`` holds); the second checks that cache has
no CJK font, that plain matplotlib then really misses the glyphs, and renders every chart
of :mod:`monitoring.results.charts` with Chinese labels to SVG and PNG, failing on any
"Glyph ... missing" warning or log message."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from learningcity import fonts
from monitoring.results import charts

ROOT = Path(__file__).resolve().parents[3]

BUILD_STALE_CACHE = r"""
import json, sys
from pathlib import Path
import matplotlib as mpl
from matplotlib import font_manager as fm
cjk = set(json.loads(sys.argv[1]))
names = {fm.FontProperties(fname=f).get_name() for f in cjk}
fm.fontManager.ttflist = [f for f in fm.fontManager.ttflist
                          if f.fname not in cjk and f.name not in names]
path = Path(mpl.get_cachedir(), f"fontlist-v{fm.FontManager.__version__}.json")
fm.json_dump(fm.fontManager, path)
print(json.dumps({"cache": str(path), "fonts": len(fm.fontManager.ttflist)}))
"""

RENDER_EVERY_CHART = r"""
import datetime as dt, io, json, logging, sys, warnings
from types import SimpleNamespace
cjk = set(json.loads(sys.argv[1]))
missing = []

class Catch(logging.Handler):
    def emit(self, record):
        if "missing from font" in record.getMessage():
            missing.append(record.getMessage())

logging.getLogger("matplotlib").addHandler(Catch())
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager as fm
stale = [f.fname for f in fm.fontManager.ttflist if f.fname in cjk]
# control: without the registration, this cache really lacks the glyphs
with warnings.catch_warnings(record=True) as control:
    warnings.simplefilter("always")
    fig, ax = plt.subplots()
    ax.set_title("老年人经常参加老年教育的比例")
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
control_missing = sum("missing from font" in str(w.message) for w in control)

from monitoring.results import charts
share = {"title": "老年人经常参加老年教育的比例", "share": True, "target": 0.26,
         "target_label": "2025 目标 26 %",
         "items": [("甲区", 0.31, 0.25, 0.37), ("乙区", None, None, None)]}
ability = {"title": "能力均值（报告量尺）", "axis": "ability", "target": None,
           "items": [("青年人", 496.0, 490.0, 502.0), ("老年人", 498.5, 492.0, 505.0)]}
points = [(2023, 0.22, 0.18, 0.26), (2024, 0.27, 0.23, 0.31), (2025, None, None, None)]
day = dt.date(2025, 5, 1)
report = SimpleNamespace(campaign="演示区 2025 年度调查", daily=[(day, 3), (day.replace(day=2), 5)],
                         cumulative=[(day, 3), (day.replace(day=2), 8)])
empty_report = SimpleNamespace(campaign="空调查", daily=[], cumulative=[])
labels = {"per_day": "每日完成数", "cumulative": "累计", "empty": "尚无完成"}
drawn = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for fmt in charts.FORMATS:
        drawn[f"interval_chart.{fmt}"] = charts.interval_chart([share, ability], fmt, "暂无汇总")
        drawn[f"interval_chart.empty.{fmt}"] = charts.interval_chart([], fmt, "暂无汇总")
        drawn[f"trend_chart.{fmt}"] = charts.trend_chart(
            {"甲区": points, "乙区": points[:2]}, "社区居民培训率", True, 0.55, fmt, "暂无汇总",
            target_label="2025 目标 55 %")
        drawn[f"year_trend_chart.{fmt}"] = charts.year_trend_chart(
            [{"title": "甲区", "points": points}, {"title": "乙区", "points": []}],
            [2023, 2024, 2025], "share", 0.26, "2025 目标 26 %", fmt, "无数据")
        drawn[f"year_trend_chart.ability.{fmt}"] = charts.year_trend_chart(
            [{"title": "甲区", "points": [(2023, 496.0, 490.0, 502.0)]}], [2023, 2024, 2025],
            "ability", None, "", fmt, "无数据")
    drawn["daily_chart_png.png"] = charts.daily_chart_png(report, "甲区进度", labels)
    drawn["daily_chart_png.empty.png"] = charts.daily_chart_png(empty_report, "", labels)
missing += [str(w.message) for w in caught if "missing from font" in str(w.message)]
print(json.dumps({"stale_cjk_entries": stale, "control_missing": control_missing,
                  "missing": missing, "family": charts._font()[0],
                  "sizes": {k: len(v) for k, v in drawn.items()},
                  "heads": {k: v[:8].hex() for k, v in drawn.items()}}))
"""

#: every chart function the glyph test renders; a new one must be added there too
CHARTS = {"interval_chart", "trend_chart", "year_trend_chart", "daily_chart_png"}


def _cjk_files() -> list[str]:
    found = {str(p) for p in fonts._fontconfig_files()}
    path = fonts.cjk_font_path()
    if path is not None:
        found.add(str(path))
    return sorted(found)


def _run(script: str, mplconfig: Path, *args: str) -> dict:
    env = {**os.environ, "MPLCONFIGDIR": str(mplconfig), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_chart_function_is_in_the_glyph_test() -> None:
    public = {n for n in dir(charts) if not n.startswith("_") and callable(getattr(charts, n))
              and (n.endswith("_chart") or n.endswith("_chart_png"))}
    assert public == CHARTS


def test_every_chart_draws_chinese_with_a_stale_font_cache(tmp_path: Path) -> None:
    cjk = _cjk_files()
    assert cjk, f"no CJK font installed ({fonts.INSTALL_HINT})"
    built = _run(BUILD_STALE_CACHE, tmp_path, json.dumps(cjk))
    cache = Path(built["cache"])
    assert cache.parent == tmp_path and cache.is_file()
    listed = [f["fname"] for f in json.loads(cache.read_text())["ttflist"]]
    assert listed and not set(listed) & set(cjk)  # the cache knows no CJK font
    result = _run(RENDER_EVERY_CHART, tmp_path, json.dumps(cjk))
    assert result["stale_cjk_entries"] == []  # matplotlib read the stale cache as it was
    assert result["control_missing"] > 0, "the stale cache was not stale: control drew Chinese"
    assert result["missing"] == [], result["missing"][:5]
    assert result["family"] == fonts.register_cjk_font()
    assert len(result["sizes"]) == 5 * len(charts.FORMATS) + 2
    for name, head in result["heads"].items():
        if name.endswith(".png"):
            assert head == "89504e470d0a1a0a", name
        else:
            assert bytes.fromhex(head).startswith(b"<?xml"), name
    # registering the font by path changed nothing on disk: the cache is still stale
    assert not set(f["fname"] for f in json.loads(cache.read_text())["ttflist"]) & set(cjk)


@pytest.mark.parametrize(("axis", "values", "expected"), [
    ("share", [31.0, 25.0, 37.0], (0.0, 100.0)),
    ("share", [], (0.0, 100.0)),
    ("ability", [496.0, 498.5, 497.2], (300.0, 700.0)),
    ("ability", [260.0, 720.0], (250.0, 750.0)),
    ("number", [2.0, 4.0], (0.0, 4.4)),
    ("number", [], None),
])
def test_axes_read_honestly(axis: str, values: list[float], expected: tuple | None) -> None:
    limits = charts.axis_limits(axis, values)
    assert limits == (pytest.approx(expected) if expected else None)
    if axis == "ability" and values:  # never a 3-point span on the reporting scale
        assert limits[1] - limits[0] >= 200 and limits[0] <= min(values) <= max(values) <= limits[1]




def test_ability_trend_uses_the_reporting_scale() -> None:
    """The drawn y axis of an ability trend spans the reporting scale, not the 3 points
    between the estimates (read back from matplotlib's figure, not hard-coded)."""
    import matplotlib.pyplot as plt

    seen: list[tuple[float, float]] = []
    real = plt.Figure.savefig

    def spy(fig, *a, **kw):
        seen.extend(ax.get_ylim() for ax in fig.axes if ax.get_visible() and ax.axison)
        return real(fig, *a, **kw)

    plt.Figure.savefig = spy
    try:
        charts.year_trend_chart([{"title": "甲区", "points": [(2023, 496.0, 495.0, 497.0),
                                                              (2024, 498.5, 497.5, 499.5)]}],
                                [2023, 2024], "ability", fmt="png")
        charts.trend_chart({"甲区": [(2023, 0.2, 0.1, 0.3)]}, "t", True, 0.26, "png")
    finally:
        plt.Figure.savefig = real
    assert seen[0][1] - seen[0][0] >= 200 and seen[0][0] <= 300 and seen[0][1] >= 700
    assert seen[1] == (0.0, 100.0)


def test_bad_axis_and_format_are_refused() -> None:
    with pytest.raises(ValueError, match="chart axis"):
        charts.year_trend_chart([], [2025], "percent")
    with pytest.raises(ValueError, match="chart format"):
        charts.interval_chart([], "gif")


def test_daily_chart_takes_a_progress_report() -> None:
    day = dt.date(2025, 5, 1)
    png = charts.daily_chart_png(SimpleNamespace(campaign="C", daily=[(day, 2)],
                                                 cumulative=[(day, 2)]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
