"""The item bank's contract (itembank/README.md, "Contract"): plain frozen values, no ORM objects.

Each function is checked against the bank's own tables on the demo bank, on each backend.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sqlalchemy as sa

from itembank import demo_content, services
from itembank.content import VersionContent, score_choice
from itembank.models import Calibration, Domain, Instrument, Item, ItemResponse, ItemVersion
from itembank.scale import level_for, se_to_scale, to_scale


@pytest.fixture
def demo(dbsession):
    demo_content.load(dbsession)
    dbsession.commit()
    return dbsession


def _is_plain(value) -> bool:
    return dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen


def test_instrument_info_by_code_and_id(demo):
    row = demo.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    info = services.instrument_info(demo, "LLA")
    assert _is_plain(info)
    assert (info.id, info.code, info.kind, info.item_type) == (row.id, "LLA", "ability",
                                                               "single_choice")
    assert info.blueprint == row.blueprint
    assert info.published_calibration_id == row.published_calibration_id is not None
    assert info.ready
    assert info.name("en_GB") == row.name_en and info.name("zh_CN") == row.name_zh
    assert services.instrument_info_by_id(demo, row.id) == info
    assert services.instrument_info(demo, "NOPE") is None
    assert services.instrument_info_by_id(demo, 10_000) is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.code = "X"


def test_instrument_codes(demo):
    assert services.instrument_codes(demo) == ["LLA", "LMS"]
    assert services.instrument_codes(demo, kind="ability") == ["LLA"]
    assert services.instrument_codes(demo, kind="rating", published_only=True) == ["LMS"]
    demo.add(Instrument(code="NEW", name_zh="新", name_en="New", kind="ability"))
    demo.flush()
    assert services.instrument_codes(demo, kind="ability") == ["LLA", "NEW"]
    assert services.instrument_codes(demo, kind="ability", published_only=True) == ["LLA"]


def test_version_contents_match_the_versions_and_score_alike(demo):
    versions = demo.scalars(sa.select(ItemVersion).order_by(ItemVersion.id)).all()
    contents = services.version_contents(demo, [v.id for v in versions] + [10_000_000])
    assert set(contents) == {v.id for v in versions}  # the unknown id is left out
    for v in versions:
        c = contents[v.id]
        assert isinstance(c, VersionContent) and _is_plain(c)
        assert (c.item_id, c.item_code, c.item_type, c.version) == (
            v.item_id, v.item.code, v.item.type, v.version)
        for locale in ("zh_CN", "en"):
            assert c.stem(locale) == v.stem(locale)
            assert c.option_texts(locale) == v.option_texts(locale)
        assert [c.score(k) for k in range(1, len(v.options) + 1)] == \
            [v.score(k) for k in range(1, len(v.options) + 1)]
        assert (c.key, c.reverse, c.media) == (v.key, bool(v.reverse), v.media)
    assert services.version_contents(demo, []) == {}


def test_score_choice_rule():
    assert [score_choice(2, False, 4, k) for k in (1, 2, 3, 4)] == [0, 1, 0, 0]
    assert [score_choice(None, False, 5, k) for k in (1, 3, 5)] == [0, 2, 4]
    assert [score_choice(None, True, 5, k) for k in (1, 3, 5)] == [4, 2, 0]


def test_version_item_ids(demo):
    pairs = demo.execute(sa.select(ItemVersion.id, ItemVersion.item_id)).all()
    assert services.version_item_ids(demo, [p[0] for p in pairs]) == dict(pairs)
    assert services.version_item_ids(demo, []) == {}


def test_current_contents_follow_the_latest_version(demo):
    rating = services.current_contents(demo, item_type="rating")
    items = demo.scalars(sa.select(Item).where(Item.type == "rating")).all()
    assert list(rating) == sorted(i.code for i in items)
    for item in items:
        assert rating[item.code].id == item.current.id
        assert rating[item.code].stem_zh == item.current.stem_zh
    item = items[0]
    item.versions.append(ItemVersion(version=2, stem_zh="新题干", stem_en="New stem",
                                     options=item.current.options, key=None, reverse=True))
    demo.flush()
    again = services.current_contents(demo, item_type="rating")
    assert again[item.code].version == 2 and again[item.code].reverse
    pilot = services.current_contents(demo, status=["pilot"])
    assert len(pilot) == 10 and {c.item_type for c in pilot.values()} == {"single_choice"}


def test_pilot_items_and_bank_revision(demo):
    info = services.instrument_info(demo, "LLA")
    pilots = services.pilot_items(demo, info.item_type)
    rows = demo.scalars(sa.select(Item).where(Item.status == "pilot").order_by(Item.code)).all()
    assert [p.code for p in pilots] == [i.code for i in rows]
    assert [p.current_version_id for p in pilots] == [i.current.id for i in rows]
    assert all(_is_plain(p) and p.status == "pilot" for p in pilots)
    assert services.pilot_items(demo, "rating") == []
    left = services.pilot_items(demo, "single_choice", exclude=[rows[0].id])
    assert [p.code for p in left] == [i.code for i in rows[1:]]

    before = services.bank_revision(demo)
    services.change_status(demo, rows[0], "operational", "tests")
    after_status = services.bank_revision(demo)
    assert after_status[0] > before[0] and after_status[1] == before[1]
    item = rows[1]
    item.versions.append(ItemVersion(version=2, stem_zh="改", stem_en="Changed",
                                     options=item.current.options, key=item.current.key))
    demo.flush()
    assert services.bank_revision(demo)[1] > after_status[1]


def test_calibration_info_matches_the_stored_calibration(demo):
    info = services.instrument_info(demo, "LLA")
    cal = services.calibration_info(demo, info.published_calibration_id)
    assert _is_plain(cal)
    row = demo.get(Calibration, info.published_calibration_id)
    assert (cal.id, cal.instrument_id, cal.label, cal.model, cal.is_demo) == (
        row.id, info.id, row.label, row.model, True)
    assert cal.levels == tuple(row.levels)
    expected = services.calibration_params(row)
    assert list(cal.params.item_ids) == list(expected.item_ids)
    np.testing.assert_array_equal(cal.params.a, expected.a)
    np.testing.assert_array_equal(cal.params.b, expected.b)
    assert [b.code for b in cal.items] == list(expected.item_ids)
    assert [b.item_id for b in cal.items] == [r.item_id for r in row.items]
    assert [b.current_version_id for b in cal.items] == [r.item.current.id for r in row.items]
    theta = np.array([-1.0, 0.0, 1.5])
    np.testing.assert_allclose(cal.to_scale(theta), to_scale(
        theta, row.scale_mean, row.scale_sd, row.link_a, row.link_b))
    np.testing.assert_allclose(cal.se_to_scale(0.3), se_to_scale(0.3, row.scale_sd, row.link_a))
    assert cal.level_for(560.0) == level_for(560.0, row.levels)
    assert services.calibration_info(demo, 10_000_000) is None


def test_published_calibration_info(demo):
    lms = services.published_calibration_info(demo, "LMS")
    assert lms is not None and set(str(m) for m in lms.params.model) <= {"grm", "gpcm", "pcm"}
    assert lms.id == services.instrument_info(demo, "LMS").published_calibration_id
    assert services.published_calibration_info(demo, "NOPE") is None
    demo.add(Instrument(code="NEW", name_zh="新", name_en="New"))
    demo.flush()
    assert services.published_calibration_info(demo, "NEW") is None


def test_domain_infos(demo):
    infos = services.domain_infos(demo)
    rows = demo.scalars(sa.select(Domain)).all()
    assert set(infos) == {d.code for d in rows}
    for d in rows:
        assert infos[d.code].name("en") == d.name("en")
        assert infos[d.code].advice("zh_CN") == d.advice_zh
    assert [i.position for i in infos.values()] == sorted(i.position for i in infos.values())


def test_record_response_accepts_the_contract_values(demo):
    info = services.instrument_info(demo, "LLA")
    version_id = services.pilot_items(demo, "single_choice")[0].current_version_id
    content = services.version_contents(demo, [version_id])[version_id]
    services.record_response(demo, instrument=info, version=content, respondent="t1",
                             choice=content.key, scored=False)
    row = demo.scalar(sa.select(ItemResponse).where(ItemResponse.respondent == "t1"))
    assert (row.instrument_id, row.item_version_id, row.item_id, row.score, row.scored) == (
        info.id, version_id, content.item_id, 1, False)


def test_forget_respondents_deletes_only_their_answers(demo):
    info = services.instrument_info(demo, "LLA")
    version_ids = [item.current_version_id
                   for item in services.pilot_items(demo, "single_choice")[:2]]
    contents = services.version_contents(demo, version_ids)
    for respondent in ("t1", "t2", "t3"):
        for version_id in version_ids:
            services.record_response(demo, instrument=info, version=contents[version_id],
                                     respondent=respondent, choice=0)

    def left() -> dict[str, int]:
        return dict(demo.execute(sa.select(ItemResponse.respondent, sa.func.count())
                                 .group_by(ItemResponse.respondent)).all())

    assert services.forget_respondents(demo, ["t1", "t3"], dry_run=True) == 4
    assert left() == {"t1": 2, "t2": 2, "t3": 2}  # a dry run changes nothing
    assert services.forget_respondents(demo, ["t1", "t3"]) == 4
    assert left() == {"t2": 2}
    assert services.forget_respondents(demo, ["t1", "t3"]) == 0  # again: nothing left
    assert services.forget_respondents(demo, []) == 0
