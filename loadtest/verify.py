"""After a run: every acknowledged answer is in the database exactly once, and every
session's stored state agrees with its answers."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from learningcity.tokens import hash_token


def verify(url: str, acknowledged: dict[str, dict[int, tuple[int, int]]]) -> dict[str, Any]:
    """Check the database at ``url`` against the client's acknowledged answers.

    Returns counts and a list of problems (empty when everything holds):

    - each acknowledged (session, position) has exactly one row, with the same item
      version and choice;
    - each session's positions are 1..n without gaps or duplicates, ``n_answered`` is n,
      the engine state lists the same items and scores in the same order, the revision
      counted at least one update per answer, and the item bank holds exactly one
      response row per answer.
    """
    engine = sa.create_engine(url)
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            sessions = {row.token_hash: row for row in conn.execute(sa.text(
                "SELECT id, token_hash, status, n_answered, revision, engine_state "
                "FROM test_session"))}
            answers: dict[int, list[Any]] = defaultdict(list)
            for row in conn.execute(sa.text(
                    "SELECT session_id, position, item_version_id, choice, score "
                    "FROM test_answer ORDER BY session_id, position, id")):
                answers[row.session_id].append(row)
            bank_rows = {row.respondent: row.n for row in conn.execute(sa.text(
                "SELECT respondent, count(*) AS n FROM item_response "
                "WHERE respondent LIKE 't%' GROUP BY respondent"))}
    finally:
        engine.dispose()

    checked = 0
    for token, positions in acknowledged.items():
        session = sessions.get(hash_token(token))
        if session is None:
            problems.append(f"acknowledged session {token[:8]}… is not stored")
            continue
        stored: dict[int, list[Any]] = defaultdict(list)
        for row in answers[session.id]:
            stored[row.position].append(row)
        for position, (version, choice) in positions.items():
            rows = stored.get(position, [])
            checked += 1
            if len(rows) != 1:
                problems.append(f"session {session.id} position {position}: {len(rows)} rows "
                                "for an acknowledged answer")
            elif (rows[0].item_version_id, rows[0].choice) != (version, choice):
                problems.append(f"session {session.id} position {position}: stored "
                                f"({rows[0].item_version_id}, {rows[0].choice}), acknowledged "
                                f"({version}, {choice})")

    for session in sessions.values():
        rows = answers[session.id]
        positions = [r.position for r in rows]
        n = len(rows)
        if positions != list(range(1, n + 1)):
            problems.append(f"session {session.id}: positions {positions[:5]}… are not 1..{n}")
        if session.n_answered != n:
            problems.append(f"session {session.id}: n_answered {session.n_answered}, "
                            f"{n} answers stored")
        state = session.engine_state
        if isinstance(state, str):
            import json

            state = json.loads(state)
        if state and (len(state.get("items", [])) != n
                      or list(state.get("scores", [])) != [r.score for r in rows]):
            problems.append(f"session {session.id}: engine state disagrees with its answers")
        if session.revision < n + 1:
            problems.append(f"session {session.id}: revision {session.revision} < "
                            f"{n + 1} (one insert and one update per answer)")
        if bank_rows.get(f"t{session.id}", 0) != n:
            problems.append(f"session {session.id}: {bank_rows.get(f't{session.id}', 0)} item "
                            f"bank responses for {n} answers")
    return {"sessions": len(sessions), "answers": sum(len(v) for v in answers.values()),
            "acknowledged_checked": checked, "problems": problems}
