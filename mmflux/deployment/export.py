"""Export a recognizer at one grid, for every token budget, to ONNX or OpenVINO IR, with a JSON sidecar.

The graph is traced by ``torch.onnx.export(dynamo=True)`` (torch.export, then the
onnxscript translation), which decomposes ``rms_norm`` into plain ONNX ops at
opset 18, so ONNX Runtime and OpenVINO both run it. The budget is the graph's
second input (``TopK`` takes K as data), so one file serves every budget up to
the grid's token count. The OpenVINO IR is converted from that ONNX file and
saved in fp32 (``compress_to_fp16=False``); its inference precision is chosen
when it is compiled (:mod:`mmflux.deployment.runtime`). The sidecar
(``<out>.json``) holds what running the model needs: grid, default budget, the
kept count and head of every budget, class count, precision and the full config
text (its test pipeline and data preprocessor), so an exported model runs on a
video without the checkpoint.
"""
import json
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Union

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
INPUT_NAMES = ('clips', 'budget')
OUTPUT_NAMES = ('logits', 'kept')
PRECISIONS = ('fp32', 'bf16', 'int8', 'int8-dynamic')
OPSET = 18


def sidecar_path(path: str) -> str:
    return path + '.json'


def build_recognizer(config: Union[str, Config], checkpoint: Optional[str], frames: int, side: int,
                     budget: Optional[int] = -1):
    """(cfg, eval-mode recognizer) with the test grid (and budget, unless -1) set, weights
    strictly checked."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    setting = dict(frames=frames, side=side)
    if budget != -1:
        setting['budget'] = budget
    apply_setting(cfg, setting)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_for_inference(model, checkpoint)
    else:
        model.init_weights()
    return cfg, model.eval()


def _check_exportable(model) -> None:
    selector = getattr(model.backbone, 'selector', None)
    if getattr(selector, 'draws_at_random', False):
        raise ValueError('model.backbone.selector is RandomSelector: a random selection cannot be '
                         'exported exactly; export with the GroupDynamicSelector.')


def example_budget(module: ExportableRecognizer) -> torch.Tensor:
    """A budget to trace with (any: the graph keeps it symbolic)."""
    return torch.tensor(max(1, module.num_patches // 2), dtype=torch.int64)


def export_onnx(module: ExportableRecognizer, example: torch.Tensor, path: str,
                opset: int = OPSET) -> None:
    """``module`` (clips, budget) -> (logits, kept) as ONNX; batch and budget are inputs."""
    require('onnxscript', 'ONNX export')
    batch = torch.export.Dim('batch', min=1, max=4096)
    with torch.no_grad():
        program = torch.onnx.export(module, (example, example_budget(module)), dynamo=True,
                                    input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                                    opset_version=opset, dynamic_shapes={'x': {0: batch},
                                                                         'budget': None},
                                    verbose=False)
    program.save(path)


def onnx_to_openvino(onnx_path: str, xml_path: str, calibration: Optional[Sequence] = None,
                     budget: Optional[int] = None) -> None:
    """The ONNX file as OpenVINO IR (fp32 weights); int8 by NNCF with ``calibration``."""
    ov = require('openvino', 'OpenVINO export')
    model = ov.convert_model(onnx_path)
    # ONNX TopK breaks ties by the lower index; OpenVINO's TopK does so only when stable
    for op in model.get_ordered_ops():
        if op.get_type_name() == 'TopK' and 'stable' in op.get_attributes():
            op.set_attribute('stable', True)
    if calibration is not None:
        from .quantize import quantize_openvino
        model = quantize_openvino(model, calibration, budget)
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


def check_budgets(num_patches: int, min_budget: int, count: int = 4) -> List[int]:
    """``count`` budgets spread over [min_budget, num_patches] (the export check's)."""
    picks = {max(min_budget, round(num_patches * f)) for f in (1 / 8, 1 / 4, 1 / 2, 1.0)}
    return sorted(picks)[:count] if count < len(picks) else sorted(picks)


def budget_table_meta(module: ExportableRecognizer) -> Dict:
    """The sidecar's per-budget facts: kept tokens and head of each budget 1..N."""
    kept = module.kept_counts
    return dict(max_budget=module.num_patches, min_budget=next(
        (b for b, k in enumerate(kept, 1) if k > 0), module.num_patches),
        kept_counts=kept, heads=module.head_for_budget)


def export_recognizer(config: Union[str, Config], checkpoint: Optional[str], frames: int, side: int,
                      budget: Optional[int], fmt: str, out: str, precision: str = 'fp32',
                      calibration: Optional[Sequence[torch.Tensor]] = None, check: bool = True,
                      example_batch: int = 2, int8: bool = False) -> Dict:
    """Export (every budget in one file) and write the sidecar; returns the sidecar dict.

    ``budget``: the default budget a runtime uses when a call gives none (None:
    the config's test budget; ``'all'`` or >= the token count: every token).
    ``precision``: ``fp32``; ``bf16`` (OpenVINO, compiled in bf16 where the CPU
    has native bf16); ``int8`` (post-training static quantization calibrated on
    ``calibration``, a sequence of normalised clip batches of the training or
    validation split: NNCF for OpenVINO, ``quantize_static`` for ONNX Runtime);
    ``int8-dynamic`` (ONNX Runtime dynamic int8 matmuls; ``int8=True`` is an
    alias kept for old callers). With ``check``, the runtime is compared with
    eager on a random batch at four budgets (errors in the returned dict).
    """
    logger = MMLogger.get_current_instance()
    if int8:
        precision = 'int8-dynamic'
    if fmt not in FORMATS:
        raise ValueError(f'--format {fmt!r}: use one of {FORMATS}.')
    if precision not in PRECISIONS:
        raise ValueError(f'--precision {precision!r}: use one of {PRECISIONS}.')
    if precision == 'int8-dynamic' and fmt != 'onnx':
        raise ValueError('int8-dynamic is ONNX Runtime dynamic quantization: use --format onnx '
                         '(or --precision int8 for OpenVINO).')
    if precision == 'bf16' and fmt != 'openvino':
        raise ValueError('bf16 runs through OpenVINO (ONNX Runtime has no bf16 CPU kernels for '
                         'this graph): use --format openvino.')
    if precision == 'int8' and not calibration:
        raise ValueError('--precision int8 needs calibration clips of the training or validation '
                         'split (tools/deployment/export.py --calib-split val --calib-videos N).')
    cfg, model = build_recognizer(config, checkpoint, frames, side)
    _check_exportable(model)
    if budget is None:
        budget = (cfg.model.get('test_cfg') or {}).get('token_budget')
    module = ExportableRecognizer(model, frames, side).eval()
    if budget == 'all' or (budget is not None and budget >= module.num_patches):
        budget = None
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(example_batch, 3, frames, side, side, generator=generator)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    logger.info(f'exporting {frames}x{side} ({module.num_patches} tokens; every budget, default '
                f'{budget or "all"}; heads {module.heads}) to {fmt} {precision}: {out}')
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = out if fmt == 'onnx' and precision == 'fp32' else osp.join(tmp, 'model.onnx')
        export_onnx(module, example, onnx_path)
        if precision == 'int8-dynamic':
            quantize_onnx_dynamic(onnx_path, out)
        elif precision == 'int8' and fmt == 'onnx':
            from .quantize import quantize_onnx_static
            quantize_onnx_static(onnx_path, out, calibration, budget or module.num_patches)
        elif fmt == 'openvino':
            onnx_to_openvino(onnx_path, out, calibration=calibration if precision == 'int8' else None,
                             budget=budget or module.num_patches)
    head = model.cls_head
    meta = dict(
        format=fmt, precision=precision, grid=[int(frames), int(side)], budget=budget,
        num_patches=module.num_patches, **budget_table_meta(module),
        num_classes=int(head.num_classes), average_clips=getattr(head, 'average_clips', 'prob'),
        max_testing_views=(cfg.model.get('test_cfg') or {}).get('max_testing_views'),
        inputs=list(INPUT_NAMES), outputs=list(OUTPUT_NAMES),
        tie_break='lower index (TopK); eager matches with the default selector (stable=True)',
        config_path=cfg.filename if isinstance(config, str) else None, checkpoint=checkpoint,
        config=cfg.pretty_text, opset=OPSET, torch=torch.__version__, mmflux=__version__)
    if calibration:
        meta['calibration_clips'] = int(sum(len(c) for c in calibration))
    with open(sidecar_path(out), 'w') as f:
        json.dump(meta, f, indent=1)
    if check:
        from .runtime import build_runtime_model
        runtime = build_runtime_model(out)
        errors, equal = {}, {}
        for b in check_budgets(module.num_patches, meta['min_budget']):
            with torch.no_grad():
                ref_logits, ref_kept = module(example, torch.tensor(b))
            logits, kept = runtime(example, budget=b)
            errors[b] = float(np.abs(logits - ref_logits.numpy()).max())
            equal[b] = bool(np.array_equal(kept, ref_kept.numpy()))
        meta['check_max_abs_logit_error'] = max(errors.values())
        meta['check_kept_equal'] = all(equal.values())
        meta['check_budgets'] = sorted(errors)
        logger.info(f'check on a random batch at budgets {sorted(errors)}: max |logit error| '
                    f'{meta["check_max_abs_logit_error"]:.2e}, kept indices equal: '
                    f'{meta["check_kept_equal"]}')
    return meta
