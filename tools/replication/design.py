"""What the replication trains and how: datasets, pretraining arms, runs, schedules.

Why a module of its own: every number of the experiment's design (dataset sizes,
epochs, seeds, the runs and their overrides of the tiny recipe) is written here
once; the pipeline and the report read it. Configs are the tiny recipe merged with
a run's overrides through mmengine's ``Config`` (no config source is written by
hand).
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')
FRACTIONS = ('1', '1/2', '1/4', '1/8')


class DatasetSize(NamedTuple):
    """One generated dataset (``tools/generate_synthetic_data.py``)."""
    train: int
    val: int
    test: int
    classes: int
    seed: int  # the rendering seed: another seed renders other videos

    def generator_args(self) -> List[str]:
        return ['--num-train', str(self.train), '--num-val', str(self.val), '--num-test',
                str(self.test), '--num-classes', str(self.classes), '--seed', str(self.seed)]


#: the one owner of the dataset sizes: the fine-tuning task (6 classes) and the
#: pretraining task (all nine motion classes, rendered from another seed)
DATASETS = {
    ('finetune', False): DatasetSize(1200, 300, 1000, 6, 0),
    ('finetune', True): DatasetSize(48, 24, 24, 4, 0),
    ('pretrain', False): DatasetSize(1200, 180, 9, 9, 1),
    ('pretrain', True): DatasetSize(48, 24, 9, 9, 1),
}


class Schedule(NamedTuple):
    """Epochs and seeds of one replication (``quick``: the CI version)."""
    epochs: int
    pretrain_epochs: int
    seeds: Tuple[int, ...]
    val_interval: int  # epochs between validations: the convergence curve of every run


#: full: 5 seeds. The epoch counts are provisional until the pilot's curves (fixed-grid
#: pretraining and fine-tuning, validated every epoch) show where top-1 stops improving;
#: docs/replication_v3.md states the pilot and the compute arithmetic
SCHEDULES = {False: Schedule(epochs=16, pretrain_epochs=24, seeds=(0, 1, 2, 3, 4), val_interval=2),
             True: Schedule(epochs=1, pretrain_epochs=1, seeds=(0, 1), val_interval=1)}


@dataclass(frozen=True)
class RunSpec:
    """One training method: overrides of the tiny recipe (dotted keys or nested dicts)."""
    label: str
    overrides: Dict = field(default_factory=dict)
    train_budgets: Optional[Tuple[int, ...]] = None  # None: the recipe's (Flux-Multi)
    align: bool = True
    flexible: bool = True  # Flux sampling of the grid
    vit: bool = False  # MMAction2's VisionTransformer wrapped by SelectiveVisionTransformer
    pretrain: str = 'fixed'  # the pretraining arm it fine-tunes: 'fixed' or 'flux'
    matched_to: Optional[str] = None  # trained for the token-passes of this run
    core: bool = True  # core runs go first and get every seed

    def as_dict(self, budgets: Tuple[int, ...]) -> Dict:
        return dict(label=self.label, align=self.align, flexible=self.flexible, vit=self.vit,
                    pretrain=self.pretrain, matched_to=self.matched_to, core=self.core,
                    train_budgets=list(budgets))


class Design:
    """The experiment, read from the tiny recipe: its grid, budgets and runs."""

    def __init__(self, quick: bool = False, **schedule) -> None:
        """``schedule``: overrides of :data:`SCHEDULES` (e.g. a pilot's ``epochs=30,
        val_interval=1``); None values keep the design's."""
        self.quick = quick
        self.base = Config.fromfile(BASE_CONFIG)
        backbone = self.base.model.backbone
        self.patch, self.tubelet = backbone.patch_size, backbone.tubelet_size
        self.frames, self.side = self.base.test_frames, self.base.test_side  # the standard grid
        self.base_tokens = self.num_tokens(self.frames, self.side)  # 256
        self.budgets = {f: self.base_tokens // int(f.split('/')[-1]) for f in FRACTIONS}
        self.multi_budgets = tuple(self.base.model.train_cfg.budgets)
        self.schedule = SCHEDULES[quick]._replace(**{k: v for k, v in schedule.items() if v is not None})
        self.to_frames = (2, 4, 8) if quick else (2, 4, 8, 12, 16)
        self.to_sides = (42, 56, 70)

    def num_tokens(self, frames: int, side: int) -> int:
        return (frames // self.tubelet) * (side // self.patch) ** 2

    def dataset(self, task: str) -> DatasetSize:
        return DATASETS[(task, self.quick)]

    # ------------------------------------------------------------------ runs
    def runs(self) -> Dict[str, RunSpec]:
        full = self.base_tokens
        fixed = {'train_dataloader.batch_sampler': dict(
            type='FluxBatchSampler', frames=self.frames, sides=self.side, token_window=None)}

        def single(budget):
            return {'model.cls_head.head_budgets': (budget, ), 'model.train_cfg.budgets': (budget, ),
                    'model.train_cfg.heads': (0, )}

        grid = f'{self.frames}x{self.side}'
        multi = f'×{sum(self.multi_budgets) / full:.2f} epochs'
        specs = dict(
            fixed=RunSpec(f'fixed {grid}', dict(single(full), **fixed), (full, ), False, False),
            fixed_cm=RunSpec(f'fixed {grid}, compute-matched ({multi})', dict(single(full), **fixed),
                             (full, ), False, False, matched_to='flux_multi'),
            flux_single=RunSpec(f'Flux-Single ({full})', single(full), (full, ), False),
            flux_single_cm=RunSpec(f'Flux-Single ({full}), compute-matched ({multi})', single(full),
                                   (full, ), False, matched_to='flux_multi'),
            flux_multi=RunSpec('Flux-Multi'),
            multi_fixed=RunSpec(f'multi-budget, fixed {grid}', fixed, flexible=False),
            flux_multi_no_align=RunSpec('Flux-Multi w/o align', {'model.train_cfg.align_weight': 0.0},
                                        align=False),
            flux_multi_fluxpre=RunSpec('Flux-Multi, Flux-pretrained', pretrain='flux'),
        )
        for fraction in FRACTIONS[1:]:
            b = self.budgets[fraction]
            specs[f'direct_{b}'] = RunSpec(f'direct {fraction} (fixed {grid} → {b})',
                                           dict(single(b), **fixed), (b, ), False, False, core=False)
        vit = self.vit_backbone()
        specs['vit_fixed'] = RunSpec(f'ViT, fixed {grid}', dict(vit, **single(full), **fixed), (full, ),
                                     False, False, vit=True, core=False)
        specs['vit_flux_multi'] = RunSpec('ViT, Flux-Multi', vit, vit=True, core=False)
        return specs

    def vit_backbone(self) -> Dict:
        """MMAction2's ViT at the recipe's sizes, behind the selective wrapper."""
        arch = self.base.model.backbone.arch
        return {'model.backbone': dict(
            _delete_=True, type='SelectiveVisionTransformer',
            selector=dict(type='GroupDynamicSelector', exact_count=True),
            vit=dict(type='VisionTransformer', img_size=self.side, patch_size=self.patch,
                     num_frames=self.frames, tubelet_size=self.tubelet, embed_dims=arch['embed_dims'],
                     depth=arch['depth'], num_heads=arch['num_heads'],
                     # the recipe's initial residual scale (MMAction2's ViT calls it init_values):
                     # without it the from-scratch ViT stayed at chance in an earlier run
                     init_values=self.base.model.backbone.layer_scale_init_value,
                     use_mean_pooling=False))}

    def pretrain_arms(self) -> Dict[str, RunSpec]:
        """The pretrainings, one per seed: a plain fixed-grid one, one with Flux
        sampling (the paper's Table 5 asks whether Flux helps in pretraining), and
        MMAction2's ViT on the fixed grid."""
        runs = self.runs()
        return dict(fixed=runs['fixed'], flux=runs['flux_single'], vit=runs['vit_fixed'])

    def train_budgets(self, spec: RunSpec) -> Tuple[int, ...]:
        return spec.train_budgets or self.multi_budgets

    def epochs(self, spec: RunSpec, pretrain: bool = False) -> int:
        """A compute-matched run trains for the token-passes of the run it matches."""
        if pretrain:
            return self.schedule.pretrain_epochs
        if spec.matched_to is None:
            return self.schedule.epochs
        target = self.runs()[spec.matched_to]
        ratio = sum(self.train_budgets(target)) / sum(self.train_budgets(spec))
        return max(1, round(self.schedule.epochs * ratio))

    # ------------------------------------------------------------------ configs
    def config(self, spec: RunSpec, data_root: str, num_classes: int, pretrain: bool = False,
               init_checkpoint: Optional[str] = None, workers: Optional[int] = None) -> Config:
        """The tiny recipe merged with the run's overrides; validated every
        ``val_interval`` epochs so that the report shows whether it converged."""
        epochs = self.epochs(spec, pretrain)
        workers = (0 if self.quick else 2) if workers is None else workers
        cfg = Config.fromfile(BASE_CONFIG)
        interval = min(self.schedule.val_interval, epochs)
        merged = {
            'num_classes': num_classes, 'data_root': data_root, 'video_root': f'{data_root}/videos',
            'model.cls_head.num_classes': num_classes,
            'train_cfg.max_epochs': epochs, 'train_cfg.val_begin': interval,
            'train_cfg.val_interval': interval,
            # the last checkpoint only: every run is evaluated from it afterwards
            'default_hooks.checkpoint.interval': interval, 'default_hooks.checkpoint.save_best': None,
            'default_hooks.checkpoint.max_keep_ckpts': 1,
        }
        if cfg.model.data_preprocessor.get('blending'):
            merged['model.data_preprocessor.blending.num_classes'] = num_classes
        for split in ('train', 'val', 'test'):
            merged[f'ann_file_{split}'] = f'{data_root}/{split}.txt'
            merged[f'{split}_dataloader.dataset.ann_file'] = f'{data_root}/{split}.txt'
            merged[f'{split}_dataloader.dataset.data_prefix'] = dict(video=f'{data_root}/videos')
            merged[f'{split}_dataloader.num_workers'] = workers
            merged[f'{split}_dataloader.persistent_workers'] = bool(workers)
        cfg.merge_from_dict(merged)
        cfg.merge_from_dict(spec.overrides)
        if not spec.vit:
            cfg.merge_from_dict({'model.backbone.selector.exact_count': True})  # budgets kept exactly
        if init_checkpoint is not None:
            cfg.merge_from_dict({'model.backbone.init_cfg': dict(
                type='Pretrained', checkpoint=init_checkpoint, prefix='backbone.')})
        return cfg
