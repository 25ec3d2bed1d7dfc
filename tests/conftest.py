"""Shared test helpers: the shared/ folder, the reference fixture, tiny configs, tools.

Tiny models and configs are written here only; a test passes arguments for what it
needs to differ (another width, patch size, selector ...):

* ``FIXTURE_ARCH`` / ``FIXTURE_HEAD``: the architecture of the reference fixture
  (shared/fixtures/fluxvit_reference_tiny.pt): FluxViT with embed 64, depth 2,
  2 heads, positions stored on a 4 x 4 x 4 grid, 14 px x 1-frame patches (the
  defaults); FluxMultiHead with 7 classes and heads for 96 / 64 / 32 tokens.
* ``tiny_backbone_cfg()``: a FluxViT config of that architecture.
* ``tiny_model_cfg()``: a FluxRecognizer config of that architecture.
* ``fixture_recipe_cfg()`` / ``fixture_checkpoint()``: the shipped tiny recipe
  (``TINY_RECIPE``: pipelines, runtime) with that architecture, and the fixture's
  weights as a checkpoint that loads into it.
* ``write_tiny_train_config()``: a config file that trains a very small FluxViT for
  one epoch on real videos, in seconds; ``random_training=True`` switches every
  random part of training on (``RANDOM_TRAINING``).
* ``small_plug_and_play_cfg()``: MMAction2's ViT wrapped for Flux, small.

Fixtures: ``reference`` (the fixture file), ``tiny_motion_data`` (a generated video
dataset), ``tiny_trained`` (the tiny config trained once per session by tools/train.py,
shared by the slow tool tests), ``random_training_cfg`` (a loaded RANDOM_TRAINING
config on two videos), ``log_messages`` (what the MMLogger logs during a test).
"""
import copy
import importlib.util
import logging
import os
import os.path as osp
import pprint
from typing import Any, Dict, List, NamedTuple

import pytest
import torch

import mmflux  # noqa: F401  (registers components, applies compat)
from mmengine.registry import init_default_scope

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_RECIPE = osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')
PLUG_AND_PLAY = os.path.join(REPO_ROOT, 'configs', 'plug_and_play',
                             'vit-b16_videomae_flux-multi_k400.py')
init_default_scope('mmaction')


def shared_path(*parts: str) -> str:
    """Path inside the project's shared/ folder (beside the repo, or $MMFLUX_SHARED_DIR)."""
    root = os.environ.get('MMFLUX_SHARED_DIR', osp.join(osp.dirname(REPO_ROOT), 'shared'))
    path = osp.join(root, *parts)
    if not osp.exists(path):
        raise FileNotFoundError(f'{path} not found: tests need the shared/ folder beside the repo '
                                'or MMFLUX_SHARED_DIR pointing at it.')
    return path


def load_tool(name: str):
    """``tools/<name>.py`` imported as a module (its ``main`` and helpers, in process)."""
    spec = importlib.util.spec_from_file_location(f'mmflux_tool_{name}',
                                                  osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def reference():
    return torch.load(shared_path('fixtures', 'fluxvit_reference_tiny.pt'), weights_only=True)


def official_random_state(size: str, dtype=torch.float32):
    state = {}
    with open(shared_path('fixtures', f'fluxvit_{size}_official_keys.txt')) as f:
        for line in f:
            name, shape = line.split(' ', 1)
            shape = tuple(int(s) for s in shape.strip().strip('()').split(',') if s.strip())
            state[name] = torch.empty(shape, dtype=dtype).normal_()
    return state


# ----------------------------------------------------------------------- tiny models
FIXTURE_ARCH = dict(embed_dims=64, depth=2, num_heads=2, pos_frames=4, pos_side=4)
FIXTURE_HEAD = dict(num_classes=7, pool_num_heads=4, pool_dims=32, head_budgets=(96, 64, 32))


def tiny_backbone_cfg(arch=None, **kwargs) -> Dict[str, Any]:
    """A FluxViT config: ``FIXTURE_ARCH`` with the entries of ``arch`` in place of its
    own; ``kwargs`` are further FluxViT arguments (patch_size, selector, ...)."""
    return dict(type='FluxViT', arch=dict(FIXTURE_ARCH, **(arch or {})), **kwargs)


def tiny_model_cfg(num_classes=7, budgets=(96, 64, 32), *, backbone=None, cls_head=None,
                   **test_cfg) -> Dict[str, Any]:
    """A FluxRecognizer config of the reference fixture's architecture.

    ``backbone``: arguments of :func:`tiny_backbone_cfg` (``arch=``, ``patch_size=`` ...);
    ``cls_head``: FluxMultiHead entries in place of the fixture's (``in_channels``
    follows the backbone's width); any other keyword is a ``test_cfg`` entry
    (``token_budget=``, ``head=``), ``test_cfg`` is None without them.
    """
    backbone = tiny_backbone_cfg(**(backbone or {}))
    head = dict(type='FluxMultiHead', in_channels=backbone['arch']['embed_dims'],
                **dict(FIXTURE_HEAD, num_classes=num_classes, head_budgets=budgets))
    head.update(cls_head or {})
    return dict(
        type='FluxRecognizer',
        backbone=backbone,
        cls_head=head,
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW'),
        test_cfg=dict(test_cfg) if test_cfg else None)


def fixture_recipe_cfg(**backbone):
    """The shipped tiny recipe (``TINY_RECIPE``: its pipelines, runtime, schedule) with
    the reference fixture's architecture, so that :func:`fixture_checkpoint` loads
    into it; ``backbone``: further FluxViT settings (e.g. ``selector=``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(TINY_RECIPE)
    # the recipe's 7 px x 2-frame patches become the released layout, 14 px x 1 frame
    cfg.model.backbone.update(arch=dict(FIXTURE_ARCH), patch_size=14, tubelet_size=1, **backbone)
    cfg.model.cls_head.update(in_channels=FIXTURE_ARCH['embed_dims'], **FIXTURE_HEAD)
    return cfg


#: the grid and budget the deployment tests export at: 6 x 5 x 5 = 150 tokens reduced
#: to 60 (not a grid the fixture was computed on)
EXPORT_FRAMES, EXPORT_SIDE, EXPORT_BUDGET = 6, 70, 60


def export_fixture_cfg():
    """:func:`fixture_recipe_cfg` with a stable group-dynamic selector, testing at the
    export grid and budget (the model the deployment tests export and time)."""
    from mmflux.evaluation.to_switch import apply_setting
    cfg = fixture_recipe_cfg(selector=dict(type='GroupDynamicSelector', stable=True))
    apply_setting(cfg, dict(frames=EXPORT_FRAMES, side=EXPORT_SIDE, budget=EXPORT_BUDGET))
    return cfg


def fixture_checkpoint(reference, path) -> str:
    """The reference fixture's weights, converted, saved as an mmflux checkpoint."""
    from mmflux.utils.checkpoint_convert import convert_official_state_dict
    torch.save(dict(state_dict=convert_official_state_dict(reference['state_dict'])), str(path))
    return str(path)


def small_plug_and_play_cfg():
    """The plug-and-play config (MMAction2's ViT, 16 px x 2 frames) at a small width/depth."""
    from mmengine.config import Config
    cfg = Config.fromfile(PLUG_AND_PLAY)
    cfg.model.backbone.vit.update(embed_dims=32, depth=3, num_heads=2)
    cfg.model.cls_head.update(in_channels=32, pool_num_heads=2, pool_dims=32)
    return cfg


# ------------------------------------------------------------ tiny training configs
def tiny_train_settings(data_root: str, lists=('train.txt', 'val.txt', 'test.txt')) -> Dict:
    """The top-level keys :func:`write_tiny_train_config` writes over ``TINY_RECIPE``:
    FluxViT embed 32, depth 1, 14 px x 1-frame patches, 4 classes, heads for 48 / 32 /
    16 tokens, grids of 2-8 frames x 28-56 px, batch 2 (x 2 repeated augmentations),
    no workers, one epoch with validation and a checkpoint."""
    if isinstance(lists, str):
        lists = (lists, ) * 3
    videos = osp.join(data_root, 'videos')
    train, val, test = (osp.join(data_root, name) for name in lists)
    return dict(
        num_classes=4,
        data_root=data_root,
        video_root=videos,
        model=dict(
            backbone=dict(arch=dict(FIXTURE_ARCH, embed_dims=32, depth=1), patch_size=14,
                          tubelet_size=1, drop_path_rate=0.0),
            cls_head=dict(num_classes=4, in_channels=32, pool_num_heads=2, pool_dims=32,
                          head_budgets=(48, 32, 16)),
            train_cfg=dict(budgets=(48, 32, 16), heads=(0, 1, 2)),
            test_cfg=dict(token_budget=32)),
        train_dataloader=dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            batch_sampler=dict(frames=(2, 9, 2), sides=(28, 57, 14), token_window=(16, 64),
                               patch_size=14, tubelet_size=1),
            collate_fn=dict(type='repeat_pseudo_collate'),
            dataset=dict(ann_file=train, data_prefix=dict(video=videos), num_repeats=2)),
        val_dataloader=dict(batch_size=4, num_workers=0, persistent_workers=False,
                            dataset=dict(ann_file=val, data_prefix=dict(video=videos))),
        test_dataloader=dict(batch_size=4, num_workers=0, persistent_workers=False,
                             dataset=dict(ann_file=test, data_prefix=dict(video=videos))),
        train_cfg=dict(max_epochs=1, val_begin=1, val_interval=1),
        default_hooks=dict(logger=dict(interval=1), checkpoint=dict(interval=1)))


#: Over :func:`tiny_train_settings`: every random part of training on (drop-path,
#: Mixup/CutMix, clip erasing, repeated augmentation), larger grids (4-8 frames x
#: 56-70 px, 64-200 tokens) and heads (128 / 64 / 32), 6 classes, no best checkpoint,
#: a log line per iteration. The setting of the robustness and determinism tests.
RANDOM_TRAINING = dict(
    num_classes=6,
    model=dict(
        backbone=dict(arch=dict(mlp_ratio=2.0, pos_frames=8, pos_side=8), drop_path_rate=0.1,
                      selector=dict(type='GroupDynamicSelector')),
        cls_head=dict(num_classes=6, head_budgets=(128, 64, 32)),
        data_preprocessor=dict(blending=dict(
            type='FluxBatchAugment', num_classes=6, mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0,
            erasing=dict(prob=0.5, mode='pixel'))),
        train_cfg=dict(budgets=(128, 64, 32), align_weight=1.0),
        test_cfg=dict(head=None)),
    train_dataloader=dict(batch_sampler=dict(frames=(4, 9, 2), sides=(56, 71, 14),
                                             token_window=(64, 200))),
    default_hooks=dict(checkpoint=dict(save_best=None)),
    log_processor=dict(window_size=1))


def _merge(base: Dict, update: Dict) -> Dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def random_checkpoint(cfg, path):
    """A checkpoint of ``cfg.model`` at its seeded initial weights (for tool and API tests)."""
    from mmaction.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def write_tiny_train_config(where, data_root, *, lists=('train.txt', 'val.txt', 'test.txt'),
                            random_training=False, extra: str = '', **overrides) -> str:
    """Write a config that inherits ``TINY_RECIPE`` and trains a very small FluxViT
    (:func:`tiny_train_settings`) on the videos in ``data_root/videos``; returns its path.

    ``where``: the file (a path ending in ``.py``) or the folder to write
    ``tiny_train.py`` in. ``lists``: the train, val and test lists, names in
    ``data_root`` (one name: the same list for all three). ``random_training``:
    ``RANDOM_TRAINING`` first. ``overrides``: top-level keys; a dict is merged into
    the one above (recursively, as mmengine merges a config into its base),
    anything else replaces it. ``extra``: text appended verbatim (it may use
    ``{{_base_.name}}``); a top-level name given there replaces the one above.
    """
    settings = tiny_train_settings(str(data_root), lists)
    if random_training:
        settings = _merge(settings, RANDOM_TRAINING)
    settings = _merge(settings, overrides)
    lines = [f'_base_ = [{TINY_RECIPE!r}]']
    lines += [f'{key} = {pprint.pformat(value, width=96, sort_dicts=False)}'
              for key, value in settings.items()]
    path = str(where)
    if not path.endswith('.py'):
        path = osp.join(path, 'tiny_train.py')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n' + extra)
    return path


# --------------------------------------------------------------------------- data
@pytest.fixture(scope='session')
def tiny_motion_data(tmp_path_factory):
    """A small real dataset written by the repo's own generator (mp4 + MMAction2 lists)."""
    from mmflux.datasets.synthetic_motion import generate_motion_dataset
    out = tmp_path_factory.mktemp('motion')
    generate_motion_dataset(str(out), num_train=16, num_val=8, num_test=8, num_classes=4,
                            frame_size=64, num_frames=16, seed=3, progress=False)
    return str(out)


class TrainedRun(NamedTuple):
    config: str  #: the training config (write_tiny_train_config + grid recording)
    checkpoint: str  #: epoch_1.pth
    work_dir: str  #: the run's work dir (logs, vis_data, flux_grids_rank0.jsonl)


@pytest.fixture(scope='session')
def tiny_trained(tiny_motion_data, tmp_path_factory) -> TrainedRun:
    """:func:`write_tiny_train_config` on :func:`tiny_motion_data`, trained once per
    session by ``tools/train.py --seed 0`` (8 iterations, validation, a checkpoint),
    with the Flux sampler resume hook and the grid record (``flux_grids_rank0.jsonl``).

    Every slow tool test that needs trained weights reads this run; a test writes its
    own outputs under its own ``tmp_path``, never into ``work_dir``.
    """
    from robust_utils import run_tool
    root = tmp_path_factory.mktemp('tiny_trained')
    config = write_tiny_train_config(root, tiny_motion_data,
                                     custom_hooks=[dict(type='FluxSamplerResumeHook'),
                                                   dict(type='FluxGridRecordHook', save_jsonl=True)])
    work = str(root / 'run')
    run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0'], timeout=900)
    checkpoint = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(checkpoint), os.listdir(work)
    return TrainedRun(config, checkpoint, work)


@pytest.fixture(scope='session')
def two_videos(tmp_path_factory):
    """A folder with two plain videos (``videos/``) and their list (``list.txt``)."""
    from robust_utils import build_video_set
    root = str(tmp_path_factory.mktemp('two_videos'))
    build_video_set(root, num_plain=2, bad=(), good=())
    return root


@pytest.fixture
def random_training_cfg(two_videos, tmp_path):
    """The ``RANDOM_TRAINING`` config on :func:`two_videos`, loaded, with its own work
    dir and experiment name (so runners and loggers of several tests do not clash)."""
    from mmengine.config import Config
    config = Config.fromfile(write_tiny_train_config(
        tmp_path / 'cfg.py', two_videos, lists='list.txt', random_training=True))
    config.work_dir = str(tmp_path / 'work')
    config.experiment_name = f'cfgcheck_{tmp_path.name}'  # unique runner/logger names
    return config


# ------------------------------------------------------------------------ logging
class _LogCapture(logging.Handler):

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def log_messages():
    """Messages (INFO and above) of the current MMLogger during the test."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _LogCapture(logging.INFO)
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)
