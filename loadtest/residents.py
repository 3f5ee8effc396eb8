"""Simulated residents: an asyncio/httpx client, bounded in count and time, loopback only.

Each resident starts a session, either from an invitation code of a drawn campaign
(``--entry invitation``: ``POST /api/v1/invitations/redeem`` with consent, as the QR
link does, then the background form when the frame did not know every answer) or
through the open test (``POST /api/v1/sessions``); answers with a think time drawn from
a log-normal distribution; and now and then re-sends an answer (a double tap), drops
and resumes the session from its link (``GET /api/v1/sessions/{token}``; with
invitations every second resume redeems the code again, which must lead back to the
same session), or loses the connection in the middle of a post.
Every acknowledged answer (HTTP 200) is recorded so the database can be checked
afterwards: each must be stored exactly once.
"""
from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1"
BACKGROUNDS = [{"age_band": a, "district": d} for a in ("18-29", "30-44", "45-59", "60-69",
                                                         "70+") for d in ("A", "B")]
#: the background form's remaining answers for residents invited from a frame that did
#: not know them (valid codes of assessment/background.py)
INVITED_BACKGROUND = {"occupation": "service", "education": "senior"}


@dataclass
class Config:
    """What the simulated residents do; probabilities are per answer unless stated."""

    residents: int = 200
    duration: float = 120.0
    think: float = 4.0          # median think time per item, seconds (log-normal, sigma 0.6)
    ramp: float = 10.0          # residents start spread over this many seconds
    p_resend: float = 0.05      # re-send the answer just acknowledged (double tap)
    p_drop: float = 0.02        # close the tab, come back a little later, resume
    p_cut: float = 0.01         # the connection drops while the answer is in flight
    p_background_later: float = 0.5  # per session: background posted separately
    attempts: int = 8           # a resident taps again after an error, this many times
    timeout: float = 30.0
    entry: str = "api"
    seed: int = 1


@dataclass
class Stats:
    """Latencies per endpoint, errors, and every acknowledged answer."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    #: token -> position -> (version, choice) for every answer the server acknowledged
    acknowledged: dict[str, dict[int, tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(dict))
    tokens: list[str] = field(default_factory=list)
    #: invitation entry: the codes not handed out yet, and the code behind each session
    codes: list[str] = field(default_factory=list)
    code_of: dict[str, str] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    started_at: float = 0.0
    stopped_at: float = 0.0

    @property
    def wall(self) -> float:
        return max(1e-9, self.stopped_at - self.started_at)

    def answers(self) -> int:
        return sum(len(v) for v in self.acknowledged.values())

    def percentiles(self, endpoint: str) -> dict[str, float]:
        values = sorted(self.latencies.get(endpoint, []))
        if not values:
            return {"n": 0}
        if len(values) == 1:
            q = [values[0]] * 99
        else:
            q = statistics.quantiles(values, n=100, method="inclusive")
        return {"n": len(values), "p50": 1000 * q[49], "p95": 1000 * q[94],
                "p99": 1000 * q[98], "max": 1000 * values[-1]}

    def report(self) -> str:
        lines = [f"wall {self.wall:.1f} s; sessions started {len(self.tokens)} "
                 f"({len(self.tokens) / self.wall:.2f}/s), finished {len(self.finished)}; "
                 f"acknowledged answers {self.answers()} ({self.answers() / self.wall:.1f}/s)",
                 f"{'endpoint':<12}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
                 f"{'max ms':>9}"]
        for endpoint in sorted(self.latencies):
            p = self.percentiles(endpoint)
            lines.append(f"{endpoint:<12}{p['n']:>7}{p['p50']:>9.1f}{p['p95']:>9.1f}"
                         f"{p['p99']:>9.1f}{p['max']:>9.1f}")
        lines.append("events: " + (", ".join(f"{k} {v}" for k, v in sorted(self.events.items()))
                                   or "none"))
        lines.append("errors: " + (", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()))
                                   or "none"))
        return "\n".join(lines)


class Resident:
    """One simulated resident on one HTTP client, with its own random stream."""

    def __init__(self, number: int, client: httpx.AsyncClient, config: Config, stats: Stats,
                 stop_at: float) -> None:
        self.client, self.config, self.stats, self.stop_at = client, config, stats, stop_at
        self.rng = random.Random(config.seed * 1_000_003 + number)

    def think(self, scale: float = 1.0) -> float:
        return min(4 * self.config.think, self.config.think * scale
                   * math.exp(self.rng.gauss(0.0, 0.6)))

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    async def call(self, endpoint: str, method: str, path: str, body: Any = None,
                   *, cut: bool = False) -> tuple[int, Any] | None:
        """One request, repeated after transport errors and 5xx like a resident tapping
        again (with back-off); ``None`` when it never got through."""
        for attempt in range(self.config.attempts):
            started = time.perf_counter()
            try:
                if cut:  # the phone loses the network while the post is in flight
                    cut = False
                    try:
                        await asyncio.wait_for(self.client.request(method, path, json=body),
                                               timeout=self.rng.uniform(0.0005, 0.02))
                        self.stats.events["cut_too_late"] += 1
                    except (TimeoutError, httpx.HTTPError):
                        pass
                    return None  # the resident does not know whether it arrived
                res = await self.client.request(method, path, json=body,
                                                timeout=self.config.timeout)
            except httpx.HTTPError as exc:
                self.stats.errors[f"{endpoint} {type(exc).__name__}"] += 1
                await asyncio.sleep(min(5.0, 0.2 * 2 ** attempt))
                continue
            self.stats.latencies[endpoint].append(time.perf_counter() - started)
            if res.status_code >= 500:
                self.stats.errors[f"{endpoint} {res.status_code}"] += 1
                await asyncio.sleep(min(5.0, 0.2 * 2 ** attempt))
                continue
            try:
                return res.status_code, res.json()
            except ValueError:
                self.stats.errors[f"{endpoint} not-json {res.status_code}"] += 1
                return None
        self.stats.errors[f"{endpoint} gave-up"] += 1
        return None

    async def redeem(self, code: str, endpoint: str = "redeem") -> dict | None:
        """Redeem an invitation code with consent; the redeem answer, or None."""
        got = await self.call(endpoint, "POST", f"{API}/invitations/redeem",
                              {"code": code, "consent": True,
                               "locale": self.rng.choice(["zh_CN", "en"])})
        if got is None or got[0] != 200 or not (got[1].get("test_session") or {}).get("token"):
            self.stats.errors[f"{endpoint} {None if got is None else got[0]}"] += 1
            return None
        return got[1]

    async def start_invited(self) -> tuple[str, dict] | None:
        """Open the invitation link: redeem the code, then the background form if the
        frame did not know every answer the test asks."""
        if not self.stats.codes:
            self.stats.events["codes_used_up"] += 1
            return None
        code = self.stats.codes.pop()
        redeemed = await self.redeem(code)
        if redeemed is None:
            return None
        token = redeemed["test_session"]["token"]
        self.stats.tokens.append(token)
        self.stats.code_of[token] = code
        step = await self.resume(token, count=False)
        if step is None:
            return token, {"status": "unknown"}
        if step["status"] == "background":
            self.stats.events["background_form"] += 1
            return token, await self.post_background(token, INVITED_BACKGROUND)
        return token, step

    async def post_background(self, token: str, answers: dict[str, str]) -> dict:
        """The background form; the next step (status ``unknown`` when it failed)."""
        got = await self.call("background", "POST", f"{API}/sessions/{token}/background",
                              answers)
        if got is None or got[0] != 200:
            self.stats.errors["background failed"] += 1
            return {"status": "unknown"}
        return got[1]

    async def start_session(self) -> tuple[str, dict] | None:
        """Consent and (for half of the sessions) the background in one post."""
        if self.config.entry == "invitation":
            return await self.start_invited()
        background = self.rng.choice(BACKGROUNDS)
        later = self.rng.random() < self.config.p_background_later
        body: dict[str, Any] = {"consent": True, "locale": self.rng.choice(["zh_CN", "en"])}
        if not later:
            body["background"] = background
        got = await self.call("start", "POST", f"{API}/sessions", body)
        if got is None or got[0] != 201:
            if got is not None:
                self.stats.errors[f"start {got[0]}"] += 1
            return None
        step = got[1]
        token = step["token"]
        self.stats.tokens.append(token)
        if step["status"] == "background":
            return token, await self.post_background(token, background)
        return token, step

    async def resume(self, token: str, *, count: bool = True) -> dict | None:
        """The session's current step from its link; an invited resident who comes back
        opens the invitation link again half of the time (same session expected)."""
        code = self.stats.code_of.get(token)
        if count and code is not None and self.rng.random() < 0.5:
            redeemed = await self.redeem(code, "reopen")
            if redeemed is None:
                return None
            if redeemed["test_session"]["token"] != token:
                self.stats.errors["reopened code led to another session"] += 1
                return None
            self.stats.events["reopened_code"] += 1
        got = await self.call("resume", "GET", f"{API}/sessions/{token}")
        if got is None or got[0] != 200:
            self.stats.errors["resume failed"] += 1
            return None
        if count:
            self.stats.events["resumed"] += 1
        return got[1]

    async def answer_all(self, token: str, step: dict) -> None:
        """Answer until the test stops or the run's time is up (then the session is left
        interrupted, as a resident closing the page would leave it)."""
        acknowledged = self.stats.acknowledged[token]
        while step.get("status") == "testing" and self.running():
            await asyncio.sleep(self.think())
            if not self.running():
                break  # time is up while the resident was reading: the session is left open
            item = step["item"]
            body = {"position": item["position"], "version": item["version"],
                    "choice": self.rng.randint(1, len(item["options"]))}
            cut = self.rng.random() < self.config.p_cut
            got = await self.call("answer", "POST", f"{API}/sessions/{token}/answers", body,
                                  cut=cut)
            if got is None:
                if cut:
                    self.stats.events["cut"] += 1
                await asyncio.sleep(self.think(0.5))
                resumed = await self.resume(token)
                if resumed is None:
                    return
                step = resumed
                continue
            status, following = got
            if status != 200:
                self.stats.errors[f"answer {status} {following.get('error')}"] += 1
                resumed = await self.resume(token)
                if resumed is None:
                    return
                step = resumed
                continue
            acknowledged[item["position"]] = (item["version"], body["choice"])
            if self.rng.random() < self.config.p_resend:
                self.stats.events["resent"] += 1
                again = await self.call("resend", "POST", f"{API}/sessions/{token}/answers",
                                        body)
                if again is None or again[0] != 200 or _key(again[1]) != _key(following):
                    self.stats.errors["resend changed the next step"] += 1
            if self.rng.random() < self.config.p_drop:
                self.stats.events["dropped"] += 1
                await asyncio.sleep(self.think(2.0))
                resumed = await self.resume(token)
                if resumed is None:
                    return
                if _key(resumed) != _key(following):
                    self.stats.errors["resume changed the next step"] += 1
                following = resumed
            step = following
        if step.get("status") == "finished":
            self.stats.finished.add(token)

    async def live(self, delay: float) -> None:
        await asyncio.sleep(delay)
        while self.running():
            started = await self.start_session()
            if started is None:
                if self.config.entry == "invitation" and not self.stats.codes:
                    return
                await asyncio.sleep(1.0)
                continue
            await self.answer_all(*started)


def _key(step: dict) -> tuple:
    item = step.get("item") or {}
    return (step.get("status"), step.get("position"), item.get("version"))


def codes_needed(config: Config) -> int:
    """Invitation codes enough for every resident to start several sessions (a session
    lasts about 25 think times; the pool must not run dry before the time is up)."""
    sessions_each = 2 + math.ceil(config.duration / (config.think * 8))
    return config.residents * sessions_each


async def run_residents(base_url: str, config: Config, codes: list[str] | None = None
                        ) -> Stats:
    """Run ``config.residents`` residents against ``base_url`` for ``config.duration`` s;
    with ``config.entry == "invitation"`` they start from ``codes``."""
    if not base_url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise ValueError("the load client only talks to loopback addresses")
    if config.entry not in ("api", "invitation"):
        raise ValueError(f"unknown entry {config.entry!r}")
    if config.entry == "invitation" and not codes:
        raise ValueError("--entry invitation needs the campaign's invitation codes")
    stats = Stats()
    stats.codes = list(codes or [])
    random.Random(config.seed).shuffle(stats.codes)  # residents arrive in no set order
    limits = httpx.Limits(max_connections=config.residents + 20,
                          max_keepalive_connections=config.residents + 20)
    async with httpx.AsyncClient(base_url=base_url, limits=limits,
                                 timeout=config.timeout) as client:
        stats.started_at = time.monotonic()
        stop_at = stats.started_at + config.duration
        residents = [Resident(n, client, config, stats, stop_at)
                     for n in range(config.residents)]
        await asyncio.gather(*(r.live(config.ramp * n / max(1, config.residents))
                               for n, r in enumerate(residents)))
        stats.stopped_at = time.monotonic()
    return stats


async def check_resumable(base_url: str, tokens: list[str],
                          code_of: dict[str, str] | None = None) -> list[str]:
    """Every session answers its link with a sensible state, and (invitation entry) its
    invitation code leads back to the same session (problems as text)."""
    problems = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for token in tokens:
            code = (code_of or {}).get(token)
            if code is not None:
                res = await client.post(f"{API}/invitations/redeem",
                                        json={"code": code, "consent": True})
                if res.status_code != 200 or \
                        (res.json().get("test_session") or {}).get("token") != token:
                    problems.append(f"session {token[:8]}…: its invitation code gave "
                                    f"{res.status_code}, not the same session")
                    continue
            res = await client.get(f"{API}/sessions/{token}")
            if res.status_code != 200:
                problems.append(f"session {token[:8]}…: resume gave {res.status_code}")
                continue
            step = res.json()
            if step["status"] not in ("background", "testing", "finished", "expired"):
                problems.append(f"session {token[:8]}…: status {step['status']}")
            elif step["status"] == "testing" and (
                    not step.get("item") or step["position"] != step["answered"] + 1):
                problems.append(f"session {token[:8]}…: position {step['position']} after "
                                f"{step['answered']} answers")
    return problems


async def warm_up(base_url: str, sessions: int = 8) -> None:
    """Build each worker's bank cache before the clock starts (a few parallel sessions)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        async def one(n: int) -> None:
            res = await client.post(f"{API}/sessions", json={
                "consent": True, "background": BACKGROUNDS[n % len(BACKGROUNDS)]})
            step = res.json()
            for _ in range(2):
                if step.get("status") != "testing":
                    return
                item = step["item"]
                step = (await client.post(f"{API}/sessions/{step['token']}/answers", json={
                    "position": item["position"], "version": item["version"],
                    "choice": 1})).json() | {"token": step["token"]}

        await asyncio.gather(*(one(n) for n in range(sessions)))
