"""Tests for scoring.report: self-contained, accessible HTML with embedded pictures."""
from __future__ import annotations

import base64
import re

import matplotlib
import numpy as np
import pytest

from scoring import models, report
from scoring.calibration import IterationRecord
from scoring.params import ItemParams
from scoring.report import build_report, history_values

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def mixed_bank() -> ItemParams:
    return ItemParams.from_arrays(
        item_ids=["d2", "<b>x</b>", "grm", "gpcm"],
        model=["2pl", "3pl", "grm", "gpcm"],
        a=[1.3, 1.7, 1.1, 0.8],
        b=[[0.3], [-0.5], [-1.0, 0.2, 1.5], [0.5, -0.7]],
        c=[0, 0.2, 0, 0],
        se_a=[0.1, 0.2, 0.15, np.nan],
        se_b=[[0.05], [0.1], [0.2, 0.1, 0.3], [0.2, 0.25]],
        se_c=[np.nan, 0.04, np.nan, np.nan],
    )


def images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in
            re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


@pytest.fixture(scope="module")
def html() -> str:
    """One report, built once (drawing is the slow part)."""
    backend = matplotlib.get_backend()
    text = build_report(mixed_bank(), summary={"Model": "mixed"},
                        fit={"infit": np.array([1.0, 1.6, 0.9, 1.1]),
                             "sx2_p": np.array([0.5, 0.2, 0.001, 0.3])},
                        history=[-500.0, -450.0, -449.0], lang="en")
    assert matplotlib.get_backend() == backend  # no global backend switch
    return text


def test_report_is_self_contained_and_accessible(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in html and '<meta charset="utf-8">' in html
    pictures = images(html)
    assert len(pictures) == 4  # ICCs, item information, test information/SE, history
    assert all(p.startswith(PNG_SIGNATURE) for p in pictures)
    # nothing is fetched from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "url(" not in html and "<script" not in html and "<link" not in html
    # every image has a descriptive alt text; tables have captions and header scopes
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', html)
    assert len(alts) == 4 and all(len(a) > 30 for a in alts)
    assert html.count("<caption>") >= 3
    assert '<th scope="col">SE(a)</th>' in html and '<th scope="row">grm</th>' in html


def test_report_escapes_text_and_flags_misfit_in_words(html: str) -> None:
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "misfit: infit" in html     # item 2: infit 1.6
    assert "misfit: S-X2" in html      # item 3: p = 0.001
    assert "2 of 4 items flagged" in html
    # estimates: thresholds of polytomous items with their SEs, dash where not applicable
    assert "<td>1.500</td><td>0.300</td>" in html
    assert "Model</dt><dd>mixed</dd>" in html


def test_large_bank_is_split_over_several_figures(monkeypatch) -> None:
    monkeypatch.setattr(report, "ITEMS_PER_FIGURE", 4)  # small figures keep the test fast
    n = 7
    bank = ItemParams.from_arrays(item_ids=[f"I{j}" for j in range(n)], model="2pl",
                                  a=np.ones(n), b=np.linspace(-2, 2, n))
    html = build_report(bank, lang="en")
    assert len(images(html)) == 5  # two ICC, two item-information figures + test information
    assert "Item fit was not computed." in html
    assert "No iteration history was recorded." in html


def test_history_values_accepts_records_dicts_and_numbers() -> None:
    records = [IterationRecord(iteration=1, loglik=-10.0, max_change=1.0),
               IterationRecord(iteration=2, loglik=-9.5, max_change=0.1)]
    np.testing.assert_array_equal(history_values(records), [-10.0, -9.5])
    np.testing.assert_array_equal(history_values([{"loglik": -3.0}, -2.0]), [-3.0, -2.0])
    assert history_values(None).size == 0


def test_chinese_is_the_default_and_english_the_second_language() -> None:
    bank = mixed_bank()
    zh = build_report(bank, summary={"Model": "mixed", "Converged": True})
    en = build_report(bank, summary={"Model": "mixed", "Converged": True}, lang="en")
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    assert '<h2 id="s-est">题目参数估计</h2>' in zh and "Item estimates" not in zh
    assert "<dt>模型</dt><dd>mixed</dd>" in zh and "<dt>是否收敛</dt><dd>是</dd>" in zh
    assert '<h2 id="s-est">Item estimates</h2>' in en and "题目" not in en
    with pytest.raises(ValueError, match="unknown language"):
        build_report(bank, lang="fr")


def test_model_fit_persons_and_fit_plots_sections() -> None:
    from scoring.fit import empirical_curves

    bank = mixed_bank()
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(400)
    p = models.probabilities(bank, theta)
    y = (rng.random((400, 4))[..., None] > np.cumsum(p, axis=2)).sum(axis=2).astype(float)
    html = build_report(
        bank, lang="en",
        model_fit={"m2": 12.5, "df": 9, "p": 0.187, "rmsea": 0.0312,
                   "rmsea_ci": (0.0, 0.07), "srmsr": 0.041, "cfi": 0.991, "tli": 0.985},
        curves=empirical_curves(bank, y),
        persons={"theta": theta, "nodes": np.linspace(-6, 6, 13), "mean": 0.0, "sd": 1.0,
                 "posterior_sd": 0.4})
    assert '<th scope="row">M2</th><td>12.50</td>' in html
    assert "<td>0.0000 – 0.0700</td>" in html and "<td>0.9910</td>" in html
    assert "Observed and expected scores by ability group" in html
    assert "Grid spacing 1.000; median posterior SD of the persons 0.400." in html
    assert "The grid is coarser than the persons&#x27; posteriors" in html
    assert len(images(html)) == 5  # ICCs, fit plots, item and test information, persons
    fine = build_report(bank, lang="en", persons={"theta": theta,
                                                  "nodes": np.linspace(-6, 6, 121),
                                                  "posterior_sd": 0.4})
    assert "The grid is coarser" not in fine
    assert "was not computed: it needs complete responses" in fine
