"""Invitation codes: generation, hashing, lookup, re-issue and the printable field list.

A code is 13 characters of Crockford base32 drawn with :mod:`secrets` (65 bits), printed
in groups as ``K7Q2-M9XD-4HT3P``. The alphabet has no I, L, O or U, and typing one of
I/L/O is read as 1/1/0 (Crockford's rule), so a resident's typo is not fatal. Only
``hash_code(secret, code)`` (HMAC-SHA-256 of the normalised code keyed by the app
secret) is stored, so a copy of the database alone does not let anyone test candidate
codes; the plain codes exist only in the response that generated them (printable page,
CSV or XLSX), so a lost list is replaced by re-issuing, which voids the old codes.

Codes stored before migration 0008 carry the unsalted SHA-256 (no code is kept, so they
cannot be rehashed in a migration): :func:`find_invitation` falls back to it and
replaces it by the keyed hash on the code's first use.

Issuing is idempotent under concurrency: each sampled unit has ``n_invitations`` slots,
and a partial unique index allows one live (not void) invitation per slot; rows are
inserted with ``ON CONFLICT DO NOTHING`` (:mod:`monitoring.fieldwork.inserts`), so of
two simultaneous "issue" requests one gets the codes and the other finds nothing left
to issue.
"""
from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd
import segno
import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.i18n import _
from learningcity.tokens import hash_token, keyed_hash
from monitoring.fieldwork.campaigns import Said
from monitoring.fieldwork.inserts import insert_new
from monitoring.fieldwork.models import LIVE_WHERE, Campaign, FrameUnit, Invitation
from monitoring.fieldwork.window import local_text
from monitoring.stats.sampling import second_stage_size
from tabular.writing import write_table

#: Crockford base32: digits and letters without I, L, O, U
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 13  # 13 x 5 = 65 bits
CODE_BITS = CODE_LENGTH * 5
GROUPS = (4, 4, 5)
PUBLIC_ID_LENGTH = 8
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
#: frame columns copied into an invitation's prefill when present (what the test and
#: the learning-needs survey ask and the frame already knows)
PREFILL_COLUMNS = ("district", "street", "community", "age_band", "sex", "group",
                   "occupation", "education")


SEX_CODES = {"f": "female", "female": "female", "女": "female", "2": "female",
             "m": "male", "male": "male", "男": "male", "1": "male"}


class InvitationError(ValueError):
    """An invitation request that cannot be carried out; the message says why."""


def generate_code() -> str:
    """A new random code, 65 bits from ``secrets``, formatted in groups for printing."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return format_code(raw)


def format_code(raw: str) -> str:
    """``K7Q2M9XD4HT3P`` -> ``K7Q2-M9XD-4HT3P`` (input normalised first)."""
    raw = normalise_code(raw)
    parts, start = [], 0
    for size in GROUPS:
        parts.append(raw[start:start + size])
        start += size
    if start < len(raw):
        parts.append(raw[start:])
    return "-".join(p for p in parts if p)


def normalise_code(code: str) -> str:
    """Strip spaces, dashes and anything not ASCII (a stray full-width character), uppercase,
    read I/L as 1 and O as 0."""
    cleaned = "".join(ch for ch in str(code) if ch.isascii() and ch not in " -\t\r\n")
    return cleaned.upper().translate(_ALIASES)


def hash_code(secret: str, code: str) -> str:
    """HMAC-SHA-256 hex of the normalised code keyed by the app secret: what the database
    stores and looks up."""
    return keyed_hash(secret, "invitation-code:" + normalise_code(code))


def legacy_hash_code(code: str) -> str:
    """The unsalted SHA-256 hex that codes issued before migration 0008 are stored as."""
    return hash_token(normalise_code(code))


def find_invitation(db: Session, code: str, secret: str) -> Invitation | None:
    """The invitation a resident's code stands for, or None (unknown, malformed or void).

    Looked up by the keyed hash; a code stored with the old unsalted hash is found by
    that and rehashed (keyed) on the spot, so the old hash disappears on first use.
    The caller checks the campaign (status ``ready`` and the response window) and the
    invitation status (``issued``/``started``) before accepting anything.
    """
    cleaned = normalise_code(code)
    if len(cleaned) != CODE_LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    keyed = hash_code(secret, cleaned)
    invitation = db.scalar(sa.select(Invitation).where(Invitation.code_hash == keyed))
    if invitation is None:
        invitation = db.scalar(sa.select(Invitation).where(
            Invitation.code_hash == legacy_hash_code(cleaned)))
        if invitation is not None:
            invitation.code_hash = keyed
            db.flush()
    if invitation is None or invitation.status == "void":
        return None
    return invitation


def _public_ids(db: Session, n: int) -> list[str]:
    """``n`` short non-secret references, unique across campaigns (checked in batches)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        batch = set()
        while len(batch) < min(n - len(out), 5000):
            candidate = "".join(secrets.choice(ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
            if candidate not in seen:
                batch.add(candidate)
        taken = set(db.scalars(sa.select(Invitation.public_id)
                               .where(Invitation.public_id.in_(batch))))
        fresh = sorted(batch - taken)
        seen.update(batch)
        out.extend(fresh)
    return out


@dataclass(frozen=True)
class IssuedInvitation:
    """A freshly issued invitation together with its plain code (shown once)."""

    public_id: str
    code: str
    campaign_code: str
    stratum: str
    unit_key: str
    psu: str | None
    pi: float | None
    attributes: dict[str, str] = field(default_factory=dict)

    def link(self, base_url: str) -> str:
        """The resident's link: ``<base>/i/<code>``."""
        return f"{base_url.rstrip('/')}/i/{self.code}"


def public_url(settings: Mapping[str, Any]) -> str | None:
    """The public address residents' links and QR codes start with
    (``learningcity.public_url``, e.g. ``https://learn.city.cn``), or None when unset.

    Links never follow the request's Host header, which a client or a careless proxy
    chooses: a printed QR code pointing at an attacker's host cannot be recalled."""
    value = str(settings.get("learningcity.public_url") or "").strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("https://", "http://")):
        raise InvitationError(Said(_("learningcity.public_url must start with https:// "
                                     "or http://, not ${value}"), value=repr(value)))
    return value


def prefill_for(campaign: Campaign, unit: FrameUnit) -> dict[str, str]:
    """Answers the frame already knows for this unit (district always from the campaign)."""
    attributes = unit.attributes or {}
    wanted = list(PREFILL_COLUMNS) + list(campaign.design.get("prefill_columns", []))
    prefill = {name: str(attributes[name]).strip() for name in wanted
               if str(attributes.get(name, "")).strip()}
    if "sex" in prefill:  # the frame's spelling -> the questionnaires' codes
        prefill["sex"] = SEX_CODES.get(prefill["sex"].lower(), prefill["sex"])
    prefill["district"] = campaign.district_code
    return prefill


def _unit_pi(campaign: Campaign, unit: FrameUnit) -> float | None:
    """Overall inclusion probability of a person or unit invited from this frame row."""
    if unit.pi1 is None:
        return None
    if unit.size is None:  # unit frame: the unit's own probability
        return float(unit.pi1)
    size = float(unit.size)
    m = second_stage_size(int(campaign.design.get("m_per_psu") or 1), size)
    return float(unit.pi1) * m / size if size > 0 else None


def _check_open_for_invitations(campaign: Campaign) -> None:
    if campaign.status == "closed":
        raise InvitationError(Said(_("campaign ${code} is closed: no new invitations"),
                                   code=campaign.code))
    if campaign.status != "ready":
        raise InvitationError(Said(_("campaign ${code}: draw the sample before issuing "
                                     "invitations"), code=campaign.code))
    if campaign.mode != "sample":
        raise InvitationError(Said(_("campaign ${code} is an open-enrolment campaign: "
                                     "residents join through the campaign link, not by "
                                     "code"), code=campaign.code))


def _insert(db: Session, campaign: Campaign, slots: Sequence[tuple[FrameUnit, int]],
            secret: str) -> list[IssuedInvitation]:
    """Insert one invitation per (unit, slot) whose slot is free; the issued ones (with
    their plain codes) in the order asked. A slot another request filled meanwhile is
    skipped by the database (the partial unique index), never duplicated."""
    ids = iter(_public_ids(db, len(slots)))
    rows, issued = [], {}
    now = utcnow()
    for unit, slot in slots:
        code = generate_code()
        row = {"campaign_id": campaign.id, "public_id": next(ids),
               "code_hash": hash_code(secret, code), "frame_unit_id": unit.id, "slot": slot,
               "stratum": unit.stratum, "psu": unit.psu, "pi": _unit_pi(campaign, unit),
               "prefill": prefill_for(campaign, unit), "status": "issued",
               "created_at": now}
        rows.append(row)
        issued[row["public_id"]] = IssuedInvitation(
            public_id=row["public_id"], code=code, campaign_code=campaign.code,
            stratum=unit.stratum, unit_key=unit.unit_key, psu=unit.psu, pi=row["pi"],
            attributes=contact_attributes(campaign, unit))
    inserted = {row.public_id for row in insert_new(
        db, Invitation, rows, key=("frame_unit_id", "slot"), where=LIVE_WHERE,
        returning=[Invitation.public_id])}
    return [inv for public_id, inv in issued.items() if public_id in inserted]


def contact_attributes(campaign: Campaign, unit: FrameUnit) -> dict[str, str]:
    """The frame columns printed on the field-worker list: every kept column of the unit
    (a frame keeps only the columns its campaign declared)."""
    return {k: str(v) for k, v in (unit.attributes or {}).items()}


def issue_invitations(db: Session, campaign: Campaign, user: str, *, secret: str
                      ) -> list[IssuedInvitation]:
    """Issue the missing invitations of a drawn campaign (one per sampled unit, m per
    selected cluster) and return them with their plain codes, which are not kept.

    Safe to run concurrently: each free slot is filled once, so a second request
    returns only what the first left (usually nothing)."""
    _check_open_for_invitations(campaign)
    units = db.scalars(sa.select(FrameUnit).where(
        FrameUnit.campaign_id == campaign.id, FrameUnit.selected.is_(True))
        .order_by(FrameUnit.stratum, FrameUnit.row_number)).all()
    live = set(db.execute(
        sa.select(Invitation.frame_unit_id, Invitation.slot)
        .where(Invitation.campaign_id == campaign.id, Invitation.status != "void")).all())
    slots = [(unit, slot) for unit in units for slot in range(unit.n_invitations)
             if (unit.id, slot) not in live]
    issued = _insert(db, campaign, slots, secret)
    if issued:
        audit.record(db, actor=user, action="campaign.invitations", target=campaign.code,
                     detail={"issued": len(issued)})
    db.flush()
    return issued


def reissue_invitation(db: Session, campaign: Campaign, public_id: str, user: str, *,
                       secret: str) -> IssuedInvitation:
    """Void one unused invitation and issue a new code for the same unit."""
    _check_open_for_invitations(campaign)
    old = db.scalar(sa.select(Invitation).where(Invitation.campaign_id == campaign.id,
                                                Invitation.public_id == public_id.strip()))
    if old is None:
        raise InvitationError(Said(_("campaign ${code}: no invitation ${reference}"),
                                   code=campaign.code, reference=repr(public_id)))
    if old.status != "issued":
        raise InvitationError(Said(_("invitation ${reference} is ${status}: only an unused "
                                     "invitation can be re-issued"),
                                   reference=old.public_id, status=old.status))
    unit = db.get(FrameUnit, old.frame_unit_id) if old.frame_unit_id else None
    if unit is None:
        raise InvitationError(Said(_("invitation ${reference} has no frame unit to re-issue "
                                     "for"), reference=old.public_id))
    old.status = "void"
    db.flush()
    new = _insert(db, campaign, [(unit, old.slot)], secret)
    if not new:  # a simultaneous re-issue of the same invitation filled the slot
        raise InvitationError(Said(_("invitation ${reference} was re-issued meanwhile"),
                                   reference=old.public_id))
    issued = new[0]
    audit.record(db, actor=user, action="campaign.invitation_reissue", target=campaign.code,
                     detail={"void": old.public_id, "new": issued.public_id})
    db.flush()
    return issued


def reissue_unused(db: Session, campaign: Campaign, user: str, *, secret: str
                   ) -> list[IssuedInvitation]:
    """Replace every unused code at once (a lost or leaked list): old codes stop working."""
    _check_open_for_invitations(campaign)
    unused = db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id, Invitation.status == "issued")).all()
    for invitation in unused:
        invitation.status = "void"
    db.flush()
    issued = issue_invitations(db, campaign, user, secret=secret)
    audit.record(db, actor=user, action="campaign.invitations_reissue_all",
                     target=campaign.code, detail={"void": len(unused),
                                                   "issued": len(issued)})
    db.flush()
    return issued


def invitation_counts(db: Session, campaign: Campaign) -> dict[str, int]:
    """Invitations of the campaign by status."""
    rows = db.execute(sa.select(Invitation.status, sa.func.count(Invitation.id))
                      .where(Invitation.campaign_id == campaign.id)
                      .group_by(Invitation.status)).all()
    counts = {status: 0 for status in ("issued", "started", "completed", "void")}
    counts.update({status: int(n) for status, n in rows})
    return counts


def list_invitations(db: Session, campaign: Campaign) -> Sequence[Invitation]:
    """Every invitation of the campaign (no codes: those are not stored)."""
    return db.scalars(sa.select(Invitation).where(Invitation.campaign_id == campaign.id)
                      .order_by(Invitation.stratum, Invitation.id)).all()


# ------------------------------------------------------------ printable outputs

def qr_svg_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG data URI (rendered locally, no external request)."""
    # A fixed mask skips segno's evaluation of the eight masks (about 3/4 of its time:
    # 2,000 codes in ~2.5 s instead of ~10 s); any mask is a valid code that phones read.
    # Module size 1 + CSS size (img 30 mm) keeps the SVG small; no XML declaration.
    qr = segno.make(text, error="m", micro=False, mask=0)
    return qr.svg_data_uri(scale=1, border=2, xmldecl=False, nl=False, omitsize=True)


def sheet_rows(issued: Iterable[IssuedInvitation], base_url: str
               ) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the field-worker list (one row per invitation)."""
    issued = list(issued)
    extra = sorted({k for inv in issued for k in inv.attributes})
    header = ["campaign", "public_id", "stratum", "unit", "code", "link", *extra]
    rows = [[inv.campaign_code, inv.public_id, inv.stratum, inv.unit_key, inv.code,
             inv.link(base_url), *[inv.attributes.get(k, "") for k in extra]]
            for inv in issued]
    return header, rows


#: XLSX column widths of the field-worker list (characters)
LIST_WIDTHS = {"campaign": 16, "public_id": 12, "stratum": 24, "unit": 16, "code": 18,
               "link": 48}


def _list_frame(issued: Iterable[IssuedInvitation], base_url: str) -> pd.DataFrame:
    header, rows = sheet_rows(issued, base_url)
    return pd.DataFrame(rows, columns=header, dtype=object)


def invitations_csv(issued: Iterable[IssuedInvitation], base_url: str) -> bytes:
    """The list as CSV, UTF-8 with BOM so Excel opens the Chinese text correctly, text
    formula-guarded (through the export registry, :func:`tabular.writing.write_table`)."""
    return write_table("csv", _list_frame(issued, base_url))


def invitations_xlsx(issued: Iterable[IssuedInvitation], base_url: str) -> bytes:
    """The list as an XLSX workbook: every cell the exact text, never a formula (through
    the export registry, :func:`tabular.writing.write_table`)."""
    return write_table("xlsx", _list_frame(issued, base_url), sheet_name="invitations",
                       column_widths=LIST_WIDTHS)


def data_uri(content: bytes, mime: str) -> str:
    """Embed a download in the page that shows the codes, so no second request needs them."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def list_filename(campaign: Campaign, ext: str, when: dt.datetime | None = None) -> str:
    stamp = (when or utcnow()).strftime("%Y%m%d-%H%M%S")
    return f"invitations-{campaign.code}-{stamp}.{ext}"


_HTML_CSS = """body{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
margin:12mm}h1{font-size:14pt}.warn{border-left:4px solid #b00020;padding:4px 8px}
ol{list-style:none;padding:0;display:grid;grid-template-columns:1fr 1fr;gap:4mm}
li{display:flex;gap:3mm;align-items:center;border:1px dashed #888;padding:3mm;
break-inside:avoid;page-break-inside:avoid}p{margin:0}.code{font:700 14pt monospace}
.small{font-size:8pt;word-break:break-all}img{width:30mm;height:30mm}
@page{size:A4;margin:10mm}@media print{.warn{display:none}}"""


def invitations_html(campaign: Campaign, issued: Iterable[IssuedInvitation], base_url: str
                     ) -> str:
    """A self-contained printable A4 page (QR codes inline), for the command line."""
    cards = []
    count = 0
    for item in issued:
        count += 1
        link = item.link(base_url)
        cards.append(
            f'<li><img src="{qr_svg_data_uri(link)}" alt="QR"><div>'
            f'<p class="code">{escape(item.code)}</p>'
            f'<p class="small">{escape(item.public_id)} · {escape(item.unit_key)}</p>'
            f'<p class="small">{escape(item.stratum)}</p>'
            f'<p class="small">{escape(link)}</p></div></li>')
    window = (f"{local_text(campaign.opens_at, campaign.timezone)} – "
              f"{local_text(campaign.closes_at, campaign.timezone)} ({campaign.timezone})")
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{escape(campaign.code)}</title><style>{_HTML_CSS}</style></head><body>"
            f'<p class="warn">邀请码只在此文件中出现，请妥善保管。 The codes exist only in this '
            f"file; keep it safe.</p>"
            f"<h1>{escape(campaign.name)} · {escape(campaign.code)} ({count})</h1>"
            f"<p>{escape(window)}</p><ol>{''.join(cards)}</ol></body></html>")
