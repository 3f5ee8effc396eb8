"""Demo content of the item bank: domains, instruments, the demo items and calibrations.

The demo calibrations come from simulated data (see ``demo/make_demo_calibration.py``)
and are labelled as such everywhere. Loading is idempotent.
"""
from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from scoring.io import read_fit, read_params

from .importing import read_item_file
from .models import Calibration, Instrument
from .services import ensure_domains, get_instrument, import_calibration, import_items, publish

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_ACTOR = "demo"
DEMO_CALIBRATION = "demo-simulated"

#: code, zh, en, kind, position, learning advice zh, learning advice en
DOMAINS = (
    ("digital", "数字技能", "Digital skills", "ability", 1,
     "可以到社区学校或老年大学参加智能手机课程，请家人或志愿者陪您练习网上预约、扫码支付和视频通话。",
     "Join a smartphone class at a community school or older-adults university, and practise "
     "online booking, QR payments and video calls with family or volunteers."),
    ("information", "信息素养", "Information literacy", "ability", 2,
     "转发消息前先查官方来源；可参加社区的防诈骗和辨别谣言讲座。",
     "Check official sources before forwarding messages; community talks on scams and "
     "rumours help."),
    ("reading", "日常阅读", "Reading everyday texts", "ability", 3,
     "多读社区通知、药品说明书和合同，遇到不懂的词记下来问人；社区读书会也很有帮助。",
     "Read notices, medicine leaflets and contracts, note words you do not know and ask; "
     "community reading groups help."),
    ("numeracy", "日常计算", "Everyday numeracy", "ability", 4,
     "购物时练习比较单价和折扣，了解存款利息和分期付款的真实成本；可参加理财知识课程。",
     "Practise comparing unit prices and discounts when shopping, and learn the real cost "
     "of interest and instalments; money-skills classes help."),
    ("health_science", "健康与科学素养", "Health and science literacy", "ability", 5,
     "关注权威的健康科普渠道，参加社区卫生服务中心的健康讲座和急救培训。",
     "Follow trusted health information and join health talks and first-aid training at "
     "the community health centre."),
    ("motivation", "学习动机", "Learning motivation", "rating", 6, "", ""),
    ("self_directed", "自主学习", "Self-directed learning", "rating", 7, "", ""),
)

INSTRUMENTS = (
    dict(code="LLA", name_zh="市民终身学习能力测评",
         name_en="Resident lifelong-learning ability test",
         kind="ability", item_type="single_choice",
         blueprint={"min_items": 15, "max_items": 25, "se_target": 0.35,
                    "final_method": "eap",
                    "content_balance": {"digital": 0.2, "information": 0.2, "reading": 0.2,
                                        "numeracy": 0.2, "health_science": 0.2},
                    "exposure": {"method": "randomesque", "candidates": 5,
                                 "max_rate": 0.3},
                    "pilot_positions": [5, 12],
                    "background": ["age_band", "district", "occupation", "education"]}),
    dict(code="LMS", name_zh="学习动机与自主学习量表",
         name_en="Learning motivation and self-directed learning scale",
         kind="rating", item_type="rating", blueprint={}),
)


def load(db: Session) -> None:
    """Load the demo bank once: domains, instruments, items, published demo calibrations."""
    ensure_domains(db, DOMAINS)
    for spec in INSTRUMENTS:
        if db.scalar(sa.select(Instrument).where(Instrument.code == spec["code"])) is None:
            db.add(Instrument(**spec))
    db.flush()
    report = read_item_file(DEMO_DIR / "items.json")
    if not report.ok:
        raise ValueError(report.summary())
    import_items(db, report, DEMO_ACTOR)
    for code in ("LLA", "LMS"):
        params_file = DEMO_DIR / f"calibration_{code.lower()}.csv"
        instrument = get_instrument(db, code)
        exists = db.scalar(sa.select(Calibration.id).where(
            Calibration.instrument_id == instrument.id, Calibration.name == DEMO_CALIBRATION))
        if exists is None and params_file.exists():
            calibration = import_calibration(
                db, instrument, read_params(params_file), DEMO_CALIBRATION, DEMO_ACTOR,
                fit=read_fit(params_file), is_demo=True,
                provenance=_provenance(code),
                notes="Demonstration calibration from simulated data, not from real residents.")
            publish(db, calibration, DEMO_ACTOR, note="demo content")


def _provenance(code: str) -> dict:
    path = DEMO_DIR / "provenance.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {"simulated": True, **data.get(code, {})}
