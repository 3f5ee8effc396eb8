"""``python -m loadtest run|faults``: the load suite and the fault suite, one command each."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from . import harness, residents, verify


def add_load_options(parser: argparse.ArgumentParser, *, residents_default: int,
                     duration_default: float) -> None:
    parser.add_argument("--residents", type=int, default=residents_default,
                        help="concurrent simulated residents")
    parser.add_argument("--duration", type=float, default=duration_default,
                        help="seconds of load (each resident stops after its current step)")
    parser.add_argument("--think", type=float, default=4.0,
                        help="median think time per question, seconds")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--entry", choices=["invitation", "api"], default="invitation",
                        help="how residents start: redeeming invitation codes of a drawn "
                             "campaign (default), or the open test's start API")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_out", help="also write the figures as JSON here")


def config_from(args: argparse.Namespace) -> residents.Config:
    if not 1 <= args.residents <= 2000:
        raise SystemExit("--residents must be between 1 and 2000")
    if not 1 <= args.duration <= 1800:
        raise SystemExit("--duration must be between 1 and 1800 seconds")
    return residents.Config(residents=args.residents, duration=args.duration,
                            think=args.think, ramp=min(10.0, args.duration / 4),
                            entry=args.entry, seed=args.seed)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stage, run the residents, verify; returns the figures (and prints them)."""
    config = config_from(args)
    with harness.database() as url:
        codes = harness.entry_codes(url, config)
        with harness.served(url, workers=args.workers, threads=args.threads) as server:
            print(f"serving on {server.base_url}: gunicorn {args.workers} workers x "
                  f"{args.threads} threads, PostgreSQL; {config.residents} residents for "
                  f"{config.duration:.0f} s, median think time {config.think} s, entry "
                  f"{config.entry}" + (f" ({len(codes)} invitation codes)" if codes else ""),
                  flush=True)
            asyncio.run(residents.warm_up(server.base_url, 4 * args.workers))
            stats = asyncio.run(residents.run_residents(server.base_url, config, codes))
            unfinished = [t for t in stats.tokens if t not in stats.finished]
            resumable = asyncio.run(residents.check_resumable(server.base_url, unfinished,
                                                              stats.code_of))
        checked = verify.verify(url, stats.acknowledged)
    figures = summary(stats, checked, resumable)
    print(stats.report())
    print_verification(checked, resumable, len(unfinished))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)
    return figures


def summary(stats: residents.Stats, checked: dict[str, Any], resumable: list[str]
            ) -> dict[str, Any]:
    return {"wall_s": stats.wall, "sessions": len(stats.tokens),
            "sessions_per_s": len(stats.tokens) / stats.wall,
            "finished": len(stats.finished), "answers": stats.answers(),
            "entry": "invitation" if stats.code_of else "api",
            "answers_per_s": stats.answers() / stats.wall,
            "latency_ms": {e: stats.percentiles(e) for e in stats.latencies},
            "errors": dict(stats.errors), "events": dict(stats.events),
            "db_problems": checked["problems"], "resume_problems": resumable,
            "acknowledged_checked": checked["acknowledged_checked"]}


def print_verification(checked: dict[str, Any], resumable: list[str], unfinished: int) -> None:
    print(f"database: {checked['sessions']} sessions, {checked['answers']} answers; "
          f"{checked['acknowledged_checked']} acknowledged answers checked; "
          f"{len(checked['problems'])} problems")
    for problem in checked["problems"][:20]:
        print("  PROBLEM", problem)
    print(f"resume: {unfinished} interrupted sessions checked; {len(resumable)} problems")
    for problem in resumable[:20]:
        print("  PROBLEM", problem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("run", help="the load suite")
    add_load_options(load, residents_default=200, duration_default=120)
    load.add_argument("--p95-target-ms", type=float, default=100.0,
                      help="fail when the answer endpoint's p95 is above this")
    faults_parser = sub.add_parser("faults", help="the fault suite")
    add_load_options(faults_parser, residents_default=60, duration_default=40)
    faults_parser.set_defaults(think=1.0)  # busier, so a fault hits requests in flight
    faults_parser.add_argument("--only", nargs="*", default=None,
                               choices=["kill-worker", "restart-postgres", "burst"],
                               help="run only these faults")
    args = parser.parse_args(argv)
    if args.command == "run":
        figures = run(args)
        answer_p95 = figures["latency_ms"].get("answer", {}).get("p95", float("inf"))
        ok = not figures["db_problems"] and not figures["resume_problems"] and \
            not figures["errors"]
        print(f"answer p95 {answer_p95:.1f} ms (target {args.p95_target_ms:.0f} ms): "
              f"{'met' if answer_p95 <= args.p95_target_ms else 'NOT met'}; "
              f"integrity {'ok' if ok else 'FAILED'}")
        return 0 if ok and answer_p95 <= args.p95_target_ms else 1
    from . import faults

    return faults.main(args)


if __name__ == "__main__":
    sys.exit(main())
