"""Precisions of an exported model: int8 post-training quantization (both runtimes) and bf16."""
import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime', reason='deployment extra not installed (requirements/deploy.txt)')
pytest.importorskip('openvino', reason='deployment extra not installed (requirements/deploy.txt)')

from mmflux.deployment import build_runtime_model, export_recognizer  # noqa: E402
from mmflux.deployment.quantize import calibration_budgets, calibration_clips  # noqa: E402
from mmflux.deployment.runtime import openvino_has_native_bf16  # noqa: E402
from mmflux.evaluation import set_test_grid  # noqa: E402
from mmflux.compat import apply_dataset_overrides  # noqa: E402
from conftest import (EXPORT_FRAMES as FRAMES, EXPORT_SIDE as SIDE, fixture_checkpoint,  # noqa: E402
                      fixture_recipe_cfg)

BUDGETS = (20, 60, 150)


@pytest.fixture(scope='module')
def setup(reference, tiny_motion_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('quant')
    cfg = fixture_recipe_cfg()
    options = dict(data_root=tiny_motion_data)
    cfg.merge_from_dict(options)
    apply_dataset_overrides(cfg, options)
    set_test_grid(cfg, FRAMES, SIDE)
    ckpt = fixture_checkpoint(reference, tmp / 'tiny.pth')
    fp32 = str(tmp / 'fp32.onnx')
    export_recognizer(cfg, ckpt, FRAMES, SIDE, None, 'onnx', fp32, check=False)
    views = torch.randn(3, 3, FRAMES, SIDE, SIDE, generator=torch.Generator().manual_seed(2))
    return dict(cfg=cfg, ckpt=ckpt, tmp=tmp, fp32=build_runtime_model(fp32), views=views)


def test_calibration_never_reads_the_test_split(setup):
    with pytest.raises(ValueError, match='never the test split'):
        calibration_clips(setup['cfg'], 'test', 2)
    clips = calibration_clips(setup['cfg'], 'val', 2)
    assert len(clips) == 2 and tuple(clips[0].shape) == (6, 3, FRAMES, SIDE, SIDE)  # 2 clips x 3 crops
    assert calibration_budgets(150) == [150, 75, 37, 18]


@pytest.mark.parametrize('fmt,suffix', [('onnx', '.onnx'), ('openvino', '.xml')])
def test_int8_quantizes_the_blocks_and_keeps_the_selection(setup, fmt, suffix):
    """The weight matmuls run in int8, the patch embedding in fp32: the same kept tokens as
    fp32 at every budget, logits near (not equal to) fp32's."""
    path = str(setup['tmp'] / f'int8{suffix}')
    calibration = calibration_clips(setup['cfg'], 'val', 3)
    meta = export_recognizer(setup['cfg'], setup['ckpt'], FRAMES, SIDE, None, fmt, path,
                             precision='int8', calibration=calibration, check=False)
    assert meta['precision'] == 'int8' and meta['calibration_clips'] == 18
    if fmt == 'onnx':
        import onnx
        model = onnx.load(path)
        ops = [n.op_type for n in model.graph.node]
        matmuls = [n for n in model.graph.node if n.op_type == 'MatMul']
        # the first matmul (patch embedding) reads fp32, the blocks' read dequantized int8
        produced_by = {o: n.op_type for n in model.graph.node for o in n.output}
        assert produced_by.get(matmuls[0].input[0]) != 'DequantizeLinear'
        quantized = [m for m in matmuls if produced_by.get(m.input[1]) == 'DequantizeLinear']
        assert ops.count('QuantizeLinear') > 10 and len(quantized) >= 8  # 2 blocks x 4 + head
    else:
        import openvino as ov
        ops = [op.get_type_name() for op in ov.Core().read_model(path).get_ordered_ops()]
        assert ops.count('FakeQuantize') + ops.count('FakeConvert') > 10
    runtime = build_runtime_model(path)
    for budget in BUDGETS:
        logits, kept = runtime(setup['views'], budget)
        ref_logits, ref_kept = setup['fp32'](setup['views'], budget)
        np.testing.assert_array_equal(kept, ref_kept)
        assert not np.array_equal(logits, ref_logits)
        assert np.abs(logits - ref_logits).max() < 0.25 * np.abs(ref_logits).max()


def test_bf16_runs_where_the_cpu_has_it_and_precision_errors_are_explained(setup):
    path = str(setup['tmp'] / 'bf16.xml')
    meta = export_recognizer(setup['cfg'], setup['ckpt'], FRAMES, SIDE, None, 'openvino', path,
                             precision='bf16', check=False)
    runtime = build_runtime_model(path)
    assert meta['precision'] == 'bf16'
    assert runtime.precision == ('bf16' if openvino_has_native_bf16() else 'fp32')
    logits, kept = runtime(setup['views'], 60)
    ref_logits, _ = setup['fp32'](setup['views'], 60)
    assert kept.shape == (3, 60)
    assert np.abs(logits - ref_logits).max() < 0.05 * np.abs(ref_logits).max() + 0.05
    if runtime.precision == 'bf16':
        assert not np.array_equal(logits, ref_logits)
    with pytest.raises(ValueError, match='bf16 runs through OpenVINO'):
        export_recognizer(setup['cfg'], setup['ckpt'], FRAMES, SIDE, None, 'onnx',
                          str(setup['tmp'] / 'x.onnx'), precision='bf16')
    with pytest.raises(ValueError, match='calibration clips of the training or validation'):
        export_recognizer(setup['cfg'], setup['ckpt'], FRAMES, SIDE, None, 'onnx',
                          str(setup['tmp'] / 'y.onnx'), precision='int8')
