"""The reporting scale: theta -> score (default mean 500, SD 100) and proficiency levels.

score = mean + sd * (A * theta + B), where (A, B) links the calibration's theta
metric onto the reporting metric (identity for the base calibration). Levels
are stored with each calibration; these are the defaults.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def default_levels() -> list[dict[str, Any]]:
    """Five proficiency levels with plain-language can-do descriptions in both languages."""
    return [
        {"code": "L1", "min": None, "label_zh": "一级：起步", "label_en": "Level 1: Starting",
         "cando_zh": "能在别人帮助下完成简单的日常任务，例如认出常见的手机图标、读懂很短的通知。",
         "cando_en": "Can do simple everyday tasks with help, such as recognising common phone "
                     "icons or reading a very short notice."},
        {"code": "L2", "min": 375.0, "label_zh": "二级：基础", "label_en": "Level 2: Basic",
         "cando_zh": "能独立完成熟悉的任务，例如用手机付款、看懂公交时刻表、算出简单的折扣。",
         "cando_en": "Can do familiar tasks alone, such as paying by phone, reading a bus "
                     "timetable or working out a simple discount."},
        {"code": "L3", "min": 450.0, "label_zh": "三级：胜任", "label_en": "Level 3: Capable",
         "cando_zh": "能处理大多数日常学习和生活任务，"
                     "例如网上预约挂号、辨别常见诈骗、读懂药品说明书。",
         "cando_en": "Can handle most everyday tasks, such as booking a hospital appointment "
                     "online, spotting common scams or reading a medicine leaflet."},
        {"code": "L4", "min": 550.0, "label_zh": "四级：熟练", "label_en": "Level 4: Proficient",
         "cando_zh": "能比较信息来源、判断谣言、比较贷款或分期方案，并能主动安排自己的学习。",
         "cando_en": "Can compare sources, judge rumours, compare loan or instalment offers, "
                     "and plan their own learning."},
        {"code": "L5", "min": 625.0, "label_zh": "五级：精通", "label_en": "Level 5: Advanced",
         "cando_zh": "能解决陌生而复杂的问题，并能帮助家人和邻居学习新技能。",
         "cando_en": "Can solve unfamiliar, complex problems and help family and neighbours "
                     "learn new skills."},
    ]


def to_scale(theta: np.ndarray | float, mean: float = 500.0, sd: float = 100.0,
             link_a: float = 1.0, link_b: float = 0.0) -> np.ndarray | float:
    """Reporting-scale score of theta (also used for standard errors with mean=0)."""
    return mean + sd * (link_a * np.asarray(theta) + link_b)


def se_to_scale(se: np.ndarray | float, sd: float = 100.0, link_a: float = 1.0
                ) -> np.ndarray | float:
    return sd * abs(link_a) * np.asarray(se)


def level_for(score: float, levels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The highest level whose minimum the score reaches (the first level has no minimum)."""
    chosen = levels[0]
    for level in levels:
        if level["min"] is None or score >= level["min"]:
            chosen = level
    return chosen


def check_levels(levels: Sequence[dict[str, Any]]) -> None:
    """Levels must start open-ended and rise strictly, each with texts in both languages."""
    if not levels or levels[0].get("min") is not None:
        raise ValueError("the first level must have no minimum")
    previous = -np.inf
    for level in levels[1:]:
        if level.get("min") is None or level["min"] <= previous:
            raise ValueError(f"level {level.get('code')}: minimums must rise")
        previous = level["min"]
    for level in levels:
        for key in ("code", "label_zh", "label_en", "cando_zh", "cando_en"):
            if not level.get(key):
                raise ValueError(f"level {level.get('code')}: {key} is missing")
