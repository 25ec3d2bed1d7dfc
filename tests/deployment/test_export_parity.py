"""Exported (ONNX Runtime / OpenVINO) vs eager: one file per grid, every budget, on real videos."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime', reason='deployment extra not installed (requirements/deploy.txt)')
pytest.importorskip('openvino', reason='deployment extra not installed (requirements/deploy.txt)')

from mmaction.apis import inference_recognizer, init_recognizer  # noqa: E402
from mmflux.deployment import (build_recognizer, build_runtime_model, export_recognizer,  # noqa: E402
                               inference_exported, video_views)
from mmflux.deployment.export import onnx_to_openvino, sidecar_path  # noqa: E402
from mmflux.evaluation.to_switch import apply_setting  # noqa: E402
from conftest import (EXPORT_BUDGET as BUDGET, EXPORT_FRAMES as FRAMES,  # noqa: E402
                      EXPORT_SIDE as SIDE, REPO_ROOT, export_fixture_cfg, fixture_checkpoint,
                      fixture_recipe_cfg, shared_path, small_plug_and_play_cfg)

VIDEOS = ('demo.mp4', 'test.mp4')
#: 6 x 5 x 5 = 150 tokens in 2 groups: budgets that keep 10, 36, 60, 100 and all 150
#: tokens, on heads 2, 2, 1, 0, 0 (of budgets 96 / 64 / 32)
BUDGETS = (10, 37, 60, 100, 150)


def eager_at(model, views, budget):
    """(logits, head, kept indices) of the eager recognizer at ``budget``."""
    with torch.no_grad():
        logits, info = model.extract_feat(views, stage='head', budget=budget)
        kept = model.backbone(views, budget, return_output=True).kept
    if kept is None:
        kept = torch.arange(FRAMES * (SIDE // 14)**2).expand(views.shape[0], -1)
    return logits.numpy(), info['head'], kept.numpy()


@pytest.fixture(scope='module')
def exported(reference, tmp_path_factory):
    """The fixture weights with the default selector, exported ONCE to ONNX (every budget);
    the OpenVINO IR converted from it."""
    tmp = tmp_path_factory.mktemp('deploy')
    ckpt = fixture_checkpoint(reference, tmp / 'tiny.pth')
    cfg_path = str(tmp / 'tiny_fixture.py')
    cfg = fixture_recipe_cfg()  # the default selector: ties to the lower index
    apply_setting(cfg, dict(frames=FRAMES, side=SIDE, budget=BUDGET))
    cfg.dump(cfg_path)
    onnx_path = str(tmp / 'tiny.onnx')
    meta = export_recognizer(cfg_path, ckpt, FRAMES, SIDE, None, 'onnx', onnx_path, check=False)
    xml_path = str(tmp / 'tiny.xml')
    onnx_to_openvino(onnx_path, xml_path)
    shutil.copy(sidecar_path(onnx_path), sidecar_path(xml_path))
    _, model = build_recognizer(cfg_path, ckpt, FRAMES, SIDE)
    return dict(cfg_path=cfg_path, ckpt=ckpt, onnx=onnx_path, xml=xml_path, meta=meta, tmp=tmp,
                model=model)


def test_sidecar_holds_what_running_needs(exported):
    with open(sidecar_path(exported['onnx'])) as f:
        meta = json.load(f)
    assert meta['grid'] == [FRAMES, SIDE] and meta['budget'] == BUDGET  # the config's test budget
    # 2 groups: at 2, (1 - (1 - 2 / 150)) * 75 = 0.99999... floors to 0; at 3, 1 token each
    assert meta['max_budget'] == 150 and meta['min_budget'] == 3
    # 6 frames -> 2 temporal groups of 3 frames x 25 patches; 75 -> int(0.5 * 75) = 37 each
    assert meta['kept_counts'][60 - 1] == 60 and meta['kept_counts'][75 - 1] == 74
    assert meta['heads'][60 - 1] == 1 and meta['heads'][150 - 1] == 0  # nearest of (96, 64, 32)
    assert meta['num_classes'] == 7 and meta['average_clips'] == 'prob'
    assert 'FluxUniformSample' in meta['config']


@pytest.mark.parametrize('fmt', ['onnx', 'xml'])
@pytest.mark.parametrize('video', VIDEOS)
def test_one_file_matches_eager_at_every_budget(exported, fmt, video):
    """Kept indices identical and logits to 1e-4 at five budgets (three heads, all tokens)."""
    model = exported['model']
    cfg = export_fixture_cfg()
    views = video_views(cfg, shared_path('data', video))  # 2 clips x 3 crops
    runtime = build_runtime_model(exported[fmt])
    heads = set()
    for budget in BUDGETS:
        logits, head, kept = eager_at(model, views, budget)
        out_logits, out_kept = runtime(views, budget=budget)
        assert runtime.budget_info(budget)['head'] == head
        heads.add(head)
        np.testing.assert_array_equal(out_kept, kept, err_msg=f'budget {budget}')
        np.testing.assert_allclose(out_logits, logits, atol=1e-4, rtol=0, err_msg=f'budget {budget}')
    assert heads == {0, 1, 2}  # the head is chosen inside the graph
    # the batch dimension is dynamic: one view alone gives the same numbers
    one_logits, one_kept = runtime(views[:1], budget=BUDGET)
    out_logits, out_kept = runtime(views, budget=BUDGET)
    np.testing.assert_allclose(one_logits, out_logits[:1], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(one_kept, out_kept[:1])


@pytest.mark.parametrize('fmt', ['onnx', 'xml'])
def test_budget_per_call_in_any_order(exported, fmt):
    """A cascade calls one runtime at ascending budgets: each call equals a fresh call."""
    views = torch.randn(3, 3, FRAMES, SIDE, SIDE, generator=torch.Generator().manual_seed(4))
    runtime = build_runtime_model(exported[fmt])
    ascending = {b: runtime(views, budget=b) for b in (8, 30, 60, 149, 1000)}
    for b in (1000, 60, 8):
        logits, kept = build_runtime_model(exported[fmt])(views, budget=b)
        np.testing.assert_array_equal(kept, ascending[b][1])
        np.testing.assert_allclose(logits, ascending[b][0], atol=1e-6, rtol=0)
    assert ascending[1000][1].shape == (3, 150)  # above the token count: all tokens
    # no budget: the default (the config's test budget)
    np.testing.assert_array_equal(runtime(views)[1], ascending[60][1])
    with pytest.raises(ValueError, match='keeps no token.*smallest budget.* is 3'):
        runtime(views, budget=2)


@pytest.mark.parametrize('fmt', ['onnx', 'xml'])
def test_video_scores_match_inference_recognizer(exported, fmt):
    video = shared_path('data', 'demo.mp4')
    model = init_recognizer(export_fixture_cfg(), exported['ckpt'], device='cpu')
    eager = inference_recognizer(model, video)
    result = inference_exported(exported[fmt], video)  # the default budget, 60
    torch.testing.assert_close(result['pred_score'], eager.pred_score, atol=1e-5, rtol=0)
    assert result['num_tokens'] == eager.metainfo['num_tokens'] == 60


def test_wrapped_mmaction_vit_one_file_every_budget(tmp_path):
    """MMAction2's ViT wrapped by SelectiveVisionTransformer (no cls token): one file per
    format, budgets on every head, random weights."""
    cfg = small_plug_and_play_cfg()
    cfg.model.cls_head.head_budgets = (64, 32, 16)
    frames, side = 8, 64  # 16 px x 2-frame tubelets: 4 x 4 x 4 = 64 tokens
    onnx_path = str(tmp_path / 'vit.onnx')
    torch.manual_seed(0)
    _, model = build_recognizer(cfg, None, frames, side)
    ckpt = str(tmp_path / 'vit.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    export_recognizer(cfg, ckpt, frames, side, None, 'onnx', onnx_path, check=False)
    xml_path = str(tmp_path / 'vit.xml')
    onnx_to_openvino(onnx_path, xml_path)
    shutil.copy(sidecar_path(onnx_path), sidecar_path(xml_path))
    views = torch.randn(2, 3, frames, side, side, generator=torch.Generator().manual_seed(1))
    for path in (onnx_path, xml_path):
        runtime = build_runtime_model(path)
        heads = set()
        for budget in (12, 20, 33, 64):
            with torch.no_grad():
                logits, info = model.extract_feat(views, stage='head', budget=budget)
                kept = model.backbone(views, budget, return_output=True).kept
            out_logits, out_kept = runtime(views, budget=budget)
            heads.add(info['head'])
            assert out_kept.shape == (2, info['num_tokens'])
            if kept is not None:
                np.testing.assert_array_equal(out_kept, kept.numpy())
            np.testing.assert_allclose(out_logits, logits.numpy(), atol=1e-4, rtol=0)
        assert heads == {0, 1, 2}


def test_wrong_grid_old_file_and_missing_sidecar_are_explained(exported, tmp_path):
    runtime = build_runtime_model(exported['onnx'])
    with pytest.raises(ValueError, match=r'exported for clips \(N, 3, 6, 70, 70\).*--grid'):
        runtime(np.zeros((1, 3, 8, 56, 56), np.float32))
    lone = tmp_path / 'lone.onnx'
    shutil.copy(exported['onnx'], lone)
    with pytest.raises(FileNotFoundError, match='sidecar'):
        build_runtime_model(str(lone))


@pytest.mark.slow
def test_cli_export_openvino_and_demo_prints_the_eager_top5(exported):
    xml = str(exported['tmp'] / 'cli.xml')
    run = subprocess.run([sys.executable, 'tools/deployment/export.py', exported['cfg_path'],
                          exported['ckpt'], '--grid', str(FRAMES), str(SIDE),
                          '--format', 'openvino', '--out', xml], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'kept equal True' in run.stdout
    video = shared_path('data', 'test.mp4')
    demo = [sys.executable, 'tools/demo.py', video]
    for budget, tokens in (('37', 36), ('100', 100)):
        eager = subprocess.run(demo + [exported['cfg_path'], exported['ckpt'], '--budget', budget,
                                       '--grid', str(FRAMES), str(SIDE)],
                               capture_output=True, text=True, cwd=REPO_ROOT)
        deployed = subprocess.run(demo + ['--exported', xml, '--budget', budget],
                                  capture_output=True, text=True, cwd=REPO_ROOT)
        assert eager.returncode == 0 and deployed.returncode == 0, deployed.stderr[-3000:]
        ranked = [line for line in eager.stdout.splitlines() if line[:2] in ('1.', '2.', '3.', '4.', '5.')]
        assert len(ranked) == 5
        assert ranked == [line for line in deployed.stdout.splitlines() if line in ranked]
        assert f'tokens per view: {tokens}' in deployed.stdout


def test_int8_dynamic_export_quantizes_the_matmuls(exported):
    onnx = pytest.importorskip('onnx')
    int8_path = str(exported['tmp'] / 'tiny_int8.onnx')
    meta = export_recognizer(exported['cfg_path'], exported['ckpt'], FRAMES, SIDE, BUDGET, 'onnx',
                             int8_path, precision='int8-dynamic', check=False)
    assert meta['precision'] == 'int8-dynamic'
    ops = {node.op_type for node in onnx.load(int8_path).graph.node}
    assert 'MatMulInteger' in ops or 'DynamicQuantizeMatMul' in ops
    views = torch.randn(2, 3, FRAMES, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    logits, kept = build_runtime_model(int8_path)(views, budget=BUDGET)
    ref, _ = build_runtime_model(exported['onnx'])(views, budget=BUDGET)
    assert logits.shape == ref.shape == (2, 7) and kept.shape == (2, 60)
    assert np.isfinite(logits).all() and not np.array_equal(logits, ref)
