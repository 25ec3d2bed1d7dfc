"""Export a recognizer at one grid and budget to ONNX or OpenVINO IR, with a JSON sidecar.

The graph is traced by ``torch.onnx.export(dynamo=True)`` (torch.export, then the
onnxscript translation), which decomposes ``rms_norm`` into plain ONNX ops at
opset 18, so ONNX Runtime and OpenVINO both run it. The OpenVINO IR is converted
from that ONNX file and saved in fp32 (``compress_to_fp16=False``). The sidecar
(``<out>.json``) holds what running the model needs: grid, budget, head,
kept count, class count and the full config text (its test pipeline and data
preprocessor), so an exported model runs on a video without the checkpoint.
"""
import json
import os
import os.path as osp
import tempfile
from typing import Dict, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from ..evaluation.to_switch import apply_setting
from ..utils.checkpoint_fit import load_for_inference
from ..version import __version__
from ._requires import require
from .exportable import ExportableRecognizer

FORMATS = ('onnx', 'openvino')
INPUT_NAME = 'clips'
OUTPUT_NAMES = ('logits', 'kept')
OPSET = 18


def sidecar_path(path: str) -> str:
    return path + '.json'


def build_recognizer(config: Union[str, Config], checkpoint: Optional[str], frames: int, side: int,
                     budget: Optional[int]):
    """(cfg, eval-mode recognizer) with the test grid and budget set, weights strictly checked."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    apply_setting(cfg, dict(frames=frames, side=side, budget=budget))
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_for_inference(model, checkpoint)
    else:
        model.init_weights()
    return cfg, model.eval()


def _check_exportable(model, frames: int, side: int, budget: Optional[int]) -> None:
    selector = getattr(model.backbone, 'selector', None)
    total = model.backbone.num_tokens(frames, side, side)
    if budget is not None and budget < total and getattr(selector, 'draws_at_random', False):
        raise ValueError('model.backbone.selector is RandomSelector: a random selection cannot be '
                         'exported exactly; export with --budget all or the GroupDynamicSelector.')


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: str, opset: int = OPSET) -> None:
    require('onnxscript', 'ONNX export')
    batch = torch.export.Dim('batch', min=1, max=4096)
    with torch.no_grad():
        program = torch.onnx.export(module, (example, ), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=list(OUTPUT_NAMES), opset_version=opset,
                                    dynamic_shapes={'x': {0: batch}}, verbose=False)
    program.save(path)


def onnx_to_openvino(onnx_path: str, xml_path: str) -> None:
    ov = require('openvino', 'OpenVINO export')
    model = ov.convert_model(onnx_path)
    # ONNX TopK breaks ties by the lower index; OpenVINO's TopK does so only when stable
    for op in model.get_ordered_ops():
        if op.get_type_name() == 'TopK' and 'stable' in op.get_attributes():
            op.set_attribute('stable', True)
    ov.save_model(model, xml_path, compress_to_fp16=False)  # fp32: exact parity with eager


def quantize_onnx_dynamic(src: str, dst: str) -> None:
    """int8 weights, dynamic int8 activations for MatMul/Gemm (ONNX Runtime's dynamic scheme)."""
    quant = require('onnxruntime.quantization', 'int8 quantization')
    onnx = require('onnx', 'int8 quantization')
    model = onnx.load(src)
    # the exporter's intermediate shape annotations trip the quantizer's re-inference
    # ("Inferred shape and existing shape differ"); it infers them again itself
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        plain = osp.join(tmp, 'plain.onnx')
        onnx.save(model, plain)
        quant.quantize_dynamic(plain, dst, weight_type=quant.QuantType.QInt8,
                               op_types_to_quantize=['MatMul', 'Gemm'])


def export_recognizer(config: Union[str, Config], checkpoint: Optional[str], frames: int, side: int,
                      budget: Optional[int], fmt: str, out: str, int8: bool = False,
                      check: bool = True, example_batch: int = 2) -> Dict:
    """Export and write the sidecar; returns the sidecar dict (with ``check`` errors when run)."""
    logger = MMLogger.get_current_instance()
    if fmt not in FORMATS:
        raise ValueError(f'--format {fmt!r}: use one of {FORMATS}.')
    if int8 and fmt != 'onnx':
        raise ValueError('int8 export is ONNX Runtime dynamic quantization: use --format onnx.')
    cfg, model = build_recognizer(config, checkpoint, frames, side, budget)
    _check_exportable(model, frames, side, budget)
    module = ExportableRecognizer(model, frames, side, budget).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(example_batch, 3, frames, side, side, generator=generator)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    logger.info(f'exporting {frames}x{side} at budget {budget} (head {module.head}, '
                f'{module.num_tokens} tokens) to {fmt}: {out}')
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = out if fmt == 'onnx' and not int8 else osp.join(tmp, 'model.onnx')
        export_onnx(module, example, onnx_path)
        if int8:
            quantize_onnx_dynamic(onnx_path, out)
        if fmt == 'openvino':
            onnx_to_openvino(onnx_path, out)
    head = model.cls_head
    meta = dict(
        format=fmt, precision='int8-dynamic' if int8 else 'fp32', grid=[int(frames), int(side)],
        budget=budget, head=module.head, num_tokens=module.num_tokens,
        num_patches=module.num_patches, num_classes=int(head.num_classes),
        average_clips=getattr(head, 'average_clips', 'prob'),
        max_testing_views=(cfg.model.get('test_cfg') or {}).get('max_testing_views'),
        input=INPUT_NAME, outputs=list(OUTPUT_NAMES),
        tie_break='lower index (TopK); eager matches with selector.stable=True',
        config_path=cfg.filename if isinstance(config, str) else None, checkpoint=checkpoint,
        config=cfg.pretty_text, opset=OPSET, torch=torch.__version__, mmflux=__version__)
    with open(sidecar_path(out), 'w') as f:
        json.dump(meta, f, indent=1)
    if check:
        from .runtime import build_runtime_model
        runtime = build_runtime_model(out)
        with torch.no_grad():
            ref_logits, ref_kept = module(example)
        logits, kept = runtime(example)
        meta['check_max_abs_logit_error'] = float(np.abs(logits - ref_logits.numpy()).max())
        meta['check_kept_equal'] = bool(np.array_equal(kept, ref_kept.numpy()))
        logger.info(f'check on a random batch: max |logit error| {meta["check_max_abs_logit_error"]:.2e}, '
                    f'kept indices equal: {meta["check_kept_equal"]}')
    return meta
