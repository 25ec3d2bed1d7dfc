"""The TO switch through MMAction2's own tools/test.py and mmaction.apis."""
import os.path as osp
import pickle
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

import mmaction
from mmaction.apis import inference_recognizer, init_recognizer
from conftest import (REPO_ROOT, TINY_RECIPE, random_checkpoint, shared_path,
                      write_tiny_train_config)

MMACTION_TEST = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools', 'test.py')


def test_init_recognizer_honours_the_switch(tiny_motion_data, tmp_path):
    cfg = Config.fromfile(write_tiny_train_config(tmp_path, tiny_motion_data))
    ckpt = random_checkpoint(cfg, tmp_path / 'w.pth')
    cfg.token_optimization = dict(budget=16, grid=(6, 42), selector='RandomSelector')
    model = init_recognizer(cfg, ckpt, device='cpu')
    result = inference_recognizer(model, shared_path('data', 'demo.mp4'))
    info = result.metainfo
    assert info['grid'] == (6, 42, 42) and info['num_tokens'] == 16
    assert info['token_budget'] == 16 and info['head'] == 2  # the head trained for 16 tokens
    assert info['selector'] == 'RandomSelector'


def top1(output):
    return float(re.findall(r'acc/top1: ([0-9.]+)', output)[-1])


@pytest.mark.slow
def test_mmaction_test_tool_equals_mmflux_test_tool(tiny_motion_data, tmp_path):
    config = write_tiny_train_config(tmp_path, tiny_motion_data)
    ckpt = random_checkpoint(Config.fromfile(config), tmp_path / 'w.pth')
    kept = {}
    for budget, grid in ((16, (6, 42)), (32, (4, 56))):
        opts = [f'token_optimization.budget={budget}', f'token_optimization.grid=({grid[0]},{grid[1]})']
        scores = {}
        for name, cmd in (
                ('mmaction', [MMACTION_TEST, config, ckpt, '--cfg-options'] + opts),
                ('mmflux', ['tools/test.py', config, ckpt, '--cfg-options'] + opts)):
            dump = tmp_path / f'{name}_{budget}.pkl'
            run = subprocess.run([sys.executable] + cmd + ['--work-dir', str(tmp_path / name),
                                                           '--dump', str(dump)],
                                 capture_output=True, text=True, cwd=REPO_ROOT)
            assert run.returncode == 0, run.stderr[-3000:]
            scores[name] = top1(run.stdout + run.stderr)
            with open(dump, 'rb') as f:
                samples = pickle.load(f)
            kept[(name, budget)] = {(s['num_tokens'], tuple(s['grid'])) for s in samples}
        assert scores['mmaction'] == scores['mmflux']
        assert kept[('mmaction', budget)] == kept[('mmflux', budget)] == {
            (budget, (grid[0], grid[1], grid[1]))}


def test_runner_applies_the_switch_before_building(tiny_motion_data, tmp_path):
    from mmaction.registry import RUNNERS
    cfg = Config.fromfile(write_tiny_train_config(tmp_path, tiny_motion_data))
    assert cfg.runner_type == 'FluxRunner'  # from configs/_base_/default_runtime.py
    cfg.work_dir = str(tmp_path / 'work')
    cfg.token_optimization.update(budget=16, grid=(6, 42))
    runner = RUNNERS.build(cfg)  # what MMAction2's tools/test.py does
    sampler = runner.cfg.test_dataloader.dataset.pipeline[1]
    assert sampler['clip_len'] == 6 and sampler['num_clips'] == 2
    assert runner.model.test_cfg['token_budget'] == 16
    assert cfg.test_dataloader.dataset.pipeline[1]['clip_len'] == 8  # the caller's cfg is not edited


def test_the_batch_sampler_counts_tokens_with_the_backbones_geometry(tmp_path):
    # the configs no longer repeat patch/tubelet for the sampler: FluxRunner hands over the
    # backbone's (7 px x 2 frames in the tiny recipe; the sampler's own defaults are 14 x 1)
    from mmengine.registry import RUNNERS
    from mmflux.engine.config_check import check_flux_config
    cfg = Config.fromfile(TINY_RECIPE)
    assert 'patch_size' not in cfg.train_dataloader.batch_sampler
    check_flux_config(cfg)  # sides 42..70 are multiples of 7, not of the default 14
    cfg.work_dir = str(tmp_path)
    runner = RUNNERS.build(cfg)
    spec = runner._train_dataloader['batch_sampler']
    assert (spec['patch_size'], spec['tubelet_size']) == (7, 2)
    # a size the config sets itself is kept, and a mismatch is named
    cfg.train_dataloader.batch_sampler.patch_size = 14
    with pytest.raises(ValueError, match='side range at multiples of 14'):
        check_flux_config(cfg)
