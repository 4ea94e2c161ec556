"""`llmrouter-tui leaderboard`: your models ranked by your own votes.

Bradley–Terry scores from side-by-side compares and mean 1–5 ratings, each with a 95 %
confidence interval and its number of votes (core/leaderboard.py explains the method);
overall, or for one template with --template.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from .core.config import load_settings
from .core.db import DB_FILENAME
from .core.errors import ConfigError, StorageError
from .core.leaderboard import LeaderboardRow
from .core.store import Store
from .exit_codes import ExitCode

EMPTY = (
    "No votes yet: rate replies 1–5, or compare two models side by side and pick the better "
    "reply; the leaderboard ranks your models by those votes."
)


def leaderboard_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrouter-tui leaderboard",
        description="Rank your models by your own votes: a Bradley–Terry score from "
        "side-by-side compares (Elo scale, 1000 = the reference; ties and 'both bad' count "
        "half a win each) and the mean 1–5 rating, each with a 95%% confidence interval and "
        "its number of votes. Exit codes: 0 shown, 2 broken configuration, 1 unreadable "
        "database.",
    )
    parser.add_argument("--template", metavar="ID", help="only the votes given for this template")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--config", metavar="PATH", help="llmrouter.toml to use")
    parser.add_argument("--data-dir", metavar="DIR", help="where the database and logs/ live")
    return parser


def _interval(low: float | None, high: float | None, digits: int) -> str:
    if low is None or high is None:
        return "–"
    return f"{low:.{digits}f}–{high:.{digits}f}"


def render(rows: Sequence[LeaderboardRow], template_id: str | None) -> str:
    """The leaderboard as a text table."""
    scope = f"template {template_id}" if template_id else "all templates"
    compares = sum(r["compares"] for r in rows) // 2
    ratings = sum(r["ratings"] for r in rows)
    lines = [f"Leaderboard, {scope}: {compares} compares, {ratings} ratings"]
    if not rows:
        return "\n".join([*lines, EMPTY]) + "\n"
    width = max(5, *(len(r["model"]) for r in rows))
    lines.append(
        f"{'#':>3}  {'model':<{width}}  {'score':>6}  {'95% CI':<11}  {'compares':>8}  "
        f"{'W-L-T':<9}  {'rating':>6}  {'95% CI':<9}  {'n':>4}"
    )
    for r in rows:
        score = "–" if r["bt_score"] is None else f"{r['bt_score']:.0f}"
        record = f"{r['wins']}-{r['losses']}-{r['ties'] + r['both_bad']}" if r["compares"] else "–"
        rating = "–" if r["mean_rating"] is None else f"{r['mean_rating']:.2f}"
        lines.append(
            f"{r['rank']:>3}  {r['model']:<{width}}  {score:>6}  "
            f"{_interval(r['bt_low'], r['bt_high'], 0):<11}  {r['compares']:>8}  {record:<9}  "
            f"{rating:>6}  {_interval(r['rating_low'], r['rating_high'], 1):<9}  "
            f"{r['ratings']:>4}"
        )
    lines.append(
        "score: Bradley–Terry on the Elo scale (100 points ≈ 64% chance of winning); W-L-T: "
        "wins, losses, ties (both bad counts as a tie)."
    )
    return "\n".join(lines) + "\n"


def run_leaderboard(argv: list[str], out: TextIO | None = None) -> int:
    """Run `llmrouter-tui leaderboard ARGV…`; returns the exit code."""
    args = leaderboard_parser().parse_args(argv)
    out = sys.stdout if out is None else out
    err = sys.stderr
    try:
        settings = load_settings(config=args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"llmrouter-tui leaderboard: {exc}", file=err)
        return ExitCode.BAD_INPUT
    rows: list[LeaderboardRow] = []
    if (settings.data_dir / DB_FILENAME).exists():  # no database: no votes (none is created)
        try:
            with Store(settings.data_dir) as store:
                rows = store.leaderboard(args.template)
        except StorageError as exc:
            print(f"llmrouter-tui leaderboard: {exc}", file=err)
            return ExitCode.FAILURE
    if args.json:
        payload = {"template_id": args.template, "rows": rows}
        out.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        out.write(render(rows, args.template))
    return ExitCode.OK
