"""Token Optimization: for a token budget, find the sampling grid that scores best.

For every budget, each candidate grid (frames x side) with at least as many
patch tokens as the budget is evaluated on a *selection* split with the selector
reducing it to the budget; the best grid is then reported on a separate
*evaluation* split, so the reported accuracy is never the maximum over the
split it is measured on. Plain grid reduction (fewer frames at the standard side,
no selection) is measured on the same evaluation split for comparison.
"""
import copy
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

from mmaction.registry import MODELS
from .test_grid import set_test_grid


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

    def as_dict(self) -> Dict:
        return asdict(self)


@dataclass
class BudgetChoice:
    budget: int
    selector: str
    candidates: List[GridResult] = field(default_factory=list)
    chosen: Optional[GridResult] = None
    reported: Optional[GridResult] = None


def grid_tokens(frames: int, side: int, patch_size: int = 14, tubelet_size: int = 1) -> int:
    """Patch tokens of a frames x side x side grid (before selection)."""
    return frames // tubelet_size * (side // patch_size)**2


def same_annotations(path_a: str, path_b: str) -> bool:
    """True when two annotation files are the same file or list the same videos."""
    if osp.abspath(path_a) == osp.abspath(path_b):
        return True
    with open(path_a) as fa, open(path_b) as fb:
        return sorted(line.split()[0] for line in fa if line.strip()) == \
            sorted(line.split()[0] for line in fb if line.strip())


def candidate_grids(budget: int, frames: Iterable[int], sides: Iterable[int],
                    patch_size: int = 14, max_ratio: float = 8.0,
                    tubelet_size: int = 1) -> List[Tuple[int, int]]:
    """Grids whose token count is >= ``budget`` and at most ``max_ratio`` times it."""
    grids = []
    for t in frames:
        if t % tubelet_size:
            continue
        for s in sides:
            n = grid_tokens(t, s, patch_size, tubelet_size)
            if budget <= n <= max_ratio * budget:
                grids.append((int(t), int(s)))
    return sorted(grids)


def reduction_grid(budget: int, side: int, frames: Iterable[int], patch_size: int = 14,
                   tubelet_size: int = 1) -> Optional[Tuple[int, int]]:
    """Plain grid reduction: the most frames at ``side`` whose tokens fit the budget."""
    fitting = [t for t in frames
               if t % tubelet_size == 0 and grid_tokens(t, side, patch_size, tubelet_size) <= budget]
    return (max(fitting), side) if fitting else None


class TokenOptimizer:
    """Evaluates grids and budgets with one model, in process.

    Args:
        cfg: the model's config (test pipeline/dataloader used as the template).
        model: a built recognizer with weights loaded.
        device: where to run.
        num_clips: temporal views per video during the search (1 keeps it fast).
        max_videos: evaluate at most this many videos per split (None: all).
    """

    def __init__(self, cfg: Config, model: torch.nn.Module, device: str = 'cpu',
                 num_clips: Optional[int] = 1, max_videos: Optional[int] = None,
                 batch_size: int = 4, num_workers: int = 0, progress: bool = True) -> None:
        self.cfg = cfg
        self.model = model.to(device).eval()
        self.device = device
        self.num_clips = num_clips
        self.max_videos = max_videos
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self.patch_size = getattr(model.backbone, 'patch_size', 14)
        self.tubelet_size = getattr(model.backbone, 'tubelet_size', 1)
        self._selectors = {}

    # --------------------------------------------------------------- pieces
    def set_selector(self, selector: str) -> None:
        if selector not in self._selectors:
            current = getattr(self.model.backbone, 'selector', None)
            exact = getattr(current, 'exact_count', False)
            self._selectors[selector] = MODELS.build(dict(type=selector, exact_count=exact))
        self.model.backbone.selector = self._selectors[selector].to(self.device)

    def _dataloader(self, ann_file: str, frames: int, side: int):
        cfg = copy.deepcopy(self.cfg)
        set_test_grid(cfg, frames, side, num_clips=self.num_clips)
        loader = copy.deepcopy(cfg.test_dataloader)
        loader['dataset']['ann_file'] = ann_file
        if self.max_videos is not None:
            loader['dataset']['indices'] = self.max_videos
        loader['batch_size'] = self.batch_size
        loader['num_workers'] = self.num_workers
        loader['persistent_workers'] = False
        loader['collate_fn'] = dict(type='pseudo_collate')
        return Runner.build_dataloader(loader)

    @torch.no_grad()
    def evaluate(self, ann_file: str, frames: int, side: int, budget: Optional[int],
                 selector: str, split: str, method: str = 'to') -> GridResult:
        """Top-1 (softmax-averaged views) of one grid at one budget on one split."""
        self.set_selector(selector)
        self.model.test_cfg = dict(self.model.test_cfg or {}, token_budget=budget, head=None)
        loader = self._dataloader(ann_file, frames, side)
        correct = total = kept = 0
        bar = ProgressBar(len(loader.dataset)) if self.progress else None
        for batch in loader:
            outputs = self.model.test_step(batch)
            for sample in outputs:
                correct += int(sample.pred_score.argmax().item() == int(sample.gt_label.item()))
                kept = sample.metainfo.get('num_tokens', kept)
                total += 1
                if bar is not None:
                    bar.update()
        if bar is not None:
            print_log('', logger='current')
        if total == 0:
            raise ValueError(f'{ann_file} lists no videos that could be evaluated.')
        return GridResult(budget=budget, frames=frames, side=side, selector=selector, split=split,
                          top1=correct / total, num_videos=total, kept_tokens=int(kept),
                          grid_tokens=grid_tokens(frames, side, self.patch_size,
                                                            self.tubelet_size), method=method)

    # --------------------------------------------------------------- search
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
        choices: List[BudgetChoice] = []
        baselines: List[GridResult] = []
        standard_side = standard_side or max(sides)
        for budget in budgets:
            grids = candidate_grids(budget, frames, sides, self.patch_size, max_ratio,
                                    self.tubelet_size)
            if not grids:
                raise ValueError(f'No candidate grid reaches {budget} tokens with frames {list(frames)} '
                                 f'and sides {list(sides)}; add larger frames/sides.')
            for selector in selectors:
                choice = BudgetChoice(budget=budget, selector=selector)
                for t, s in grids:
                    print_log(f'[TO] budget {budget} {selector}: selection split, grid {t}x{s}',
                              logger='current')
                    choice.candidates.append(self.evaluate(select_ann, t, s, budget, selector, 'select'))
                # ties: prefer fewer sampled tokens (cheaper patch embedding)
                choice.chosen = max(choice.candidates, key=lambda r: (r.top1, -r.grid_tokens))
                t, s = choice.chosen.frames, choice.chosen.side
                choice.reported = self.evaluate(eval_ann, t, s, budget, selector, 'eval')
                choices.append(choice)
            reduced = reduction_grid(budget, standard_side, frames, self.patch_size,
                                     self.tubelet_size)
            if reduced is not None:
                baselines.append(self.evaluate(eval_ann, reduced[0], reduced[1], None, selectors[0],
                                               'eval', method='grid_reduction'))
                baselines[-1].budget = budget
        return choices, baselines


def overrides_for(result: GridResult, cfg: Config) -> List[str]:
    """``--cfg-options`` strings that reproduce a chosen setting in the test config."""
    opts = [f'model.test_cfg.token_budget={result.budget}',
            f'model.backbone.selector.type={result.selector}']
    pipeline = cfg.test_dataloader['dataset']['pipeline']
    for i, step in enumerate(pipeline):
        prefix = f'test_dataloader.dataset.pipeline.{i}'
        if step.get('type') in ('FluxUniformSample', 'SSv2Sample', 'UniformSample', 'SampleFrames'):
            opts.append(f'{prefix}.clip_len={result.frames}')
        elif step.get('type') == 'Resize':
            opts.append(f'{prefix}.scale=(-1,{result.side})')
        elif step.get('type') in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
            opts.append(f'{prefix}.crop_size={result.side}')
    return opts
