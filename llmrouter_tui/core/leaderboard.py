"""A personal leaderboard: Bradley–Terry scores from pairwise preferences, and mean ratings,
each with a 95 % confidence interval and its number of votes. Pure: no I/O.

Bradley–Terry: model i beats model j with probability s_i / (s_i + s_j). A tie counts as half
a win for each side, and so does "both bad" (it says nothing about which was better; Chatbot
Arena counts it the same way). The strengths are the maximum-likelihood fit (Newton's method
on ln s), with a small prior so that sparse data still converge: every model also plays
`prior` virtual games against a reference model of fixed strength 1, half won and half lost.
A model that has won every compare therefore gets a large but finite score, and scores are
anchored (the reference is 1000 on the Elo-like scale below).

Scores are reported on the Elo scale: 1000 + 400·log10(s); 100 points ≈ a 64 % chance of
winning. Intervals come from the curvature of the log-likelihood (the observed Fisher
information, prior included): θ = ln s ± 1.96 standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, TypedDict

from .wire_meta import Field

Z95 = 1.959963984540054
ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)  # Elo points per unit of ln(strength)
DEFAULT_PRIOR = 1.0  # virtual games against the reference, per model

_INTERVAL = Field("Its 95 % interval.")


class LeaderboardRow(TypedDict):
    """One model on the leaderboard (GET /stats, the TUI's analytics, `leaderboard`)."""

    rank: Annotated[int, Field(minimum=1)]
    model: str
    bt_score: Annotated[
        float | None,
        Field(
            "Bradley–Terry score from compares on the Elo scale (1000: an average model; "
            "+100 ≈ a 64 % chance of winning); null without compares."
        ),
    ]
    bt_low: Annotated[float | None, _INTERVAL]
    bt_high: float | None
    compares: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_rate: Annotated[float | None, Field("Observed, ties and both-bad as half.")]
    mean_rating: Annotated[float | None, Field("Mean 1–5 rating.")]
    rating_low: Annotated[float | None, Field("Its 95 % interval (null below two ratings).")]
    rating_high: float | None
    ratings: int


@dataclass(frozen=True, slots=True)
class PairCount:
    """Compares between two models: how often each won, tied, or both were bad."""

    a: str
    b: str
    a_wins: float = 0.0
    b_wins: float = 0.0
    ties: float = 0.0
    both_bad: float = 0.0

    @property
    def games(self) -> float:
        return self.a_wins + self.b_wins + self.ties + self.both_bad


@dataclass(frozen=True, slots=True)
class RatingCount:
    """1–5 ratings of one model: count, sum and sum of squares."""

    n: int = 0
    total: float = 0.0
    sumsq: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def interval(self) -> tuple[float, float] | None:
        """95 % interval of the mean (normal approximation; None below two ratings)."""
        if self.n < 2:
            return None
        mean = self.total / self.n
        variance = max(0.0, (self.sumsq - self.n * mean * mean) / (self.n - 1))
        half = Z95 * math.sqrt(variance / self.n)
        return max(1.0, mean - half), min(5.0, mean + half)

    def __add__(self, other: RatingCount) -> RatingCount:
        return RatingCount(self.n + other.n, self.total + other.total, self.sumsq + other.sumsq)


def merge_pairs(pairs: Iterable[PairCount]) -> list[PairCount]:
    """Pairs summed per unordered model pair (a < b); same-model pairs dropped."""
    merged: dict[tuple[str, str], list[float]] = {}
    for p in pairs:
        if p.a == p.b:
            continue
        if p.a < p.b:
            key, wins = (p.a, p.b), (p.a_wins, p.b_wins)
        else:
            key, wins = (p.b, p.a), (p.b_wins, p.a_wins)
        acc = merged.setdefault(key, [0.0, 0.0, 0.0, 0.0])
        acc[0] += wins[0]
        acc[1] += wins[1]
        acc[2] += p.ties
        acc[3] += p.both_bad
    return [PairCount(a, b, *counts) for (a, b), counts in sorted(merged.items())]


def bradley_terry(
    pairs: Sequence[PairCount],
    prior: float = DEFAULT_PRIOR,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-10,
) -> dict[str, float]:
    """Strengths s (reference model = 1) of every model in `pairs`: the maximum of the
    likelihood (with the prior's virtual games).

    With a prior the log-likelihood in ln s is strictly concave and Newton's method finds its
    maximum in a few steps. With `prior` = 0 this is the classic fit by Hunter's MM
    iteration, defined only up to a common factor: the strengths are then scaled to a
    geometric mean of 1 (and need every model to have won and lost at least a tie's worth
    against a connected set of others).
    """
    merged = merge_pairs(pairs)
    models = sorted({m for p in merged for m in (p.a, p.b)})
    if not models:
        return {}
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    wins = [prior / 2.0] * n  # ties and both-bad count half for each side
    games: list[tuple[int, int, float]] = []
    for p in merged:
        i, j = index[p.a], index[p.b]
        draws = (p.ties + p.both_bad) / 2.0
        wins[i] += p.a_wins + draws
        wins[j] += p.b_wins + draws
        if p.games:
            games.append((i, j, p.games))
    if prior > 0:
        theta = _newton(n, wins, games, prior, tol)
        return {m: math.exp(theta[index[m]]) for m in models}
    return dict(zip(models, _mm(n, wins, games, max_iter, tol), strict=True))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x > -35 else x


def _newton(
    n: int, wins: list[float], games: list[tuple[int, int, float]], prior: float, tol: float
) -> list[float]:
    """θ = ln s maximising the likelihood with the prior (the reference has θ = 0)."""

    def log_likelihood(theta: list[float]) -> float:
        # Σ wins·θ − Σ games·ln(e^θi + e^θj) − prior·ln(1 + e^θ) (the virtual games).
        total = sum(w * t for w, t in zip(wins, theta, strict=True))
        for i, j, count in games:
            hi = max(theta[i], theta[j])
            total -= count * (hi + math.log(math.exp(theta[i] - hi) + math.exp(theta[j] - hi)))
        for t in theta:
            total += prior * _log_sigmoid(-t)
        return total

    theta = [0.0] * n
    current = log_likelihood(theta)
    for _ in range(200):
        grad = list(wins)
        info = [[0.0] * n for _ in range(n)]
        for i in range(n):
            p = _sigmoid(theta[i])
            grad[i] -= prior * p
            info[i][i] += prior * p * (1.0 - p)
        for i, j, count in games:
            p = _sigmoid(theta[i] - theta[j])
            grad[i] -= count * p
            grad[j] -= count * (1.0 - p)
            weight = count * p * (1.0 - p)
            info[i][i] += weight
            info[j][j] += weight
            info[i][j] -= weight
            info[j][i] -= weight
        inverse = _inverse(info)
        if inverse is None:  # pragma: no cover - the prior keeps the information positive
            break
        step = [sum(row[k] * grad[k] for k in range(n)) for row in inverse]
        scale = 1.0
        while True:
            trial = [t + scale * s for t, s in zip(theta, step, strict=True)]
            value = log_likelihood(trial)
            if value >= current - 1e-12 or scale < 1e-8:
                break
            scale /= 2.0
        theta, current = trial, value
        if max(abs(scale * s) for s in step) < tol:
            break
    return theta


def _mm(
    n: int, wins: list[float], games: list[tuple[int, int, float]], max_iter: int, tol: float
) -> list[float]:
    """Hunter's MM iteration without a prior, scaled to a geometric mean of 1."""
    neighbours: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, count in games:
        neighbours[i].append((j, count))
        neighbours[j].append((i, count))
    s = [1.0] * n
    for _ in range(max_iter):
        fresh = []
        for i in range(n):
            denominator = sum(count / (s[i] + s[j]) for j, count in neighbours[i])
            fresh.append(wins[i] / denominator if denominator > 0 else s[i])
        positive = [v for v in fresh if v > 0]
        if positive:
            scale = math.exp(sum(math.log(v) for v in positive) / len(positive))
            fresh = [v / scale for v in fresh]
        change = max(
            abs(math.log(max(a, 1e-300)) - math.log(max(b, 1e-300)))
            for a, b in zip(fresh, s, strict=True)
        )
        s = fresh
        if change < tol:
            break
    return s


def _inverse(matrix: list[list[float]]) -> list[list[float]] | None:
    """Gauss–Jordan inverse of a small symmetric positive definite matrix (None if singular)."""
    n = len(matrix)
    work = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(work[r][col]))
        if abs(work[pivot][col]) < 1e-15:
            return None
        work[col], work[pivot] = work[pivot], work[col]
        lead = work[col][col]
        work[col] = [v / lead for v in work[col]]
        for r in range(n):
            if r != col and work[r][col]:
                factor = work[r][col]
                work[r] = [a - factor * b for a, b in zip(work[r], work[col], strict=True)]
    return [row[n:] for row in work]


def log_strength_errors(
    pairs: Sequence[PairCount], strengths: Mapping[str, float], prior: float = DEFAULT_PRIOR
) -> dict[str, float]:
    """Standard error of ln(s) per model (needs `prior` > 0: the reference pins the scale)."""
    if prior <= 0 or not strengths:
        return {}
    models = sorted(strengths)
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    info = [[0.0] * n for _ in range(n)]
    for i, model in enumerate(models):
        p = strengths[model] / (strengths[model] + 1.0)
        info[i][i] += prior * p * (1.0 - p)
    for pair in merge_pairs(pairs):
        i, j = index[pair.a], index[pair.b]
        si, sj = strengths[pair.a], strengths[pair.b]
        weight = pair.games * si * sj / (si + sj) ** 2
        info[i][i] += weight
        info[j][j] += weight
        info[i][j] -= weight
        info[j][i] -= weight
    inverse = _inverse(info)
    if inverse is None:
        return {}
    return {m: math.sqrt(max(0.0, inverse[index[m]][index[m]])) for m in models}


def elo(strength: float) -> float:
    return ELO_BASE + ELO_SCALE * math.log(strength)


def win_probability(strength: float) -> float:
    """Chance of beating the reference (an average model of the prior)."""
    return strength / (strength + 1.0)


def rows(
    pairs: Sequence[PairCount],
    ratings: Mapping[str, RatingCount],
    prior: float = DEFAULT_PRIOR,
) -> list[LeaderboardRow]:
    """The leaderboard, best first: one row per model with compares or ratings."""
    merged = merge_pairs(pairs)
    strengths = bradley_terry(merged, prior)
    errors = log_strength_errors(merged, strengths, prior)
    record: dict[str, list[float]] = {}  # model -> [wins, losses, ties, both_bad]
    for p in merged:
        a = record.setdefault(p.a, [0.0, 0.0, 0.0, 0.0])
        b = record.setdefault(p.b, [0.0, 0.0, 0.0, 0.0])
        a[0] += p.a_wins
        a[1] += p.b_wins
        b[0] += p.b_wins
        b[1] += p.a_wins
        for side in (a, b):
            side[2] += p.ties
            side[3] += p.both_bad
    out: list[LeaderboardRow] = []
    for model in sorted(set(record) | {m for m, r in ratings.items() if r.n}):
        won, lost, tied, bad = record.get(model, [0.0, 0.0, 0.0, 0.0])
        compares = won + lost + tied + bad
        score = low = high = None
        if model in strengths and strengths[model] > 0:
            theta = math.log(strengths[model])
            score = round(elo(strengths[model]), 1)
            if model in errors:
                half = Z95 * errors[model]
                low = round(ELO_BASE + ELO_SCALE * (theta - half), 1)
                high = round(ELO_BASE + ELO_SCALE * (theta + half), 1)
        rating = ratings.get(model, RatingCount())
        interval = rating.interval()
        out.append(
            {
                "rank": 0,
                "model": model,
                "bt_score": score,
                "bt_low": low,
                "bt_high": high,
                "compares": int(compares),
                "wins": int(won),
                "losses": int(lost),
                "ties": int(tied),
                "both_bad": int(bad),
                "win_rate": (won + (tied + bad) / 2) / compares if compares else None,
                "mean_rating": None if rating.mean is None else round(rating.mean, 3),
                "rating_low": None if interval is None else round(interval[0], 3),
                "rating_high": None if interval is None else round(interval[1], 3),
                "ratings": rating.n,
            }
        )
    out.sort(
        key=lambda r: (
            r["bt_score"] is None,
            -(r["bt_score"] or 0.0),
            r["mean_rating"] is None,
            -(r["mean_rating"] or 0.0),
            r["model"],
        )
    )
    for rank, row in enumerate(out, start=1):
        row["rank"] = rank
    return out
