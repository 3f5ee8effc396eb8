"""Demo content of the shell: the districts of a sample city (idempotent)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from .models import District

#: code, Chinese name, English name, resident population (sample figures)
DEMO_DISTRICTS = (
    ("D01", "东湖区", "Donghu District", 412_000),
    ("D02", "西山区", "Xishan District", 268_000),
    ("D03", "南岸区", "Nan'an District", 335_000),
    ("D04", "北新区", "Beixin District", 197_000),
    ("D05", "高新技术开发区", "High-tech Development Zone", 154_000),
    ("D06", "青溪县", "Qingxi County", 286_000),
    ("D07", "江北区", "Jiangbei District", 358_000),
    ("D08", "临港新区", "Lingang New Area", 173_000),
    ("D09", "凤鸣区", "Fengming District", 241_000),
    ("D10", "云岭县", "Yunling County", 219_000),
    ("D11", "白沙县", "Baisha County", 164_000),
    ("D12", "龙泉市", "Longquan City", 305_000),
)


def load(session: Session) -> None:
    for code, zh, en, population in DEMO_DISTRICTS:
        if session.get(District, code) is None:
            session.add(District(code=code, name_zh=zh, name_en=en, population=population))
