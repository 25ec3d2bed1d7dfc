"""Token Optimization: for a token budget, find the sampling grid that scores best.

For every budget, each candidate grid (frames x side) with at least as many
patch tokens as the budget is evaluated on a *selection* split with the selector
reducing it to the budget; the best grid is then reported on a separate
*evaluation* split, so the reported accuracy is never the maximum over the
split it is measured on. Plain grid reduction (fewer frames at the standard side,
no selection) is measured on the same evaluation split for comparison.

Every setting is scored by mmengine's :class:`~mmengine.evaluator.Evaluator` with
the project's metric (:class:`~mmflux.evaluation.RobustAccMetric`, top-1, failed
videos excluded and counted), and the best grid is picked by the Token
Optimization choice rule (:func:`~mmflux.evaluation.to_switch.choice_key`), the
same rule the plan uses. By default every video is decoded once per split for
all candidates (:class:`~mmflux.evaluation.decode_once.MultiGridDecoder`);
``decode_once=False`` runs each grid's own dataloader (the reference the
decode-once path must equal).
"""
import copy
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

from mmaction.registry import DATASETS
from ..utils.event_log import log_event
from ..utils.token_geometry import token_geometry
from .decode_once import MultiGridDecoder
from .grid_config import set_test_grid
from .robust_acc_metric import RobustAccMetric
from .to_switch import choice_key, swap_selector

#: the metric key of the score the search ranks by
TOP1_KEY = 'acc/top1'


@dataclass
class GridResult:
    """One evaluated setting."""
    budget: Optional[int]
    frames: int
    side: int
    selector: str
    split: str
    top1: float
    num_videos: int
    kept_tokens: int
    grid_tokens: int
    gmacs: Optional[float] = None
    method: str = 'to'
    latency_ms: Optional[float] = None
    num_failed: int = 0

    def as_dict(self) -> Dict:
        return asdict(self)


class Setting(NamedTuple):
    """What one evaluation runs: a grid, a budget (None: all tokens) and a selector.

    ``seed`` is passed to selectors that draw (``RandomSelector``): several seeds
    are several independent draws of the same setting.
    """
    frames: int
    side: int
    budget: Optional[int]
    selector: Optional[str]  # None: the model's own
    method: str = 'to'
    seed: int = 0


@dataclass
class BudgetChoice:
    budget: int
    selector: str
    candidates: List[GridResult] = field(default_factory=list)
    chosen: Optional[GridResult] = None
    reported: Optional[GridResult] = None


# ------------------------------------------------------------------ grids
# Every helper takes the geometry owner (the built backbone, or a TokenGeometry a
# tool built from its config) and counts tokens with its num_tokens: no patch or
# tubelet size is assumed here.
def _check_multiple(value: int, unit: int, unit_name: str, what: str) -> None:
    """Refuse ``value`` unless it is a positive multiple of ``unit``, naming the nearest one."""
    if value < unit or value % unit:
        near = max(unit, round(value / unit) * unit)
        raise ValueError(f'{what} {value} is not a multiple of the {unit_name} {unit}; use {near}.')


def check_side(side: int, geometry, what: str = 'side') -> None:
    """Refuse a side that is not a positive multiple of the patch, naming the nearest one."""
    _check_multiple(side, token_geometry(geometry).patch_size, 'patch size', what)


def check_frames(frames: int, geometry, what: str = 'frames') -> None:
    """Refuse a frame count that is not a positive multiple of the tubelet, naming the nearest."""
    _check_multiple(frames, token_geometry(geometry).tubelet_size, 'tubelet size', what)


def check_grid(frames: int, side: int, geometry, what: str = 'grid') -> None:
    """Refuse a grid the backbone cannot embed, naming the nearest that it can."""
    check_side(side, geometry, f'{what} {frames}x{side}: the side')
    check_frames(frames, geometry, f'{what} {frames}x{side}: frames')


def candidate_sides(side: int, geometry) -> List[int]:
    """Default candidate sides: the test side and -1, +1, +2 patches, all multiples of
    the patch size (the test side rounded to one first)."""
    patch = token_geometry(geometry).patch_size
    base = max(patch, round(side / patch) * patch)
    return sorted({base + k * patch for k in (-1, 0, 1, 2)} - {0})


def candidate_grids(budget: int, frames: Iterable[int], sides: Iterable[int], geometry,
                    max_ratio: float = 8.0) -> List[Tuple[int, int]]:
    """Grids whose token count is >= ``budget`` and at most ``max_ratio`` times it.

    Frame counts that are not a multiple of the tubelet are skipped; a side the
    backbone cannot embed is refused (:func:`check_grid` names the fix).
    """
    g = token_geometry(geometry)
    sides = list(sides)
    for s in sides:
        check_side(s, g, 'candidate side')
    grids = []
    for t in frames:
        if t % g.tubelet_size:
            continue
        for s in sides:
            n = g.num_tokens(t, s, s)
            if budget <= n <= max_ratio * budget:
                grids.append((int(t), int(s)))
    return sorted(grids)


def reduction_grid(budget: int, side: int, geometry, frames: Optional[Iterable[int]] = None,
                   shrink_side: bool = False) -> Optional[Tuple[int, int]]:
    """Plain grid reduction, the baseline of every report: the most frames at ``side``
    whose tokens fit the budget.

    ``frames``: the allowed frame counts (None: any multiple of the tubelet). When
    not even one tubelet fits at ``side``: None, or with ``shrink_side`` one
    tubelet at the largest smaller side (a multiple of the patch) that fits.
    """
    g = token_geometry(geometry)
    patch, tubelet = g.patch_size, g.tubelet_size
    check_side(side, g, 'grid-reduction side')
    if frames is None:
        per_tubelet = g.num_tokens(tubelet, side, side)
        count = budget // per_tubelet * tubelet
        fitting = [count] if count >= tubelet else []
    else:
        fitting = [t for t in frames if t % tubelet == 0 and g.num_tokens(t, side, side) <= budget]
    if fitting:
        return max(fitting), side
    if shrink_side:
        sides = [s for s in range(patch, side, patch) if g.num_tokens(tubelet, s, s) <= budget]
        if sides:
            return tubelet, max(sides)
    return None


def same_annotations(path_a: str, path_b: str) -> bool:
    """True when two annotation files are the same file or list the same videos."""
    if osp.abspath(path_a) == osp.abspath(path_b):
        return True
    with open(path_a) as fa, open(path_b) as fb:
        return sorted(line.split()[0] for line in fa if line.strip()) == \
            sorted(line.split()[0] for line in fb if line.strip())


def _meta(sample, key, default=None):
    return (getattr(sample, 'metainfo', None) or {}).get(key, default)


def top1_evaluator() -> Evaluator:
    """mmengine's evaluator with the project's metric, top-1 only: failed videos are
    excluded from the accuracy and counted (``acc/num_failed``)."""
    return Evaluator(RobustAccMetric(metric_list=('top_k_accuracy', ),
                                     metric_options=dict(top_k_accuracy=dict(topk=(1, )))))


class TokenOptimizer:
    """Evaluates grids and budgets with one model, in process.

    Args:
        cfg: the model's config (test pipeline/dataloader used as the template).
        model: a built recognizer with weights loaded.
        device: where to run.
        num_clips: temporal views per video during the search (1 keeps it fast).
        max_videos: evaluate at most this many videos per split (None: all).
        decode_once: decode each video once for all settings of a split.
        gmacs: ``gmacs(frames, side, budget)`` of a setting (e.g. from
            :func:`mmflux.utils.flops.count_macs`), filled into every candidate
            before the choice, whose tie-break (:func:`choice_key`) then matches the
            plan's; None: candidates tie on GMACs (ties go to fewer sampled tokens).
    """

    gmacs: Optional[Callable[[int, int, Optional[int]], float]] = None

    def __init__(self, cfg: Config, model: torch.nn.Module, device: str = 'cpu',
                 num_clips: Optional[int] = 1, max_videos: Optional[int] = None,
                 batch_size: int = 4, num_workers: int = 0, progress: bool = True,
                 decode_once: bool = True,
                 gmacs: Optional[Callable[[int, int, Optional[int]], float]] = None) -> None:
        self.cfg = cfg
        self.model = model.to(device).eval()
        self.device = device
        self.num_clips = num_clips
        self.max_videos = max_videos
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self.decode_once = decode_once
        self.gmacs = gmacs
        # the backbone owns the token geometry (TypeError naming it when it has none)
        self.geometry = token_geometry(model.backbone)
        self.predictions: List[Dict] = []  # one row per (video, setting), for audits
        self._selectors = {}
        self._own_selector = getattr(model.backbone, 'selector', None)

    # --------------------------------------------------------------- pieces
    def set_selector(self, selector: Optional[str], seed: int = 0) -> None:
        """Use ``selector`` (a registered type) with every argument of the model's own
        selector (:func:`~mmflux.evaluation.to_switch.swap_selector`; ``seed`` for the
        random one); None: the model's own selector, as its config built it."""
        swap_selector(self.model, self._own_selector)
        if selector is None:
            return
        key = (selector, seed)
        if key in self._selectors:
            swap_selector(self.model, self._selectors[key])
        else:
            self._selectors[key] = swap_selector(self.model, selector, seed=seed)

    def _loader_cfg(self, ann_file: str, frames: Optional[int] = None,
                    side: Optional[int] = None) -> Dict:
        cfg = copy.deepcopy(self.cfg)
        set_test_grid(cfg, frames, side, num_clips=self.num_clips)
        loader = copy.deepcopy(cfg.test_dataloader)
        loader['dataset']['ann_file'] = ann_file
        if self.max_videos is not None:
            loader['dataset']['indices'] = self.max_videos
        loader.update(batch_size=self.batch_size, num_workers=self.num_workers,
                      persistent_workers=False, collate_fn=dict(type='pseudo_collate'))
        return loader

    def _run(self, batch: Dict, setting: Setting) -> List:
        self.set_selector(setting.selector, setting.seed)
        self.model.test_cfg = dict(self.model.test_cfg or {}, token_budget=setting.budget, head=None)
        with torch.no_grad():
            return self.model.test_step(batch)

    def _evaluated(self, setting: Setting, split: str, evaluator: Evaluator, size: int,
                   kept: int, not_decoded: int, ann_file: str) -> GridResult:
        """The setting's result from its evaluator (``size`` samples processed);
        ``not_decoded`` videos never reached the model (decode-once failures)."""
        metrics = evaluator.evaluate(size)
        return self._result(setting, split, float(metrics[TOP1_KEY]),
                            int(metrics['acc/num_evaluated']), kept,
                            int(metrics['acc/num_failed']) + not_decoded, ann_file)

    def _result(self, setting: Setting, split: str, top1: float, total: int, kept: int,
                failed: int, ann_file: str) -> GridResult:
        if total == 0:
            raise ValueError(f'{ann_file} lists no videos that could be evaluated '
                             f'({failed} failed to load).')
        return GridResult(budget=setting.budget, frames=setting.frames, side=setting.side,
                          selector=setting.selector, split=split, top1=top1,
                          num_videos=total, kept_tokens=int(kept), method=setting.method,
                          grid_tokens=self.geometry.num_tokens(setting.frames, setting.side,
                                                               setting.side), num_failed=failed)

    def _record(self, sample, setting: Setting, split: str) -> None:
        """One row of the per-video audit (``predictions``)."""
        pred = int(sample.pred_score.argmax().item())
        label = int(sample.gt_label.reshape(-1)[0].item())
        self.predictions.append(dict(
            split=split, video=osp.basename(str(_meta(sample, 'filename', '?'))), label=label,
            pred=pred, score=round(float(sample.pred_score[pred]), 5), budget=setting.budget,
            frames=setting.frames, side=setting.side, selector=setting.selector,
            method=setting.method, seed=setting.seed, kept=_meta(sample, 'num_tokens')))

    # ------------------------------------------------------ evaluation paths
    def evaluate(self, ann_file: str, frames: int, side: int, budget: Optional[int],
                 selector: str, split: str, method: str = 'to') -> GridResult:
        """Top-1 (softmax-averaged views) of one setting on one split."""
        return self.evaluate_settings(ann_file, [Setting(frames, side, budget, selector, method)],
                                      split)[0]

    def evaluate_settings(self, ann_file: str, settings: Sequence[Setting],
                          split: str) -> List[GridResult]:
        """Top-1 of every setting on one split, in the order given."""
        if self.decode_once:
            return self._evaluate_decode_once(ann_file, settings, split)
        results = []
        for setting in settings:
            results.append(self._evaluate_per_grid(ann_file, setting, split))
        return results

    def _evaluate_per_grid(self, ann_file: str, setting: Setting, split: str) -> GridResult:
        """Reference path: the setting's own dataloader decodes every video."""
        loader = Runner.build_dataloader(self._loader_cfg(ann_file, setting.frames, setting.side))
        evaluator = top1_evaluator()
        kept = 0
        bar = ProgressBar(len(loader.dataset)) if self.progress else None
        index = 0  # the loader does not shuffle: its n-th sample is the dataset's n-th video
        for batch in loader:
            outputs = self._run(batch, setting)
            for sample in outputs:
                if _meta(sample, 'filename') is None:  # the packer keeps only its meta keys
                    info = loader.dataset.get_data_info(index)
                    sample.set_metainfo(dict(filename=info.get('filename', str(index))))
                index += 1
                if not _meta(sample, 'failed', False):
                    self._record(sample, setting, split)
                    kept = _meta(sample, 'num_tokens', kept)
                if bar is not None:
                    bar.update()
            evaluator.process(data_samples=outputs, data_batch=batch)
        if bar is not None:
            print_log('', logger='current')
        return self._evaluated(setting, split, evaluator, index, kept, 0, ann_file)

    def _evaluate_decode_once(self, ann_file: str, settings: Sequence[Setting],
                              split: str) -> List[GridResult]:
        """Each video decoded once; every setting evaluated from its frames."""
        settings = list(settings)
        dataset = DATASETS.build(self._loader_cfg(ann_file)['dataset'])
        decoder = MultiGridDecoder(self.cfg, [(s.frames, s.side) for s in settings],
                                   num_clips=self.num_clips)
        evaluators = [top1_evaluator() for _ in settings]
        stats = [[0, 0] for _ in settings]  # samples processed, kept tokens
        failed = 0
        bar = ProgressBar(len(dataset)) if self.progress else None
        for start in range(0, len(dataset), self.batch_size):
            packed = {}  # grid -> list of packed videos
            for index in range(start, min(start + self.batch_size, len(dataset))):
                info = dataset.get_data_info(index)
                try:
                    per_grid = decoder(info)
                except Exception as err:  # noqa: BLE001  (a bad video is counted, not fatal)
                    failed += 1
                    log_event(f'{split}: {info.get("filename", index)} could not be decoded and '
                              f'is left out of every setting: {type(err).__name__}: {err}')
                    continue
                for grid, item in per_grid.items():
                    # the packer keeps only its meta keys: name the video for the predictions
                    item['data_samples'].set_metainfo(dict(filename=info.get('filename', str(index))))
                    packed.setdefault(grid, []).append(item)
                if bar is not None:
                    bar.update()
            for i, setting in enumerate(settings):
                items = packed.get((setting.frames, setting.side))
                if not items:
                    continue
                batch = pseudo_collate(items)
                outputs = self._run(batch, setting)
                for sample in outputs:
                    self._record(sample, setting, split)
                    stats[i][0] += 1
                    stats[i][1] = _meta(sample, 'num_tokens', stats[i][1])
                evaluators[i].process(data_samples=outputs, data_batch=batch)
        if bar is not None:
            print_log('', logger='current')
        return [self._evaluated(s, split, e, n, k, failed, ann_file)
                for s, e, (n, k) in zip(settings, evaluators, stats)]

    # --------------------------------------------------------------- search
    def choose(self, budgets: Sequence[int], frames: Sequence[int], sides: Sequence[int],
               select_ann: str, selectors: Sequence[str] = ('GroupDynamicSelector', ),
               max_ratio: float = 8.0) -> List[BudgetChoice]:
        """The best grid per budget and selector, scored on ``select_ann`` only."""
        choices: List[BudgetChoice] = []
        candidates: List[Setting] = []
        counts: List[int] = []  # candidates per choice, in order
        for budget in budgets:
            grids = candidate_grids(budget, frames, sides, self.geometry, max_ratio)
            if not grids:
                raise ValueError(f'No candidate grid reaches {budget} tokens with frames {list(frames)} '
                                 f'and sides {list(sides)}; add larger frames/sides.')
            for selector in selectors:
                choices.append(BudgetChoice(budget=budget, selector=selector))
                candidates += [Setting(t, s, budget, selector) for t, s in grids]
                counts.append(len(grids))
        print_log(f'[TO] selection split {select_ann}: {len(candidates)} settings', logger='current')
        scored = iter(self.evaluate_settings(select_ann, candidates, 'select'))
        for choice, n in zip(choices, counts):
            choice.candidates = [next(scored) for _ in range(n)]
            if self.gmacs is not None:
                self.set_selector(None)  # counted with the model's own (deterministic) selector
                for r in choice.candidates:
                    r.gmacs = self.gmacs(r.frames, r.side, r.budget)
            # the plan's rule: most accurate, ties to fewer GMACs, then fewer sampled tokens
            choice.chosen = max(choice.candidates,
                                key=lambda r: choice_key(r.top1, r.gmacs, r.grid_tokens))
        return choices

    def search(self, budgets: Sequence[int], frames: Sequence[int], sides: Sequence[int],
               select_ann: str, eval_ann: str, selectors: Sequence[str] = ('GroupDynamicSelector', ),
               standard_side: Optional[int] = None, max_ratio: float = 8.0
               ) -> Tuple[List[BudgetChoice], List[GridResult]]:
        """Pick the best grid per budget and selector on ``select_ann``; report on ``eval_ann``.

        Returns the choices and the plain grid-reduction baselines.
        """
        if same_annotations(select_ann, eval_ann):
            raise ValueError(f'The selection split {select_ann} and the evaluation split {eval_ann} '
                             'list the same videos: Token Optimization must not choose on the '
                             'split it reports. Pass two different annotation files.')
        choices = self.choose(budgets, frames, sides, select_ann, selectors, max_ratio)
        standard_side = standard_side or max(sides)
        reported: List[Setting] = [Setting(c.chosen.frames, c.chosen.side, c.budget, c.selector)
                                   for c in choices]
        baselines: List[Tuple[int, Setting]] = []
        for budget in budgets:
            reduced = reduction_grid(budget, standard_side, self.geometry, frames)
            if reduced is not None:
                baselines.append((budget, Setting(reduced[0], reduced[1], None, selectors[0],
                                                  'grid_reduction')))
        print_log(f'[TO] evaluation split {eval_ann}: {len(reported) + len(baselines)} settings',
                  logger='current')
        results = self.evaluate_settings(eval_ann, reported + [s for _, s in baselines], 'eval')
        for choice, result in zip(choices, results):
            choice.reported = result
        base_results = results[len(reported):]
        for (budget, _), result in zip(baselines, base_results):
            result.budget = budget
        return choices, base_results
