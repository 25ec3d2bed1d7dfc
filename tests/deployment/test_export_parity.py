"""Exported (ONNX Runtime / OpenVINO) vs eager: the tiny fixture model on the shared real videos."""
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
from conftest import (EXPORT_BUDGET as BUDGET, EXPORT_FRAMES as FRAMES,  # noqa: E402
                      EXPORT_SIDE as SIDE, REPO_ROOT, export_fixture_cfg, fixture_checkpoint,
                      shared_path)

VIDEOS = ('demo.mp4', 'test.mp4')


@pytest.fixture(scope='module')
def exported(reference, tmp_path_factory):
    """The fixture weights exported once to ONNX; the OpenVINO IR converted from it."""
    tmp = tmp_path_factory.mktemp('deploy')
    ckpt = fixture_checkpoint(reference, tmp / 'tiny.pth')
    cfg_path = str(tmp / 'tiny_fixture.py')
    export_fixture_cfg().dump(cfg_path)
    onnx_path = str(tmp / 'tiny.onnx')
    meta = export_recognizer(cfg_path, ckpt, FRAMES, SIDE, BUDGET, 'onnx', onnx_path, check=False)
    xml_path = str(tmp / 'tiny.xml')
    onnx_to_openvino(onnx_path, xml_path)
    shutil.copy(sidecar_path(onnx_path), sidecar_path(xml_path))
    return dict(cfg_path=cfg_path, ckpt=ckpt, onnx=onnx_path, xml=xml_path, meta=meta, tmp=tmp)


def test_sidecar_holds_what_running_needs(exported):
    with open(sidecar_path(exported['onnx'])) as f:
        meta = json.load(f)
    assert meta['grid'] == [FRAMES, SIDE] and meta['budget'] == BUDGET
    # 6 frames -> 2 temporal groups of 3 frames x 25 patches, 30 kept in each
    assert meta['num_tokens'] == 60 and meta['head'] == 1  # nearest of (96, 64, 32) to 60
    assert meta['num_classes'] == 7 and meta['average_clips'] == 'prob'
    assert 'FluxUniformSample' in meta['config']


@pytest.mark.parametrize('fmt', ['onnx', 'xml'])
@pytest.mark.parametrize('video', VIDEOS)
def test_views_match_eager_exactly(exported, fmt, video):
    cfg, model = build_recognizer(exported['cfg_path'], exported['ckpt'], FRAMES, SIDE, BUDGET)
    views = video_views(cfg, shared_path('data', video))  # 2 clips x 3 crops
    with torch.no_grad():
        logits, info = model.extract_feat(views, stage='head')
        kept = model.backbone(views, BUDGET, return_output=True).kept
    runtime = build_runtime_model(exported[fmt])
    out_logits, out_kept = runtime(views)
    assert info['head'] == runtime.meta['head']
    np.testing.assert_array_equal(out_kept, kept.numpy())
    np.testing.assert_allclose(out_logits, logits.numpy(), atol=1e-4, rtol=0)
    # the batch dimension is dynamic: one view alone gives the same numbers
    one_logits, one_kept = runtime(views[:1])
    np.testing.assert_allclose(one_logits, out_logits[:1], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(one_kept, out_kept[:1])


@pytest.mark.parametrize('fmt', ['onnx', 'xml'])
def test_video_scores_match_inference_recognizer(exported, fmt):
    video = shared_path('data', 'demo.mp4')
    model = init_recognizer(export_fixture_cfg(), exported['ckpt'], device='cpu')
    eager = inference_recognizer(model, video)
    result = inference_exported(exported[fmt], video)
    torch.testing.assert_close(result['pred_score'], eager.pred_score, atol=1e-5, rtol=0)
    assert result['num_tokens'] == eager.metainfo['num_tokens']


def test_default_tie_order_differs_only_by_tied_tokens(exported):
    """Released (unstable) order vs the exported one: any difference is a swap of equal scores."""
    cfg, model = build_recognizer(exported['cfg_path'], exported['ckpt'], FRAMES, SIDE, BUDGET)
    views = video_views(cfg, shared_path('data', 'test.mp4'))
    stable = model.backbone(views, BUDGET, return_output=True).kept
    model.backbone.selector.stable = False
    with torch.no_grad():
        released = model.backbone(views, BUDGET, return_output=True).kept
    L = (SIDE // 14)**2
    for a, b in zip(stable, released):
        only_a = sorted(set(a.tolist()) - set(b.tolist()))
        only_b = sorted(set(b.tolist()) - set(a.tolist()))
        assert len(only_a) == len(only_b)
        # each exchanged token is the same patch in the first / second frame of a group,
        # whose scores are equal by construction
        for i, j in zip(only_a, only_b):
            assert i % L == j % L and abs(i - j) == L and min(i, j) // L % 3 == 0


def test_wrong_grid_and_missing_sidecar_are_explained(exported, tmp_path):
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
                          exported['ckpt'], '--grid', str(FRAMES), str(SIDE), '--budget', str(BUDGET),
                          '--format', 'openvino', '--out', xml], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'kept equal True' in run.stdout
    video = shared_path('data', 'test.mp4')
    demo = [sys.executable, 'tools/demo.py', video]
    eager = subprocess.run(demo + [exported['cfg_path'], exported['ckpt'], '--budget', str(BUDGET),
                                   '--grid', str(FRAMES), str(SIDE)],
                           capture_output=True, text=True, cwd=REPO_ROOT)
    deployed = subprocess.run(demo + ['--exported', xml], capture_output=True, text=True, cwd=REPO_ROOT)
    assert eager.returncode == 0 and deployed.returncode == 0, deployed.stderr[-3000:]
    ranked = [line for line in eager.stdout.splitlines() if line[:2] in ('1.', '2.', '3.', '4.', '5.')]
    assert len(ranked) == 5
    assert ranked == [line for line in deployed.stdout.splitlines() if line in ranked]
    assert 'tokens per view: 60' in deployed.stdout


def test_int8_export_quantizes_the_matmuls(exported):
    onnx = pytest.importorskip('onnx')
    int8_path = str(exported['tmp'] / 'tiny_int8.onnx')
    meta = export_recognizer(exported['cfg_path'], exported['ckpt'], FRAMES, SIDE, BUDGET, 'onnx',
                             int8_path, int8=True, check=False)
    assert meta['precision'] == 'int8-dynamic'
    ops = {node.op_type for node in onnx.load(int8_path).graph.node}
    assert 'MatMulInteger' in ops or 'DynamicQuantizeMatMul' in ops
    views = torch.randn(2, 3, FRAMES, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    logits, kept = build_runtime_model(int8_path)(views)
    ref, _ = build_runtime_model(exported['onnx'])(views)
    assert logits.shape == ref.shape == (2, 7) and kept.shape == (2, 60)
    assert np.isfinite(logits).all() and not np.array_equal(logits, ref)
