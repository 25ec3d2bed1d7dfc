"""Post-training int8 quantization of an exported graph, calibrated on training or validation clips.

Both runtimes quantize the same ops: the matrix multiplies with a weight (the
linear layers of the blocks and of the head), activations and weights in int8,
activation ranges calibrated on real clips. The patch embedding's multiply is
left in fp32 on purpose: the selector scores its output, so a quantized
embedding would change which tokens are kept (and the kept indices would no
longer equal the fp32 model's). One file serves every budget, so calibration
runs the clips at several budgets (the largest, half, a quarter, an eighth).

ONNX Runtime: ``quantize_static`` (QDQ, per-channel weights) with a
``CalibrationDataReader``; its MinMax calibrator holds every batch's calibrated
tensors in memory (its option to fold them batch by batch drops them instead),
so calibration sets of large grids must stay small there. OpenVINO: NNCF's
``quantize`` (transformer preset).
The calibration clips come from the config's training or validation split,
never the test split (:func:`calibration_clips`).
"""
import os.path as osp
import tempfile
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ._requires import require

CALIBRATION_SPLITS = ('train', 'val')


def calibration_budgets(max_budget: int) -> List[int]:
    """The budgets calibration cycles through: all tokens, a half, a quarter, an eighth."""
    return sorted({max(1, max_budget // d) for d in (1, 2, 4, 8)}, reverse=True)


def calibration_clips(cfg: Config, split: str = 'val', num_videos: int = 200,
                      views_per_batch: Optional[int] = None) -> List[torch.Tensor]:
    """Normalised views of the first ``num_videos`` videos of ``split`` ('train' or 'val'),
    cut by the config's test pipeline (the exported grid), as a list of view batches.

    The test split is refused: int8 ranges fitted on it would leak the test set
    into the accuracy reported for that precision.
    """
    if split not in CALIBRATION_SPLITS:
        raise ValueError(f'calibration split {split!r}: use one of {CALIBRATION_SPLITS} (never '
                         'the test split, whose accuracy the quantized model is measured on).')
    from .inference import video_views
    dataset = cfg[f'{split}_dataloader']['dataset']
    ann_file = dataset['ann_file']
    video_root = (dataset.get('data_prefix') or {}).get('video', '')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'{split}_dataloader.dataset.ann_file={ann_file} does not exist; '
                                'pass --cfg-options data_root=DIR (or the ann_file) for calibration.')
    with open(ann_file) as f:
        names = [line.split()[0] for line in f if line.strip()][:num_videos]
    batches = [video_views(cfg, osp.join(video_root, name)) for name in names]
    if views_per_batch:
        views = torch.cat(batches)
        batches = list(views.split(views_per_batch))
    print_log(f'calibration: {len(names)} videos of the {split} split ({ann_file}), '
              f'{sum(len(b) for b in batches)} views', logger='current')
    return batches


def _feeds(calibration: Sequence, max_budget: int) -> Iterator[tuple]:
    budgets = calibration_budgets(max_budget)
    for i, clips in enumerate(calibration):
        clips = clips.numpy() if hasattr(clips, 'numpy') else np.asarray(clips)
        yield np.ascontiguousarray(clips, np.float32), np.array(budgets[i % len(budgets)], np.int64)


def _onnx_weight_matmuls(model) -> List[str]:
    """Names of the MatMul/Gemm nodes whose second input is a constant (a weight)."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == 'Constant' for out in node.output}
    # weights the exporter transposes or reshapes once are constant too
    changed = True
    while changed:
        changed = False
        for node in model.graph.node:
            if node.op_type in ('Transpose', 'Reshape', 'Cast', 'Identity') and \
                    node.input and node.input[0] in constants and node.output[0] not in constants:
                constants.add(node.output[0])
                changed = True
    return [node.name for node in model.graph.node
            if node.op_type in ('MatMul', 'Gemm') and len(node.input) > 1 and node.input[1] in constants]


def quantize_onnx_static(src: str, dst: str, calibration: Sequence, max_budget: int) -> None:
    """int8 (QDQ) weight matmuls of ``src`` -> ``dst``, activation ranges from ``calibration``."""
    quant = require('onnxruntime.quantization', 'int8 quantization')
    onnx = require('onnx', 'int8 quantization')
    model = onnx.load(src)
    names = [i.name for i in model.graph.input]
    matmuls = _onnx_weight_matmuls(model)
    if not matmuls:
        raise RuntimeError(f'{src}: no MatMul with a constant weight found to quantize.')
    first_matmul = next(n.name for n in model.graph.node if n.op_type in ('MatMul', 'Gemm'))
    # the exporter's intermediate shape annotations trip the quantizer's re-inference
    del model.graph.value_info[:]

    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self._it = _feeds(calibration, max_budget)

        def get_next(self):
            feed = next(self._it, None)
            return None if feed is None else dict(zip(names, feed))

    with tempfile.TemporaryDirectory() as tmp:
        plain = osp.join(tmp, 'plain.onnx')
        onnx.save(model, plain)
        quant.quantize_static(plain, dst, Reader(), quant_format=quant.QuantFormat.QDQ,
                              op_types_to_quantize=['MatMul', 'Gemm'],
                              nodes_to_quantize=[m for m in matmuls if m != first_matmul],
                              per_channel=True, activation_type=quant.QuantType.QInt8,
                              weight_type=quant.QuantType.QInt8,
                              calibrate_method=quant.CalibrationMethod.MinMax)


def quantize_openvino(model, calibration: Sequence, max_budget: int):
    """NNCF post-training int8 of an OpenVINO model, the patch-embedding matmul left in fp32."""
    nncf = require('nncf', 'OpenVINO int8 quantization')
    first_matmul = next(op.get_friendly_name() for op in model.get_ordered_ops()
                        if op.get_type_name() == 'MatMul')
    feeds = list(_feeds(calibration, max_budget))
    dataset = nncf.Dataset(feeds, lambda feed: {0: feed[0], 1: feed[1]})
    return nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(feeds), ignored_scope=nncf.IgnoredScope(names=[first_matmul]))
