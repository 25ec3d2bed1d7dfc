"""Inference on real videos: MMAction2's API, the demo tool, multi-view averaging."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config

from mmaction.apis import inference_recognizer, init_recognizer
from mmflux.evaluation import set_test_grid
from mmflux.utils.checkpoint_convert import convert_official_state_dict
from conftest import REPO_ROOT, shared_path

CONFIG = osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')


def tiny_fixture_checkpoint(reference, tmp_path):
    """The reference fixture's weights (embed 64, 7 classes) as an mmflux checkpoint."""
    path = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=convert_official_state_dict(reference['state_dict'])), path)
    return str(path)


def fixture_config(budget=32):
    cfg = Config.fromfile(CONFIG)
    # the fixture's architecture: 14 px x 1-frame patches (the released layout)
    cfg.model.backbone.update(arch=dict(embed_dims=64, depth=2, num_heads=2, pos_frames=4, pos_side=4),
                              patch_size=14, tubelet_size=1)
    cfg.model.cls_head.update(num_classes=7, in_channels=64, pool_num_heads=4, pool_dims=32,
                              head_budgets=(96, 64, 32))
    set_test_grid(cfg, 8, 56, budget=budget)
    return cfg


def test_inference_recognizer_on_real_video(reference, tmp_path):
    ckpt = tiny_fixture_checkpoint(reference, tmp_path)
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
    ckpt = tiny_fixture_checkpoint(reference, tmp_path)
    cfg = fixture_config(budget=64)
    model = init_recognizer(cfg, ckpt, device='cpu')
    video = shared_path('data', 'test.mp4')
    whole = inference_recognizer(model, video)  # 2 clips x 3 crops = 6 views
    model.test_cfg['max_testing_views'] = 4
    chunked = inference_recognizer(model, video)
    torch.testing.assert_close(whole.pred_score, chunked.pred_score, atol=1e-6, rtol=0)


def test_demo_tool_prints_top5_and_tokens(reference, tmp_path):
    ckpt = tiny_fixture_checkpoint(reference, tmp_path)
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


def test_demo_refuses_a_checkpoint_of_another_layout(reference, tmp_path):
    # the shipped tiny recipe uses 7 px x 2-frame patches; the fixture has 14 px x 1-frame ones.
    # init_recognizer alone would only warn and predict with a random patch embedding.
    ckpt = tiny_fixture_checkpoint(reference, tmp_path)
    result = subprocess.run([sys.executable, 'tools/demo.py', shared_path('data', 'demo.mp4'), CONFIG, ckpt],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode != 0
    assert 'does not fit the model' in result.stderr and 'backbone.patch_embed.proj.weight' in result.stderr
    assert 'Fix:' in result.stderr


def test_demo_runs_the_plan_setting_for_a_latency_target(reference, tmp_path):
    from mmflux.evaluation.to_plan import TOPlan
    ckpt = tiny_fixture_checkpoint(reference, tmp_path)
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
