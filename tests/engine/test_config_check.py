"""Config faults are caught before training/testing starts, naming key, value and fix.

Where the check runs: tests/engine/hooks/test_config_check_hook.py (a plain Runner)
and tests/tools/test_train_test_tools.py (mmflux's tools).
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmflux.evaluation.grid_config import pipelines
from mmflux.engine.config_check import check_flux_config
from conftest import REPO_ROOT


@pytest.fixture
def cfg(random_training_cfg):
    """The RANDOM_TRAINING config (conftest.py), loaded, for the test to break."""
    return random_training_cfg


def problems(config):
    with pytest.raises(ValueError) as info:
        check_flux_config(config)
    return str(info.value)


@pytest.mark.parametrize(
    'path', sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py'))))
def test_shipped_configs_pass(path):
    check_flux_config(Config.fromfile(path))


def test_pinned_test_config_passes(cfg):
    check_flux_config(cfg)


@pytest.mark.parametrize('key,value,expected', [
    ('frames', (8, 8), 'train_dataloader.batch_sampler.frames=(8, 8) is an empty range'),
    ('sides', (70, 56, 14), 'train_dataloader.batch_sampler.sides=(70, 56, 14) is an empty range'),
    ('sides', (60, 90, 15), 'are not positive multiples of patch_size=14'),
    ('token_window', (5000, 6000), 'train_dataloader.batch_sampler.token_window=(5000, 6000) '
     'admits no (frames, side) pair'),
])
def test_sampler_faults(cfg, key, value, expected):
    cfg.train_dataloader.batch_sampler[key] = value
    assert expected in problems(cfg)


def test_train_budget_below_one(cfg):
    cfg.model.train_cfg.budgets = (128, 64, 0)
    message = problems(cfg)
    assert 'model.train_cfg.budgets=[128, 64, 0]: 0 is not a token count >= 1; fix:' in message


def test_train_budget_above_every_grid(cfg):
    cfg.model.train_cfg.budgets = (1000, 64, 32)
    cfg.model.cls_head.head_budgets = (1000, 64, 32)
    message = problems(cfg)
    assert ('model.train_cfg.budgets=[1000, 64, 32]: 1000 is above the 200 tokens of the largest '
            'training grid (8 frames x 70 px)') in message
    assert 'fix: use budgets <= 200' in message


def test_test_budget_above_the_test_grid(cfg):
    cfg.model.test_cfg.token_budget = 100000
    message = problems(cfg)
    assert 'model.test_cfg.token_budget=100000: above the' in message
    assert 'test_dataloader.dataset.pipeline' in message and 'fix:' in message


def test_test_budget_below_one(cfg):
    cfg.model.test_cfg.token_budget = 0
    assert 'model.test_cfg.token_budget=0: 0 is not a token count >= 1' in problems(cfg)


def test_budgets_and_heads_that_do_not_match(cfg):
    cfg.model.cls_head.head_budgets = (128, 64, 16)
    message = problems(cfg)
    assert ('model.train_cfg.budgets=[128, 64, 32] with heads=[0, 1, 2]: do not match '
            'model.cls_head.head_budgets=[128, 64, 16]') in message
    assert 'head 2 is trained at 32 but declared for 16' in message
    assert 'fix: set model.cls_head.head_budgets=(128, 64, 32)' in message


@pytest.mark.parametrize('heads,expected', [((0, 1), 'must give one head per budget'),
                                            ((0, 1, 5), 'out of range')])
def test_heads_faults(cfg, heads, expected):
    cfg.model.train_cfg.heads = heads
    message = problems(cfg)
    assert f'model.train_cfg.heads={list(heads)}' in message and expected in message


@pytest.mark.parametrize('kind,expected', [('NoSuchSelector', 'is not a registered model'),
                                           ('FluxViT', 'is not a token selector')])
def test_unknown_selector(cfg, kind, expected):
    cfg.model.backbone.selector = dict(type=kind)
    message = problems(cfg)
    assert f"model.backbone.selector.type='{kind}': {expected}" in message
    assert "'GroupDynamicSelector', 'RandomSelector'" in message


def test_test_crop_not_a_multiple_of_the_patch(cfg):
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] in ('ThreeCrop', 'CenterCrop'):
            step['crop_size'] = 60
    message = problems(cfg)
    assert 'crop_size=60' in message
    assert 'not a multiple of the patch size 14; fix: use 56' in message


def test_all_problems_reported_at_once(cfg):
    cfg.model.test_cfg.token_budget = 0
    cfg.train_dataloader.batch_sampler.token_window = (5000, 6000)
    cfg.model.backbone.selector = dict(type='Nope')
    message = problems(cfg)
    assert message.startswith('3 problem(s) in the Flux config')
    assert "selector.type='Nope'" in message and 'token_budget=0' in message
    # the sampler counts with the backbone's geometry: said, not guessed, while the model fails
    assert 'batch_sampler: not checked' in message
    cfg.model.backbone.selector = dict(type='GroupDynamicSelector')
    cfg.model.test_cfg.token_budget = None
    message = problems(cfg)
    assert message.startswith('1 problem(s)') and 'token_window=(5000, 6000)' in message


def test_patch_size_of_a_selective_vit_backbone(cfg):
    cfg.model.backbone = dict(type='SelectiveVisionTransformer',
                              vit=dict(type='VisionTransformer', patch_size=16, img_size=64,
                                       embed_dims=32, depth=1, num_heads=2),
                              selector=dict(type='GroupDynamicSelector'))
    cfg.train_dataloader.batch_sampler.update(patch_size=16, sides=(64, 97, 16),
                                              token_window=None)
    message = problems(cfg)  # the 56-px test crops do not fit 16-px patches
    assert 'not a multiple of the patch size 16; fix: use 64' in message
    # MMAction2's ViT embeds 2 frames per patch unless told otherwise; the sampler must count so
    assert ("batch_sampler.tubelet_size=1: differs from the backbone's tubelet size 2" in message
            and 'fix: set batch_sampler.tubelet_size=2' in message)
    cfg.train_dataloader.batch_sampler.tubelet_size = 2
    for split in ('val', 'test'):
        # the loaders' pipelines and the top-level ones (inference_recognizer's) alike
        for _, pipeline in pipelines(cfg, split):
            for step in pipeline:
                if step['type'] in ('ThreeCrop', 'CenterCrop'):
                    step['crop_size'] = 64
    check_flux_config(cfg)


def test_non_flux_models_are_left_alone():
    check_flux_config(Config(dict(model=dict(type='Recognizer3D',
                                             backbone=dict(type='ResNet3d', depth=50),
                                             test_cfg=dict(average_clips='prob')))))
