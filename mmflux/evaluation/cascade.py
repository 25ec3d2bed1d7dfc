"""A per-video adaptive token budget at test time: the budget cascade.

Why: one budget for every video spends as many tokens on an easy clip as on a
hard one. The cascade runs budgets in ascending order and lets a video leave
("exit") as soon as a rule says its answer is good enough, so only the videos
that stay run the next budget. Each video is decoded once at the cascade's grid
and its patch embeddings and selector scores are computed once
(``backbone.embed_patches``); every stage selects its budget from them
(``backbone.forward_embedded``), so a stage costs only its blocks and head.

Exit rules (``rule``), each a statistic compared with the stage's threshold
(a video exits stage k when ``statistic >= thresholds[k]``; the last stage
answers every video that reaches it):

``confidence``
    top-1 of the view-averaged probability at the stage's temperature
    (``mean_v softmax(logits_v / T_k)``).
``margin``
    top-1 minus top-2 of that probability.
``view_agreement``
    share of views whose own top class is the video's predicted class.
``budget_agreement``
    the calibrated top-1 probability when the prediction equals the previous
    stage's, else never (the first stage never exits).
``motion``
    a content rule read before any block runs: the share of the selector's
    change-score mass (how much of the clip moves) that the stage's kept tokens
    cover, averaged over views. It is known for every stage from the embedding,
    so a video runs only the first stage whose coverage reaches its threshold.

The thresholds and temperatures are calibrated on the selection split
(:func:`search_cascades`, run by ``tools/token_optimize.py --cascade``) and stored
in the plan; the Token Optimization switch (``token_optimization.cascade``) puts
the cascade into ``model.test_cfg.cascade``, from which the recognizer builds it
through the ``TASK_UTILS`` registry.
"""
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from mmaction.registry import TASK_UTILS
from ..models.backbone_output import PatchEmbedding

#: the exit rules, in the order reports list them
RULES = ('confidence', 'margin', 'view_agreement', 'budget_agreement', 'motion')
#: how a plan names the cascade kind of ``model.test_cfg.cascade``
CASCADE_TYPE = 'BudgetCascade'


# ------------------------------------------------------------------ statistics
def calibrated_probs(view_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(N, K) view-averaged probability of (N, V, K) logits at ``temperature``."""
    return F.softmax(view_logits.float() / temperature, dim=-1).mean(dim=1)


def budget_coverage(scores: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """(B,) share of the score mass of (B, G, S) group scores kept by ``counts[g]``
    top tokens of each group (the selector's own counting); 1 when nothing is dropped."""
    ordered = scores.float().sort(dim=-1, descending=True).values
    kept = sum(ordered[:, g, :k].sum(dim=-1) for g, k in enumerate(counts))
    total = ordered.sum(dim=(1, 2))
    return torch.where(total > 0, kept / total.clamp_min(1e-12), torch.ones_like(total))


def stage_statistic(rule: str, view_logits: torch.Tensor, predicted: torch.Tensor,
                    temperature: float = 1.0, previous: Optional[torch.Tensor] = None,
                    coverage: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(N,) exit statistic of one stage for N videos.

    ``view_logits`` (N, V, K); ``predicted`` (N,) the stage's predicted class (the
    head's own view averaging); ``previous`` (N,) the previous stage's predicted
    class (``budget_agreement``), None at the first stage; ``coverage`` (N,) for
    ``motion``.
    """
    if rule == 'motion':
        if coverage is None:
            raise ValueError("exit rule 'motion' needs the selector's coverage of the budget.")
        return coverage.float()
    probs = calibrated_probs(view_logits, temperature)
    if rule == 'confidence':
        return probs.max(dim=-1).values
    if rule == 'margin':
        top = probs.topk(min(2, probs.shape[-1]), dim=-1).values
        return top[:, 0] - (top[:, 1] if top.shape[-1] > 1 else 0)
    if rule == 'view_agreement':
        return (view_logits.argmax(dim=-1) == predicted[:, None]).float().mean(dim=1)
    if rule == 'budget_agreement':
        if previous is None:
            return torch.full(predicted.shape, -math.inf)
        conf = probs.max(dim=-1).values
        return torch.where(predicted == previous, conf, torch.full_like(conf, -math.inf))
    raise ValueError(f'exit rule {rule!r} is unknown; use one of {RULES}.')


def fit_temperature(view_logits: torch.Tensor, labels: torch.Tensor,
                    grid: Optional[Sequence[float]] = None) -> float:
    """The temperature of least NLL of the view-averaged probability (a grid search:
    the NLL of a mean of softmaxes has no closed-form minimum)."""
    grid = grid if grid is not None else np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    labels = labels.long()
    best, best_nll = 1.0, math.inf
    for t in grid:
        p = calibrated_probs(view_logits, float(t)).gather(1, labels[:, None])[:, 0]
        nll = float(-p.clamp_min(1e-12).log().mean())
        if nll < best_nll - 1e-12:
            best, best_nll = float(t), nll
    return best


# ------------------------------------------------------------------ the cascade
def _budget(value, where: str) -> Optional[int]:
    if value is None or (isinstance(value, str) and value.lower() in ('all', 'none')):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{where}={value!r}: a stage budget is a positive number of patch '
                         'tokens per view, or None / "all" for every token.')
    return value


@dataclass
class CascadeAnswer:
    """What the stage that answered a video saw and said."""
    stage: int
    budget: Optional[int]
    head: int
    num_tokens: int
    logits: torch.Tensor  # (V, K)
    confidence: float     # calibrated top-1 probability of the answering stage
    statistic: float      # the exit rule's statistic at the answering stage
    ran: Tuple[int, ...] = ()  # every stage the video ran
    tokens_run: int = 0        # tokens per view through the blocks, all stages run
    tokens: Optional[torch.Tensor] = None  # (V, prefix + K, C), when asked for
    kept: Optional[torch.Tensor] = None


@TASK_UTILS.register_module()
class BudgetCascade:
    """Budgets in ascending order with an exit rule; see the module docstring.

    Args:
        budgets: stage budgets (patch tokens per view), strictly ascending; None
            (or ``'all'``) for every token of the grid, last only. At least two.
        rule: one of :data:`RULES`.
        thresholds: one per stage but the last.
        temperatures: one per stage (or one for all); used by ``confidence``,
            ``margin`` and ``budget_agreement``.
    """

    def __init__(self, budgets: Sequence, rule: str = 'confidence',
                 thresholds: Sequence[float] = (), temperatures=1.0, **meta) -> None:
        where = 'token_optimization.cascade'
        if not isinstance(budgets, (list, tuple)) or len(budgets) < 2:
            raise ValueError(f'{where}.budgets={budgets!r}: a cascade needs two or more budgets in '
                             'ascending order, e.g. budgets=(32, 128); for one budget use '
                             'token_optimization.budget.')
        self.budgets = [_budget(b, f'{where}.budgets[{i}]') for i, b in enumerate(budgets)]
        if any(b is None for b in self.budgets[:-1]):
            raise ValueError(f'{where}.budgets={list(budgets)}: "all tokens" (None) can only be '
                             'the last stage.')
        ints = [b for b in self.budgets if b is not None]
        if any(a >= b for a, b in zip(ints, ints[1:])):
            raise ValueError(f'{where}.budgets={list(budgets)}: budgets must strictly ascend.')
        if rule not in RULES:
            raise ValueError(f'{where}.rule={rule!r}: use one of {RULES}.')
        self.rule = rule
        thresholds = list(thresholds)
        if len(thresholds) != len(self.budgets) - 1 or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) for t in thresholds):
            raise ValueError(f'{where}.thresholds={thresholds!r}: give one number per stage but '
                             f'the last ({len(self.budgets) - 1} for budgets {self.budgets}).')
        self.thresholds = [float(t) for t in thresholds]
        temps = [temperatures] * len(self.budgets) if isinstance(temperatures, (int, float)) \
            else list(temperatures)
        if len(temps) != len(self.budgets) or not all(
                isinstance(t, (int, float)) and t > 0 for t in temps):
            raise ValueError(f'{where}.temperatures={temperatures!r}: one positive number, or one '
                             f'per stage ({len(self.budgets)}).')
        self.temperatures = [float(t) for t in temps]
        self.meta = meta  # what the plan recorded (grid, val top-1, cost): reported, not used

    def as_dict(self) -> Dict:
        return dict(type=CASCADE_TYPE, budgets=list(self.budgets), rule=self.rule,
                    thresholds=list(self.thresholds), temperatures=list(self.temperatures))

    def __repr__(self) -> str:
        return (f'BudgetCascade(budgets={self.budgets}, rule={self.rule!r}, '
                f'thresholds={[round(t, 4) for t in self.thresholds]}, '
                f'temperatures={[round(t, 3) for t in self.temperatures]})')

    # -------------------------------------------------------------- pieces
    @staticmethod
    def embed(recognizer, views: torch.Tensor, chunk: int) -> PatchEmbedding:
        """Patch embeddings and selector scores of (B, C, T, H, W) views, once."""
        parts = [recognizer.backbone.embed_patches(p, with_scores=True)
                 for p in views.split(chunk)]
        scores = None if parts[0].scores is None else torch.cat([p.scores for p in parts])
        return PatchEmbedding(torch.cat([p.tokens for p in parts]), parts[0].grid, scores)

    @staticmethod
    def run_stage(recognizer, embedded: PatchEmbedding, rows: torch.Tensor,
                  budget: Optional[int], chunk: int):
        """Logits (n, K), head, kept count and backbone outputs of views ``rows``."""
        outs = [recognizer.backbone.forward_embedded(embedded.rows(r), budget)
                for r in rows.split(chunk)]
        head = recognizer.select_head(outs[0].num_kept)
        tokens = torch.cat([o.tokens for o in outs])
        kept = None if outs[0].kept is None else torch.cat([o.kept for o in outs])
        return recognizer.cls_head(tokens, head), head, outs[0].num_kept, tokens, kept

    @staticmethod
    def coverage(recognizer, embedded: PatchEmbedding, budget: Optional[int],
                 num_videos: int) -> torch.Tensor:
        """(N,) view-mean share of the selector's score mass the budget keeps."""
        if embedded.scores is None:
            selector = getattr(recognizer.backbone, 'selector', None)
            raise ValueError("token_optimization.cascade.rule='motion' reads the selector's "
                             f'change scores, but the selector {type(selector).__name__} has none; '
                             'fix: use GroupDynamicSelector or another exit rule.')
        t, h, w = embedded.grid
        if budget is None or budget >= t * h * w:
            return torch.ones(num_videos)
        counts = recognizer.backbone.selector.group_counts(t, h * w, budget)
        return budget_coverage(embedded.scores, counts).reshape(num_videos, -1).mean(dim=1)

    # -------------------------------------------------------------- running
    @torch.no_grad()
    def forward_videos(self, recognizer, inputs: torch.Tensor, num_videos: int,
                       keep_tokens: bool = False) -> List[CascadeAnswer]:
        """The answer of each of ``num_videos`` videos whose views are ``inputs``
        ((N, V, C, T, H, W) or (N * V, C, T, H, W), video-major), embedded once."""
        views = inputs.reshape((-1, ) + tuple(inputs.shape[-4:]))
        chunk = (recognizer.test_cfg or {}).get('max_testing_views') or views.shape[0]
        embedded = self.embed(recognizer, views, chunk)

        def run_stage(rows, budget):
            return self.run_stage(recognizer, embedded, rows, budget, chunk)

        def coverage(rows, budget):
            return self.coverage(recognizer, embedded.rows(rows), budget,
                                 len(rows) * num_videos // views.shape[0])

        return self.run(num_videos, views.shape[0] // num_videos, run_stage,
                        lambda logits, v: recognizer.cls_head.average_clip(logits, num_segs=v),
                        coverage if self.rule == 'motion' else None, keep_tokens)

    def run(self, num_videos: int, num_views: int, run_stage: Callable,
            average: Callable, coverage: Optional[Callable] = None,
            keep_tokens: bool = False) -> List[CascadeAnswer]:
        """The stage loop, for any way of running a budget on some views.

        ``run_stage(rows, budget)``: (logits (len(rows), K), head, kept count, tokens,
        kept) of the views ``rows`` (video-major rows of the N * V views);
        ``average(logits, V)``: the head's view average (its argmax is the predicted
        class); ``coverage(rows, budget)``: (n,) per-video coverage (``motion`` only).
        """
        V, last = num_views, len(self.budgets) - 1

        def rows_of(videos):
            return (videos[:, None] * V + torch.arange(V)).reshape(-1)

        if self.rule == 'motion':  # known before any block: each video runs one stage
            if coverage is None:
                raise ValueError("exit rule 'motion' needs the selector's scores, which this "
                                 'runner does not have; use another rule.')
            start = torch.full((num_videos, ), last)
            everyone = rows_of(torch.arange(num_videos))
            for k in reversed(range(last)):
                start[coverage(everyone, self.budgets[k]) >= self.thresholds[k]] = k
        answers: List[Optional[CascadeAnswer]] = [None] * num_videos
        ran: List[List[int]] = [[] for _ in range(num_videos)]
        tokens_run = [0] * num_videos
        pending = torch.arange(num_videos)
        previous = torch.full((num_videos, ), -1, dtype=torch.long)
        for k, budget in enumerate(self.budgets):
            run = (start == k).nonzero()[:, 0] if self.rule == 'motion' else pending
            if len(run) == 0:
                continue
            rows = rows_of(run)
            logits, head, kept_count, tokens, kept = run_stage(rows, budget)
            view_logits = logits.reshape(len(run), V, -1)
            predicted = average(logits, V).argmax(dim=-1)
            cover = coverage(rows, budget) if self.rule == 'motion' else None
            stat = stage_statistic(self.rule, view_logits, predicted, self.temperatures[k],
                                   previous[run] if k > 0 else None, cover)
            conf = calibrated_probs(view_logits, self.temperatures[k]).max(dim=-1).values
            for v in run.tolist():
                ran[v].append(k)
                tokens_run[v] += kept_count
            leave = torch.ones(len(run), dtype=torch.bool) if (
                k == last or self.rule == 'motion') else stat >= self.thresholds[k]
            for i in leave.nonzero()[:, 0].tolist():
                answers[int(run[i])] = CascadeAnswer(
                    stage=k, budget=budget, head=head, num_tokens=kept_count,
                    logits=view_logits[i], confidence=float(conf[i]), statistic=float(stat[i]),
                    ran=tuple(ran[int(run[i])]), tokens_run=tokens_run[int(run[i])],
                    tokens=tokens[i * V:(i + 1) * V] if keep_tokens and tokens is not None
                    else None,
                    kept=kept[i * V:(i + 1) * V] if keep_tokens and kept is not None else None)
            previous[run] = predicted
            pending = run[~leave]
        return answers

    def predict(self, recognizer, inputs: torch.Tensor, data_samples):
        """``recognizer.predict`` through the cascade: each sample's ``pred_score`` is
        the answering stage's, averaged over views by the head, and its metainfo
        says which budget answered, with how many tokens and what confidence."""
        answers = self.forward_videos(recognizer, inputs, len(data_samples))
        selector = getattr(recognizer.backbone, 'selector', None)
        grid = tuple(int(d) for d in inputs.shape[-3:])
        for sample, answer in zip(data_samples, answers):
            recognizer.cls_head.predict_by_feat(answer.logits, [sample])
            sample.set_metainfo(dict(
                token_budget=answer.budget, head=answer.head, num_tokens=answer.num_tokens,
                grid=grid, selector=type(selector).__name__ if selector else None,
                cascade_stage=answer.stage, cascade_budgets=tuple(self.budgets),
                cascade_rule=self.rule, confidence=answer.confidence,
                exit_statistic=answer.statistic, cascade_ran=answer.ran,
                tokens_run=answer.tokens_run))
        return data_samples


# ------------------------------------------------------------------ calibration
@dataclass
class CascadeTable:
    """Every budget's outputs on every video of a split at one grid: what calibration
    simulates cascades on, without running the model again.

    ``logits[b]`` (N, V, K) per-view logits at budget ``b`` (None: all tokens),
    ``scores[b]`` (N, K) the head's view-averaged score, ``coverage[b]`` (N,)
    the selector's coverage, ``num_tokens[b]`` kept tokens per view.
    """
    frames: int
    side: int
    labels: torch.Tensor
    budgets: List[Optional[int]]
    logits: Dict = field(default_factory=dict)
    scores: Dict = field(default_factory=dict)
    coverage: Dict = field(default_factory=dict)
    num_tokens: Dict = field(default_factory=dict)
    videos: List[str] = field(default_factory=list)

    def predicted(self, budget) -> torch.Tensor:
        return self.scores[budget].argmax(dim=-1)

    def top1(self, budget) -> float:
        return float((self.predicted(budget) == self.labels).float().mean())


@torch.no_grad()
def collect_table(recognizer, batches, budgets: Sequence, frames: int, side: int) -> CascadeTable:
    """Run every budget on every video of ``batches`` (packed test batches,
    ``data_preprocessor`` not yet applied), one embedding per video."""
    budgets = sorted(budgets, key=lambda b: math.inf if b is None else b)
    logits = {b: [] for b in budgets}
    scores = {b: [] for b in budgets}
    coverage = {b: [] for b in budgets}
    num_tokens, labels, videos = {}, [], []
    for batch in batches:
        data = recognizer.data_preprocessor(batch, False)
        samples = data['data_samples']
        n = len(samples)
        views = data['inputs'].reshape((-1, ) + tuple(data['inputs'].shape[-4:]))
        V = views.shape[0] // n
        chunk = (recognizer.test_cfg or {}).get('max_testing_views') or views.shape[0]
        embedded = BudgetCascade.embed(recognizer, views, chunk)
        rows = torch.arange(views.shape[0])
        for b in budgets:
            out, _, kept, _, _ = BudgetCascade.run_stage(recognizer, embedded, rows, b, chunk)
            logits[b].append(out.float().reshape(n, V, -1))
            scores[b].append(recognizer.cls_head.average_clip(out, num_segs=V).float())
            coverage[b].append(BudgetCascade.coverage(recognizer, embedded, b, n)
                               if embedded.scores is not None else torch.full((n, ), math.nan))
            num_tokens[b] = kept
        labels += [int(s.gt_label.reshape(-1)[0]) for s in samples]
        videos += [str(s.metainfo.get('filename', '?')) for s in samples]
    return CascadeTable(frames, side, torch.tensor(labels), budgets,
                        {b: torch.cat(v) for b, v in logits.items()},
                        {b: torch.cat(v) for b, v in scores.items()},
                        {b: torch.cat(v) for b, v in coverage.items()}, num_tokens, videos)


@dataclass
class StageCosts:
    """Cost per view of embedding a grid once and of each budget's stage after it
    (GMACs and, when measured, ms on this machine)."""
    embed_gmacs: float
    stage_gmacs: Dict
    embed_ms: Optional[float] = None
    stage_ms: Dict = field(default_factory=dict)

    def fixed(self, budget) -> Tuple[float, Optional[float]]:
        """(GMACs, ms) per view of a fixed budget: embed + its stage."""
        ms = None if self.embed_ms is None or budget not in self.stage_ms else \
            self.embed_ms + self.stage_ms[budget]
        return self.embed_gmacs + self.stage_gmacs[budget], ms


def table_statistic(table: CascadeTable, rule: str, budgets: Sequence, k: int,
                    temperature: float, cache: Optional[Dict] = None) -> torch.Tensor:
    """(N,) exit statistic of stage ``k`` of a cascade over ``budgets`` on every
    video of ``table`` (cached by what it depends on)."""
    cache = {} if cache is None else cache
    b = budgets[k]
    prev = budgets[k - 1] if k > 0 and rule == 'budget_agreement' else 'first'
    key = (rule, b, prev, temperature)
    if key not in cache:
        cache[key] = stage_statistic(rule, table.logits[b], table.predicted(b), temperature,
                                     None if prev == 'first' else table.predicted(prev),
                                     table.coverage.get(b))
    return cache[key]


def simulate(table: CascadeTable, cascade: BudgetCascade, costs: Optional[StageCosts] = None,
             statistics_cache: Optional[Dict] = None) -> Dict:
    """What ``cascade`` does on the videos of ``table``, without the model: the
    same statistics and exit tests as :meth:`BudgetCascade.forward_videos`.

    Returns ``stage`` (N,) answering stage, ``pred`` (N,), ``top1``, ``shares``
    (videos per stage), ``mean_tokens`` (tokens through the blocks per view, all
    stages run), ``gmacs`` / ``latency_ms`` (mean per view, with ``costs``).
    """
    budgets, last = cascade.budgets, len(cascade.budgets) - 1
    n = len(table.labels)
    cache = statistics_cache if statistics_cache is not None else {}

    def stat(k):
        return table_statistic(table, cascade.rule, budgets, k, cascade.temperatures[k], cache)

    stage = torch.full((n, ), last)
    ran = torch.zeros((len(budgets), n), dtype=torch.bool)
    if cascade.rule == 'motion':
        for k in reversed(range(last)):
            stage[stat(k) >= cascade.thresholds[k]] = k
        for k in range(len(budgets)):
            ran[k] = stage == k
    else:
        pending = torch.ones(n, dtype=torch.bool)
        for k in range(len(budgets)):
            ran[k] = pending
            if k < last:
                leave = pending & (stat(k) >= cascade.thresholds[k])
                stage[leave] = k
                pending &= ~leave
    preds = torch.stack([table.predicted(b) for b in budgets])  # (S, N)
    pred = preds.gather(0, stage[None])[0]
    counts = ran.sum(dim=1).tolist()
    tokens = [table.num_tokens[b] for b in budgets]
    out = dict(stage=stage, pred=pred, top1=float((pred == table.labels).float().mean()),
               shares=[float((stage == k).float().mean()) for k in range(len(budgets))],
               mean_tokens=sum(c * t for c, t in zip(counts, tokens)) / n)
    if costs is not None:
        out['gmacs'] = costs.embed_gmacs + sum(
            c * costs.stage_gmacs[b] for c, b in zip(counts, budgets)) / n
        if costs.embed_ms is not None and all(b in costs.stage_ms for b in budgets):
            out['latency_ms'] = costs.embed_ms + sum(
                c * costs.stage_ms[b] for c, b in zip(counts, budgets)) / n
    return out


def threshold_grid(values: torch.Tensor, steps: int = 20) -> List[float]:
    """Candidate thresholds: the statistic's quantiles on the selection split (plus one
    above its maximum, which sends every video on)."""
    finite = values[torch.isfinite(values)].float()
    if finite.numel() == 0:
        return [math.inf]
    qs = torch.quantile(finite, torch.linspace(0, 1, steps + 1)).tolist()
    return sorted(set(round(q, 6) for q in qs) | {math.inf})


def search_cascades(table: CascadeTable, costs: StageCosts, rules: Sequence[str] = RULES,
                    max_stages: int = 3, steps: int = 20,
                    temperatures: Optional[Dict] = None) -> List[Dict]:
    """Every cascade over ascending subsets of the table's budgets, each rule, and a
    grid of thresholds (quantiles of each stage's statistic), simulated on the table.

    Temperatures are fitted per budget on the table's labels (least NLL) unless
    given. Returns one dict per candidate: the cascade (``as_dict``), its simulated
    result (``top1``, ``gmacs``, ``latency_ms``, ``mean_tokens``, ``shares``).
    """
    budgets = table.budgets
    temps = dict(temperatures) if temperatures else {
        b: fit_temperature(table.logits[b], table.labels) for b in budgets}
    cache: Dict = {}
    out = []
    for size in range(2, max_stages + 1):
        for stages in itertools.combinations(budgets, size):
            for rule in rules:
                if rule == 'motion' and any(torch.isnan(table.coverage[b]).any()
                                            for b in stages[:-1]):
                    continue
                grids = [threshold_grid(table_statistic(table, rule, stages, k,
                                                        temps[stages[k]], cache), steps)
                         for k in range(size - 1)]
                for thresholds in itertools.product(*grids):
                    cascade = BudgetCascade(list(stages), rule, list(thresholds),
                                            [temps[b] for b in stages])
                    result = simulate(table, cascade, costs, cache)
                    out.append(dict(cascade=cascade.as_dict(), top1=result['top1'],
                                    gmacs=result.get('gmacs'),
                                    latency_ms=result.get('latency_ms'),
                                    mean_tokens=result['mean_tokens'], shares=result['shares']))
    return out


def pareto(candidates: Sequence[Dict], cost: str = 'gmacs', score: str = 'top1') -> List[Dict]:
    """Candidates no other beats on both ``cost`` (lower) and ``score`` (higher), by cost."""
    ranked = sorted((c for c in candidates if c.get(cost) is not None),
                    key=lambda c: (c[cost], -c[score]))
    front, best = [], -math.inf
    for c in ranked:
        if c[score] > best + 1e-12:
            front.append(c)
            best = c[score]
    return front


def choose_cascade(cascades: Sequence[Dict], max_gmacs: Optional[float] = None,
                   max_latency_ms: Optional[float] = None, min_top1: Optional[float] = None,
                   score: str = 'val_top1', where: str = 'the plan') -> Dict:
    """The cascade for a target: best ``score`` under ``max_gmacs`` / ``max_latency_ms``
    (ties to the cheaper), or the cheapest at ``min_top1`` or better; no target:
    the best ``score``."""
    if not cascades:
        raise ValueError(f'{where} has no cascades; calibrate them with tools/token_optimize.py '
                         '... --cascade (they are written into the plan).')
    fits = list(cascades)
    for key, limit in (('gmacs', max_gmacs), ('latency_ms', max_latency_ms)):
        if limit is None:
            continue
        measured = [c for c in fits if c.get(key) is not None]
        if not measured:
            raise ValueError(f'{where} has no {key} for its cascades; rerun the calibration '
                             + ('with --latency.' if key == 'latency_ms' else '.'))
        fits = [c for c in measured if c[key] <= limit]
        if not fits:
            cheapest = min(measured, key=lambda c: c[key])
            raise ValueError(f'No cascade in {where} meets {key} <= {limit}: the cheapest costs '
                             f'{cheapest[key]:.4g}; raise the limit or calibrate smaller budgets.')
    if min_top1 is not None:
        good = [c for c in fits if c[score] >= min_top1]
        if not good:
            best = max(fits, key=lambda c: c[score])
            raise ValueError(f'No cascade in {where} reaches {score} >= {min_top1}: the best '
                             f'reaches {best[score]:.4f}.')
        return min(good, key=lambda c: (c.get('gmacs') or 0, -c[score]))
    return max(fits, key=lambda c: (c[score], -(c.get('gmacs') or 0)))


# ------------------------------------------------------------------ costs
def _median_ms(call: Callable[[], None], runs: int, warmup: int) -> float:
    from ..utils.timing import time_call  # the repository's one timing harness
    return time_call(call, warmup=warmup, repeats=runs).median_ms


@torch.no_grad()
def stage_latencies(recognizer, frames: int, side: int, budgets: Sequence, runs: int = 10,
                    warmup: int = 3, device: str = 'cpu') -> Tuple[float, Dict]:
    """(embed ms, {budget: stage ms}) of one view (batch 1), median of ``runs``: the
    embedding with the selector's scores, then each budget's selection, blocks and
    head from that embedding, as the cascade runs them."""
    x = torch.randn(1, 3, frames, side, side, device=device)
    embed_ms = _median_ms(lambda: BudgetCascade.embed(recognizer, x, 1), runs, warmup)
    embedded = BudgetCascade.embed(recognizer, x, 1)
    rows = torch.arange(1)
    stage_ms = {b: _median_ms(lambda b=b: BudgetCascade.run_stage(recognizer, embedded, rows, b, 1),
                              runs, warmup) for b in budgets}
    return embed_ms, stage_ms


def stage_gmacs(recognizer, frames: int, side: int, budgets: Sequence) -> Tuple[float, Dict]:
    """(embed GMACs, {budget: stage GMACs}) of one view: a fixed budget's count minus
    its patch embedding, which the cascade pays once."""
    from ..utils.flops import count_macs
    embed, stages = None, {}
    for b in budgets:
        macs = count_macs(recognizer, frames, side, side, budget=b)
        embed = macs['breakdown']['patch_embed']
        stages[b] = macs['gmacs'] - embed
    return embed, stages


# ------------------------------------------------------------------ the switch
def resolve_cascade(value, settings: Dict) -> Dict:
    """The cascade of ``token_optimization.cascade`` as a plan entry: ``cascade`` (the
    ``model.test_cfg.cascade`` config) and, from a plan, ``frames``, ``side``,
    ``selector`` and what calibration measured.

    ``value``: True (the plan's cascade for the switch's ``max_gmacs`` /
    ``max_latency_ms`` / ``min_top1``, else its best on the selection split); a dict of targets
    (``min_top1``, ``max_gmacs``, ``max_latency_ms``) chosen from the plan; or
    an explicit cascade ``dict(budgets=..., rule=..., thresholds=...,
    temperatures=...)`` run at the config's (or the switch's) grid.
    """
    from .to_switch import TOPlan
    where = 'token_optimization.cascade'
    targets = dict(max_gmacs=settings.get('max_gmacs'),
                   max_latency_ms=settings.get('max_latency_ms'),
                   min_top1=settings.get('min_top1'))
    if isinstance(value, dict):
        value = dict(value)
        if 'budgets' in value:
            value.pop('type', None)
            cascade = BudgetCascade(**value)
            return dict(cascade=cascade.as_dict())
        unknown = sorted(set(value) - set(targets))
        if unknown:
            raise KeyError(f'{where} has unknown keys {unknown}: give budgets=(...), rule=..., '
                           f'thresholds=(...) for a cascade of your own, or targets '
                           f'{sorted(targets)} to choose one from the plan.')
        targets.update({k: v for k, v in value.items() if v is not None})
    elif value is not True and value not in ('plan', 'auto'):
        raise ValueError(f'{where}={value!r}: use True (the plan\'s cascade), a dict of '
                         'targets, or dict(budgets=..., rule=..., thresholds=...).')
    path = settings.get('plan')
    if not path:
        raise ValueError(f'{where}={value!r} chooses a calibrated cascade from a plan; fix: add '
                         'token_optimization.plan=PLAN (written by tools/token_optimize.py '
                         '--cascade), or give the cascade itself (budgets, rule, thresholds).')
    plan = TOPlan.load(path)
    entry = choose_cascade(plan.meta.get('cascades') or [], where=path, **targets)
    return dict(entry)


# ------------------------------------------------------------------ calibration run
def split_batches(cfg, ann_file: str, frames: int, side: int, batch_size: int = 4,
                  max_videos: Optional[int] = None):
    """Packed batches of a split's videos at a grid, with the config's test views
    (the views the cascade will run with); videos that failed to load are left out."""
    import copy

    from mmengine.runner import Runner

    from ..datasets.robust_dataset import FAILED_KEY
    from .grid_config import set_test_grid
    cfg = copy.deepcopy(cfg)
    set_test_grid(cfg, frames, side)
    loader = copy.deepcopy(cfg.test_dataloader)
    loader['dataset']['ann_file'] = ann_file
    if max_videos is not None:
        loader['dataset']['indices'] = max_videos
    loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False,
                  collate_fn=dict(type='pseudo_collate'))
    for batch in Runner.build_dataloader(loader):
        keep = [i for i, s in enumerate(batch['data_samples'])
                if not s.metainfo.get(FAILED_KEY, False)]
        if keep:
            yield dict(inputs=[batch['inputs'][i] for i in keep],
                       data_samples=[batch['data_samples'][i] for i in keep])


def calibrate(recognizer, cfg, ann_file: str, grids: Sequence[Tuple[int, int]],
              budgets: Sequence, rules: Sequence[str] = RULES, max_stages: int = 3,
              latency: bool = False, latency_runs: int = 10, max_videos: Optional[int] = None,
              device: str = 'cpu') -> Tuple[List[Dict], List[Dict]]:
    """Cascades calibrated on the split ``ann_file`` at each grid, and the fixed
    budgets on the same videos for comparison.

    Per grid: every budget below the grid's token count (and None: all tokens, if
    listed) runs on every video once (:func:`collect_table`), temperatures are
    fitted per budget, and every cascade of :func:`search_cascades` is simulated.
    Returns ``(candidates, fixed)``; each entry names its grid (``frames``,
    ``side``), ``selector``, ``val_top1``, mean ``gmacs`` / ``latency_ms`` /
    ``mean_tokens`` per view, and for cascades the ``cascade`` and ``shares``.
    """
    selector = type(getattr(recognizer.backbone, 'selector', None)).__name__
    candidates, fixed = [], []
    for frames, side in grids:
        total = recognizer.backbone.num_tokens(frames, side, side)
        stages = [b for b in budgets if b is None or b < total]
        if len(stages) < 2:
            continue
        table = collect_table(recognizer, split_batches(cfg, ann_file, frames, side,
                                                        max_videos=max_videos),
                              stages, frames, side)
        embed, per_stage = stage_gmacs(recognizer, frames, side, table.budgets)
        costs = StageCosts(embed, per_stage)
        if latency:
            costs.embed_ms, costs.stage_ms = stage_latencies(recognizer, frames, side,
                                                             table.budgets, runs=latency_runs,
                                                             device=device)
        where = dict(frames=frames, side=side, selector=selector, num_videos=len(table.labels))
        for b in table.budgets:
            gmacs, ms = costs.fixed(b)
            fixed.append(dict(where, budget=b, val_top1=table.top1(b), gmacs=gmacs,
                              latency_ms=ms, mean_tokens=table.num_tokens[b]))
        for c in search_cascades(table, costs, rules, max_stages):
            candidates.append(dict(where, **c, val_top1=c.pop('top1')))
    return candidates, fixed


def cascade_front(candidates: Sequence[Dict]) -> List[Dict]:
    """The candidates on the GMACs or the latency Pareto front (selection top-1), leaving
    out cascades with a stage that answers no video (a fixed budget in disguise)."""
    candidates = [c for c in candidates if min(c['shares']) > 0]
    front = pareto(candidates, 'gmacs', 'val_top1') + pareto(candidates, 'latency_ms', 'val_top1')
    seen, out = set(), []
    for c in sorted(front, key=lambda c: c['gmacs']):
        key = id(c)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
