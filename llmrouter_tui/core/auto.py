"""The model id `auto`: rank the candidates by evidence, explore now and then, explain the pick.

Pure apart from the evidence loader it is given: scoring, exploration and the explanation are
functions of the evidence (a snapshot of the summary tables, see core/evidence.py), the
candidates and a seeded random generator, so they are tested without a database.

Score of a candidate = weighted mean of four parts, each in [0, 1] (weights: `[auto] weights`,
default quality 0.5, reliability 0.25, speed 0.15, cost 0.1):

- quality: the user's 1–5 ratings (mapped to 0–1) and pairwise preferences (the
  Bradley–Terry chance of beating the reference model, see core/leaderboard.py), averaged by
  their numbers of votes together with `prior_votes` neutral votes (0.5), so one rating does
  not decide. When the request's template has at least `min_template_votes` votes (ratings
  and compares of any model for that template), the template's own votes count first: they
  are smoothed toward the model's global quality instead of toward neutral.
- reliability: attempts that answered in the last `window_days` days, over those that
  answered or failed (failures that are the caller's, such as a bad request, do not count),
  with a prior of 90 % over 5 attempts. Models whose circuit is open are not candidates.
- speed: 2000 / (2000 + t), t = mean of the recent p50 time to first token and p50 total
  latency in ms (replies the provider made, not cache hits); 0.5 without timings.
- cost: 0.001 / (0.001 + c), c = expected USD per reply: the model's recent mean tokens per
  reply (else the mean over all models, else 600 in / 400 out) at its current price;
  1 for free models, 0.5 for a model without a price.

Exploration: with probability `explore` the pick is not the best-ranked candidate but the one
that wins a Thompson draw among the others (quality and reliability drawn from Beta
posteriors, so candidates with little evidence win such draws more often). The rest of the
ranking is the fallback chain.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import AutoSettings
from .leaderboard import DEFAULT_PRIOR, PairCount, RatingCount, bradley_terry, merge_pairs
from .pricing import Price, format_usd

AUTO_MODEL = "auto"
SPEED_REF_MS = 2000.0
COST_REF_USD = 0.001
TYPICAL_TOKENS = (600, 400)  # prompt, completion: a reply's size before any evidence
RELIABILITY_PRIOR = (4.5, 0.5)  # pseudo-attempts that answered, failed: 90 % over 5
NEUTRAL = 0.5


def is_auto(model: object) -> bool:
    return isinstance(model, str) and model.strip() == AUTO_MODEL


@dataclass(frozen=True, slots=True)
class Recent:
    """One model's last `window_days` days, from the daily summary tables."""

    requests: int = 0
    ok: int = 0
    attempts_ok: int = 0
    attempts_failed: int = 0
    p50_ttft_ms: float | None = None
    p50_latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Evidence:
    """What auto knows: a snapshot of the summary tables (see core/evidence.py)."""

    recent: dict[str, Recent] = field(default_factory=dict)
    # Ratings per model, over every template; and per template id.
    ratings: dict[str, RatingCount] = field(default_factory=dict)
    template_ratings: dict[str, dict[str, RatingCount]] = field(default_factory=dict)
    # Compares over every template (merged per model pair); and per template id.
    pairs: list[PairCount] = field(default_factory=list)
    template_pairs: dict[str, list[PairCount]] = field(default_factory=dict)
    _bt: dict[str, tuple[dict[str, float], dict[str, int], dict[str, int]]] = field(
        default_factory=dict, repr=False
    )
    _typical: tuple[float, float] | None = field(default=None, repr=False)

    def template_votes(self, template_id: str) -> float:
        """Ratings and compares given for this template, all models together."""
        ratings = sum(r.n for r in self.template_ratings.get(template_id, {}).values())
        return ratings + sum(p.games for p in self.template_pairs.get(template_id, ()))

    def compares(
        self, template_id: str | None = None
    ) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
        """Bradley–Terry strengths (reference 1), compares and compares won, per model."""
        key = template_id or ""
        found = self._bt.get(key)
        if found is None:
            pairs = self.pairs if template_id is None else self.template_pairs.get(template_id, [])
            merged = merge_pairs(pairs)
            counts: dict[str, int] = {}
            wins: dict[str, int] = {}
            for p in merged:
                counts[p.a] = counts.get(p.a, 0) + int(p.games)
                counts[p.b] = counts.get(p.b, 0) + int(p.games)
                wins[p.a] = wins.get(p.a, 0) + int(p.a_wins)
                wins[p.b] = wins.get(p.b, 0) + int(p.b_wins)
            found = self._bt[key] = (bradley_terry(merged, DEFAULT_PRIOR), counts, wins)
        return found

    def typical_tokens(self) -> tuple[float, float]:
        """Mean prompt and completion tokens per ok reply, over every model (recent)."""
        found = self._typical
        if found is None:
            ok = sum(r.ok for r in self.recent.values())
            found = TYPICAL_TOKENS
            if ok:
                prompt = sum(r.prompt_tokens for r in self.recent.values())
                completion = sum(r.completion_tokens for r in self.recent.values())
                found = (prompt / ok, completion / ok)
            self._typical = found
        return found


@dataclass(frozen=True, slots=True)
class Option:
    """A model auto may choose (resolved, with a key, able to honour the request)."""

    model: str
    provider: str
    price: Price | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """One candidate's score and the evidence behind it."""

    model: str
    total: float
    quality: float
    reliability: float
    speed: float
    cost: float
    quality_votes: float  # ratings + compares behind `quality` (in `scope`)
    scope: str | None  # the template id whose own votes counted first, else None
    mean_rating: float | None
    ratings: int
    compares: int
    wins: int  # compares this model's reply was preferred in
    win_rate: float | None  # Bradley–Terry chance of beating the reference model
    attempts: int  # recent attempts that answered or failed
    ok_rate: float | None  # of those, the share that answered
    p50_latency_ms: float | None
    p50_ttft_ms: float | None
    expected_cost_usd: float | None  # per reply; None: no price
    free: bool

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Choice:
    """Auto's decision: the ranking (the pick first, then the fallback chain) and why."""

    ranking: tuple[Score, ...]
    explored: bool  # the pick is an exploration, not the best-ranked candidate
    reason: str

    @property
    def pick(self) -> Score:
        return self.ranking[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "pick": self.pick.model,
            "explored": self.explored,
            "reason": self.reason,
            "ranking": [s.as_dict() for s in self.ranking],
        }


def _blend(
    rating: RatingCount | None, win: float | None, compares: int, k: float, prior: float
) -> tuple[float, float]:
    """Quality from ratings (1–5 → 0–1) and compares, smoothed by k votes of `prior`."""
    votes = k
    total = k * prior
    if rating is not None and rating.n:
        total += (rating.total - rating.n) / 4.0  # sum of (r - 1) / 4
        votes += rating.n
    if win is not None and compares:
        total += compares * win
        votes += compares
    return total / votes, votes - k


def _quality(
    model: str, evidence: Evidence, template_id: str | None, settings: AutoSettings
) -> tuple[float, float, str | None, RatingCount | None, int, int, float | None]:
    k = settings.prior_votes
    strengths, counts, wins = evidence.compares()
    win = strengths[model] / (strengths[model] + 1.0) if model in strengths else None
    rating = evidence.ratings.get(model)
    quality, votes = _blend(rating, win, counts.get(model, 0), k, NEUTRAL)
    compares, won = counts.get(model, 0), wins.get(model, 0)
    scope = None
    if template_id is not None and evidence.template_votes(template_id) >= max(
        1, settings.min_template_votes
    ):
        t_strengths, t_counts, t_wins = evidence.compares(template_id)
        t_win = t_strengths[model] / (t_strengths[model] + 1.0) if model in t_strengths else None
        t_rating = evidence.template_ratings.get(template_id, {}).get(model)
        t_compares = t_counts.get(model, 0)
        if (t_rating is not None and t_rating.n) or t_compares:
            quality, votes = _blend(t_rating, t_win, t_compares, k, quality)
            rating, compares, win, scope = t_rating, t_compares, t_win, template_id
            won = t_wins.get(model, 0)
    return quality, votes, scope, rating, compares, won, win


def _p50(recent: Recent) -> float | None:
    values = [v for v in (recent.p50_ttft_ms, recent.p50_latency_ms) if v is not None]
    return sum(values) / len(values) if values else None


def _expected_cost(option: Option, recent: Recent, typical: tuple[float, float]) -> float | None:
    price = option.price
    if price is None:
        return None
    if price.free:
        return 0.0
    if recent.ok >= 5:
        typical = (recent.prompt_tokens / recent.ok, recent.completion_tokens / recent.ok)
    return (typical[0] * price.input + typical[1] * price.output) / 1_000_000


def _weights(settings: AutoSettings) -> tuple[float, float, float, float]:
    w = settings.weights
    return (
        float(w.get("quality", 0.0)),
        float(w.get("reliability", 0.0)),
        float(w.get("speed", 0.0)),
        float(w.get("cost", 0.0)),
    )


def _total(parts: tuple[float, float, float, float], weights: Sequence[float]) -> float:
    mass = sum(weights)
    return sum(p * w for p, w in zip(parts, weights, strict=True)) / mass if mass else 0.0


def score(
    option: Option, evidence: Evidence, settings: AutoSettings, template_id: str | None = None
) -> Score:
    """One candidate's score (see the module docstring)."""
    recent = evidence.recent.get(option.model, Recent())
    quality, votes, scope, rating, compares, won, win = _quality(
        option.model, evidence, template_id, settings
    )
    good, bad = RELIABILITY_PRIOR
    tries = recent.attempts_ok + recent.attempts_failed
    reliability = (recent.attempts_ok + good) / (tries + good + bad)
    t = _p50(recent)
    speed = NEUTRAL if t is None else SPEED_REF_MS / (SPEED_REF_MS + t)
    expected = _expected_cost(option, recent, evidence.typical_tokens())
    cost = NEUTRAL if expected is None else COST_REF_USD / (COST_REF_USD + expected)
    parts = (quality, reliability, speed, cost)
    return Score(
        model=option.model,
        total=_total(parts, _weights(settings)),
        quality=quality,
        reliability=reliability,
        speed=speed,
        cost=cost,
        quality_votes=votes,
        scope=scope,
        mean_rating=rating.mean if rating is not None else None,
        ratings=rating.n if rating is not None else 0,
        compares=compares,
        wins=won,
        win_rate=win,
        attempts=tries,
        ok_rate=recent.attempts_ok / tries if tries else None,
        p50_latency_ms=recent.p50_latency_ms,
        p50_ttft_ms=recent.p50_ttft_ms,
        expected_cost_usd=expected,
        free=option.price is not None and option.price.free,
    )


def rank(
    options: Sequence[Option],
    evidence: Evidence,
    settings: AutoSettings,
    template_id: str | None = None,
    budget_left_usd: float | None = None,
) -> list[Score]:
    """Candidates best first (ties keep the given order). With `budget_left_usd`, paid
    candidates whose expected reply costs more than what is left go last."""
    scores = [score(option, evidence, settings, template_id) for option in options]

    def key(indexed: tuple[int, Score]) -> tuple[bool, float, int]:
        position, s = indexed
        over = (
            budget_left_usd is not None
            and not s.free
            and (s.expected_cost_usd is None or s.expected_cost_usd > budget_left_usd)
        )
        return over, -s.total, position

    return [s for _, s in sorted(enumerate(scores), key=key)]


def _beta(rng: random.Random, mean: float, weight: float) -> float:
    mean = min(max(mean, 1e-6), 1 - 1e-6)
    return rng.betavariate(mean * weight, (1.0 - mean) * weight)


def _thompson(s: Score, settings: AutoSettings, rng: random.Random) -> float:
    """One draw of the candidate's score: quality and reliability from their posteriors."""
    quality = _beta(rng, s.quality, s.quality_votes + settings.prior_votes)
    good, bad = RELIABILITY_PRIOR
    reliability = _beta(rng, s.reliability, s.attempts + good + bad)
    return _total((quality, reliability, s.speed, s.cost), _weights(settings))


def choose(
    options: Sequence[Option],
    evidence: Evidence,
    settings: AutoSettings,
    rng: random.Random,
    template_id: str | None = None,
    budget_left_usd: float | None = None,
) -> Choice:
    """Rank the candidates, explore with probability `settings.explore`, explain the pick."""
    if not options:
        raise ValueError("auto needs at least one candidate")
    ranking = rank(options, evidence, settings, template_id, budget_left_usd)
    explored = False
    if len(ranking) > 1 and settings.explore > 0 and rng.random() < settings.explore:
        others = ranking[1:]
        draws = [_thompson(s, settings, rng) for s in others]
        picked = others[max(range(len(others)), key=draws.__getitem__)]
        ranking.remove(picked)
        ranking.insert(0, picked)
        explored = True
    return Choice(tuple(ranking), explored, explain(ranking[0], explored))


def _seconds(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 100 else f"{ms / 1000:.1f} s"


def explain(s: Score, explored: bool = False) -> str:
    """ "auto → gemini-3.5-flash: rated 4.4 (n=23), p50 0.8 s, 99% ok, $0.0004"."""
    parts: list[str] = []
    where = f" for {s.scope}" if s.scope else ""
    if s.ratings and s.mean_rating is not None:
        parts.append(f"rated {s.mean_rating:.1f}{where} (n={s.ratings})")
    if s.compares:
        parts.append(f"won {s.wins} of {s.compares} compares{where}")
    if not parts:
        parts.append("not rated yet")
    if s.p50_latency_ms is not None:
        parts.append(f"p50 {_seconds(s.p50_latency_ms)}")
    if s.ok_rate is not None:
        parts.append(f"{math.floor(s.ok_rate * 100):.0f}% ok")
    if s.p50_latency_ms is None and s.ok_rate is None:
        parts.append("no recent requests")
    parts.append(format_usd(s.expected_cost_usd))
    head = f"auto → {s.model}"
    if explored:
        head += f" (exploring: {s.quality_votes:.0f} votes, {s.attempts} recent attempts)"
    return f"{head}: {', '.join(parts)}"


class AutoChooser:
    """Auto for one router: evidence read through `load` (at most every `refresh_s`, and
    again whenever `version()` changes, e.g. after a rating), random numbers from one
    generator (seeded by `[auto] seed`)."""

    def __init__(
        self,
        settings: AutoSettings,
        load: Callable[[int], Evidence] | None = None,
        version: Callable[[], int] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._load = load
        self._version = version
        self._clock = clock
        self.rng = rng if rng is not None else random.Random(settings.seed)
        self._evidence: Evidence | None = None
        self._loaded_at = 0.0
        self._loaded_version: int | None = None

    def evidence(self) -> Evidence:
        """The current snapshot, reloaded when stale."""
        version = self._version() if self._version is not None else None
        if (
            self._evidence is None
            or version != self._loaded_version
            or self._clock() - self._loaded_at >= self.settings.refresh_s
        ):
            self._evidence = (
                self._load(self.settings.window_days) if self._load is not None else Evidence()
            )
            self._loaded_at = self._clock()
            self._loaded_version = version
        return self._evidence

    def choose(
        self,
        options: Sequence[Option],
        template_id: str | None = None,
        budget_left_usd: float | None = None,
    ) -> Choice:
        return choose(
            options, self.evidence(), self.settings, self.rng, template_id, budget_left_usd
        )


def merge_capabilities(tables: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What `auto` can honour: a capability any candidate has (for the model list)."""
    out: dict[str, Any] = {}
    for table in tables:
        for name, value in table.items():
            if isinstance(value, list):
                merged = list(out.get(name) or [])
                out[name] = merged + [v for v in value if v not in merged]
            else:
                out[name] = bool(out.get(name)) or bool(value)
    return out
