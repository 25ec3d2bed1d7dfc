"""Inference on real videos: MMAction2's API, the demo tool, multi-view averaging."""
import subprocess
import sys

import pytest
import torch

from mmaction.apis import inference_recognizer, init_recognizer
from mmflux.evaluation.to_switch import TOPlan, apply_setting
from conftest import REPO_ROOT, TINY_RECIPE, fixture_checkpoint, fixture_recipe_cfg, shared_path


def fixture_config(budget=32):
    cfg = fixture_recipe_cfg()
    apply_setting(cfg, dict(frames=8, side=56, budget=budget))
    return cfg


def test_inference_recognizer_on_real_video(reference, tmp_path):
    ckpt = fixture_checkpoint(reference, tmp_path / 'tiny.pth')
    model = init_recognizer(fixture_config(budget=32), ckpt, device='cpu')
    video = shared_path('data', 'demo.mp4')
    result = inference_recognizer(model, video)
    assert result.pred_score.shape == (7, )
    torch.testing.assert_close(result.pred_score.sum(), torch.tensor(1.0))  # softmax averaged
    assert result.metainfo['num_tokens'] == 32 and result.metainfo['head'] == 2
    model.test_cfg['token_budget'] = None
    full = inference_recognizer(model, video)
    assert full.metainfo['num_tokens'] == 8 * 16 and full.metainfo['head'] == 0
    assert not torch.allclose(full.pred_score, result.pred_score)


def test_views_are_averaged_and_chunking_changes_nothing(reference, tmp_path):
    ckpt = fixture_checkpoint(reference, tmp_path / 'tiny.pth')
    cfg = fixture_config(budget=64)
    model = init_recognizer(cfg, ckpt, device='cpu')
    video = shared_path('data', 'test.mp4')
    whole = inference_recognizer(model, video)  # 2 clips x 3 crops = 6 views
    model.test_cfg['max_testing_views'] = 4
    chunked = inference_recognizer(model, video)
    torch.testing.assert_close(whole.pred_score, chunked.pred_score, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_demo_tool_prints_top5_and_tokens(reference, tmp_path):
    ckpt = fixture_checkpoint(reference, tmp_path / 'tiny.pth')
    cfg_path = tmp_path / 'cfg.py'
    fixture_config().dump(str(cfg_path))
    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join(f'action_{i}' for i in range(7)))
    result = subprocess.run([sys.executable, 'tools/demo.py', shared_path('data', 'demo.mp4'),
                             str(cfg_path), ckpt, '--budget', '48', '--grid', '6', '56',
                             '--label-map', str(labels)], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any('tokens per view: 48' in line for line in lines)
    ranked = [line for line in lines if line[:2] in ('1.', '2.', '3.', '4.', '5.')]
    assert len(ranked) == 5 and all('action_' in line for line in ranked)


@pytest.mark.slow
def test_demo_refuses_a_checkpoint_of_another_layout(reference, tmp_path):
    # the shipped tiny recipe uses 7 px x 2-frame patches; the fixture has 14 px x 1-frame ones.
    # init_recognizer alone would only warn and predict with a random patch embedding.
    ckpt = fixture_checkpoint(reference, tmp_path / 'tiny.pth')
    result = subprocess.run([sys.executable, 'tools/demo.py', shared_path('data', 'demo.mp4'),
                             TINY_RECIPE, ckpt], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode != 0
    assert 'does not fit the model' in result.stderr and 'backbone.patch_embed.proj.weight' in result.stderr
    assert 'Fix:' in result.stderr


@pytest.mark.slow
def test_demo_runs_the_plan_setting_for_a_latency_target(reference, tmp_path):
    ckpt = fixture_checkpoint(reference, tmp_path / 'tiny.pth')
    cfg_path = tmp_path / 'cfg.py'
    fixture_config().dump(str(cfg_path))
    plan = TOPlan([
        dict(budget=64, frames=8, side=56, selector='GroupDynamicSelector', val_top1=0.9, latency_ms=9.0),
        dict(budget=32, frames=4, side=42, selector='RandomSelector', val_top1=0.6, latency_ms=3.0),
    ]).save(str(tmp_path / 'plan.json'))
    demo = [sys.executable, 'tools/demo.py', shared_path('data', 'demo.mp4'), str(cfg_path), ckpt,
            '--plan', plan]
    result = subprocess.run(demo + ['--max-latency-ms', '5'], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'grid per view: 4x42x42 (T x H x W), selector RandomSelector' in result.stdout
    assert 'tokens per view: 32 (budget 32' in result.stdout  # 36 sampled, 32 kept
    result = subprocess.run(demo + ['--budget', '64'], capture_output=True, text=True, cwd=REPO_ROOT)
    assert 'grid per view: 8x56x56 (T x H x W), selector GroupDynamicSelector' in result.stdout
    assert 'tokens per view: 64 (budget 64' in result.stdout
    result = subprocess.run(demo + ['--max-latency-ms', '1'], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode != 0 and 'the cheapest is 3 ms' in result.stderr
