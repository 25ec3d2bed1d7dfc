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
