"""Shared test fixtures: the reference fixture file, tiny model configs."""
import os
import os.path as osp

import pytest
import torch

import mmflux  # noqa: F401  (registers components, applies compat)
from mmengine.registry import init_default_scope

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
init_default_scope('mmaction')


def shared_path(*parts: str) -> str:
    """Path inside the project's shared/ folder (beside the repo, or $MMFLUX_SHARED_DIR)."""
    root = os.environ.get('MMFLUX_SHARED_DIR', osp.join(osp.dirname(REPO_ROOT), 'shared'))
    path = osp.join(root, *parts)
    if not osp.exists(path):
        raise FileNotFoundError(f'{path} not found: tests need the shared/ folder beside the repo '
                                'or MMFLUX_SHARED_DIR pointing at it.')
    return path


@pytest.fixture(scope='session')
def reference():
    return torch.load(shared_path('fixtures', 'fluxvit_reference_tiny.pt'), weights_only=True)


def tiny_model_cfg(num_classes=7, budgets=(96, 64, 32), **test_cfg):
    """The architecture of the reference fixture (embed 64, depth 2, 4x4x4 positions)."""
    return dict(
        type='FluxRecognizer',
        backbone=dict(type='FluxViT',
                      arch=dict(embed_dims=64, depth=2, num_heads=2, pos_frames=4, pos_side=4)),
        cls_head=dict(type='FluxMultiHead', num_classes=num_classes, in_channels=64,
                      pool_num_heads=4, pool_dims=32, head_budgets=budgets),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW'),
        test_cfg=dict(test_cfg) if test_cfg else None)


@pytest.fixture
def tiny_cfg():
    return tiny_model_cfg


def official_random_state(size: str, dtype=torch.float32):
    state = {}
    with open(shared_path('fixtures', f'fluxvit_{size}_official_keys.txt')) as f:
        for line in f:
            name, shape = line.split(' ', 1)
            shape = tuple(int(s) for s in shape.strip().strip('()').split(',') if s.strip())
            state[name] = torch.empty(shape, dtype=dtype).normal_()
    return state


@pytest.fixture(scope='session')
def tiny_motion_data(tmp_path_factory):
    """A small real dataset written by the repo's own generator (mp4 + MMAction2 lists)."""
    from mmflux.datasets.synthetic_motion import generate_motion_dataset
    out = tmp_path_factory.mktemp('motion')
    generate_motion_dataset(str(out), num_train=16, num_val=8, num_test=8, num_classes=4,
                            frame_size=64, num_frames=16, seed=3, progress=False)
    return str(out)


def write_tiny_train_config(directory, data_dir, **extra) -> str:
    """A config file that trains a very small FluxViT for a few iterations."""
    base = os.path.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')
    lines = [
        f'_base_ = [{base!r}]',
        'num_classes = 4',
        f'data_root = {data_dir!r}',
        "video_root = data_root + '/videos'",
        'model = dict(',
        '    backbone=dict(arch=dict(embed_dims=32, depth=1, num_heads=2, pos_frames=4, pos_side=4),',
        '                  patch_size=14, tubelet_size=1, drop_path_rate=0.0),',
        '    cls_head=dict(num_classes=4, in_channels=32, pool_num_heads=2, pool_dims=32,',
        '                  head_budgets=(48, 32, 16)),',
        '    train_cfg=dict(budgets=(48, 32, 16), heads=(0, 1, 2)),',
        '    test_cfg=dict(token_budget=32))',
        'train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,',
        '    batch_sampler=dict(frames=(2, 9, 2), sides=(28, 57, 14), token_window=(16, 64),',
        '                       patch_size=14, tubelet_size=1),',
        "    collate_fn=dict(type='repeat_pseudo_collate'),",
        "    dataset=dict(ann_file=data_root + '/train.txt', data_prefix=dict(video=video_root),",
        '                 num_repeats=2))',
        'val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,',
        "    dataset=dict(ann_file=data_root + '/val.txt', data_prefix=dict(video=video_root)))",
        'test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,',
        "    dataset=dict(ann_file=data_root + '/test.txt', data_prefix=dict(video=video_root)))",
        'train_cfg = dict(max_epochs=1, val_begin=1, val_interval=1)',
        'default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))',
    ]
    for key, value in extra.items():
        lines.append(f'{key} = {value!r}')
    path = os.path.join(str(directory), 'tiny_train.py')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


PLUG_AND_PLAY = os.path.join(REPO_ROOT, 'configs', 'plug_and_play',
                             'vit-b16_videomae_flux-multi_k400.py')


def small_plug_and_play_cfg():
    """The plug-and-play config (MMAction2's ViT, 16 px x 2 frames) at a small width/depth."""
    from mmengine.config import Config
    cfg = Config.fromfile(PLUG_AND_PLAY)
    cfg.model.backbone.vit.update(embed_dims=32, depth=3, num_heads=2)
    cfg.model.cls_head.update(in_channels=32, pool_num_heads=2, pool_dims=32)
    return cfg
