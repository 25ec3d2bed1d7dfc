"""Config faults are caught before training/testing starts, naming key, value and fix."""
import glob
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmflux.evaluation.test_grid import pipelines
from mmflux.utils.config_check import check_flux_config
from robust_utils import REPO_ROOT, build_video_set, write_tiny_config


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cfgcheck'))
    video_dir, ann_file, _ = build_video_set(root, num_plain=2, bad=(), good=())
    return root, video_dir, ann_file


@pytest.fixture
def cfg(small_set, tmp_path):
    _, video_dir, ann_file = small_set
    config = Config.fromfile(write_tiny_config(str(tmp_path / 'cfg.py'), video_dir, ann_file))
    config.work_dir = str(tmp_path / 'work')
    config.experiment_name = f'cfgcheck_{tmp_path.name}'  # unique runner/logger names
    return config


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
    assert problems(cfg).startswith('3 problem(s) in the Flux config')


# --------------------------------------------------------------- where the check runs
def _tool(name):
    spec = importlib.util.spec_from_file_location(f'mmflux_tool_{name}',
                                                  osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tool_checks_right_after_merging(cfg, tmp_path, monkeypatch):
    path = str(tmp_path / 'bad.py')
    cfg.dump(path)
    built = []
    tool = _tool('train')
    monkeypatch.setattr(tool.Runner, 'from_cfg', classmethod(lambda cls, c: built.append(c)))
    with pytest.raises(ValueError, match=r'token_window=\(5000, 6000\)'):
        tool.main([path, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', 'train_dataloader.batch_sampler.token_window=(5000,6000)'])
    assert not built  # refused before any runner was built


def test_test_tool_checks_the_budget(cfg, tmp_path, monkeypatch):
    path = str(tmp_path / 'ok.py')
    cfg.dump(path)
    tool = _tool('test')
    monkeypatch.setattr(tool.Runner, 'from_cfg', classmethod(lambda cls, c: pytest.fail('built')))
    with pytest.raises(ValueError, match='model.test_cfg.token_budget=100000'):
        tool.main([path, 'unused.pth', '--budget', '100000', '--work-dir', str(tmp_path / 'w')])


def test_hook_stops_a_plain_runner_before_the_first_iteration(cfg):
    """Without mmflux's tools (e.g. MMAction2's tools/train.py) the config hook
    catches it in before_run, before any iteration."""
    cfg.model.train_cfg.budgets = (1000, 64, 32)
    cfg.model.cls_head.head_budgets = (1000, 64, 32)
    assert any(h['type'] == 'FluxConfigCheckHook' for h in cfg.custom_hooks)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='1000 is above the 200 tokens'):
        runner.train()
    assert runner.iter == 0


def test_sampler_error_surfaces_at_train_start(cfg):
    """mmengine builds the train dataloader (and FluxBatchSampler) lazily, at the
    start of runner.train(); the error comes before any iteration."""
    cfg.train_dataloader.batch_sampler.frames = (8, 8)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'batch_sampler.frames=\(8, 8\) is an empty range'):
        runner.train()
    assert isinstance(runner._train_loop, dict)  # the loop never came into being


def test_hook_stops_a_plain_test_run_before_loading_weights(cfg, tmp_path):
    cfg.model.test_cfg.token_budget = 100000
    cfg.load_from = str(tmp_path / 'does_not_exist.pth')  # never reached
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='model.test_cfg.token_budget=100000'):
        runner.test()


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
