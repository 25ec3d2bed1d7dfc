"""Load an exported model (ONNX Runtime or OpenVINO) as a callable on clip batches at any budget."""
import json
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from ._requires import require

#: precisions a runtime can be asked for (the file's own, or a compile-time choice)
RUNTIME_PRECISIONS = ('fp32', 'bf16', 'int8', 'int8-dynamic')


def _sidecar(path: str) -> Dict:
    meta_path = path + '.json'
    if not osp.isfile(meta_path):
        raise FileNotFoundError(f'{meta_path} not found: an exported model needs the JSON sidecar '
                                'that tools/deployment/export.py writes beside it.')
    with open(meta_path) as f:
        return json.load(f)


def openvino_has_native_bf16(core=None) -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (AVX512_BF16 or AMX)."""
    ov = require('openvino', 'running an OpenVINO model')
    core = core or ov.Core()
    return 'BF16' in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


class RuntimeModel:
    """``model(clips, budget=None) -> (logits, kept)`` through ONNX Runtime (``.onnx``) or
    OpenVINO (``.xml``), one exported file for every token budget of its grid.

    clips: (N, 3, T, S, S) normalised float array or tensor at the exported grid.
    budget: patch tokens kept per view for this call (None: the sidecar's default
    budget; at or above the grid's token count: all tokens). ``meta`` is the export
    sidecar (grid, default budget, kept count and head per budget, config, ...).

    precision (OpenVINO): ``fp32`` (exact), ``bf16`` (where the CPU has native
    bf16, else fp32 with a logged note), default the file's precision (an int8
    file runs its int8 ops, the rest in fp32).
    """

    def __init__(self, path: str, num_threads: Optional[int] = None,
                 precision: Optional[str] = None) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'exported model {path} does not exist.')
        self.path = path
        self.meta = _sidecar(path)
        self.backend = 'openvino' if path.endswith('.xml') else 'onnxruntime'
        precision = precision or self.meta.get('precision', 'fp32')
        if precision not in RUNTIME_PRECISIONS:
            raise ValueError(f'precision {precision!r}: use one of {RUNTIME_PRECISIONS}.')
        if self.backend == 'onnxruntime':
            if precision == 'bf16':
                raise ValueError(f'{path}: bf16 runs through OpenVINO; export with --format openvino.')
            ort = require('onnxruntime', 'running an ONNX model')
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if num_threads:
                options.intra_op_num_threads = int(num_threads)
            # idle worker threads sleep instead of spinning: on a CPU shared with other
            # work (eager PyTorch, other processes) spinning steals their cores
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
            self._session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            self._inputs = [i.name for i in self._session.get_inputs()]
        else:
            ov = require('openvino', 'running an OpenVINO model')
            core = ov.Core()
            if precision == 'bf16' and not openvino_has_native_bf16(core):
                print_log(f'{path}: this CPU has no native bf16 (OpenVINO CPU capabilities '
                          f'{core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")}); running fp32.',
                          logger='current')
                precision = 'fp32'
            # the CPU plugin runs bf16 by default on CPUs with AVX512_BF16 / AMX: say which
            config = {'INFERENCE_PRECISION_HINT': 'bf16' if precision == 'bf16' else 'f32',
                      'PERFORMANCE_HINT': 'LATENCY'}
            if num_threads:
                config['INFERENCE_NUM_THREADS'] = int(num_threads)
            model = core.read_model(path)
            self._inputs = [p.get_any_name() for p in model.inputs]
            self._compiled = core.compile_model(model, 'CPU', config)
            self._request = self._compiled.create_infer_request()
        self.precision = precision
        if len(self._inputs) != 2:
            raise ValueError(f'{path} has inputs {self._inputs}: it was exported by an older '
                             'mmflux (one file per budget); re-export it with '
                             'tools/deployment/export.py (one file serves every budget).')

    @property
    def grid(self) -> Tuple[int, int]:
        frames, side = self.meta['grid']
        return int(frames), int(side)

    @property
    def max_budget(self) -> int:
        """Patch tokens of the grid: every budget from here on keeps all of them."""
        return int(self.meta['max_budget'])

    def budget_info(self, budget: Optional[int] = None) -> Dict:
        """What ``budget`` (None: the default) runs: budget, kept tokens per view and head."""
        if budget is None:
            budget = self.meta.get('budget')
        if budget is None or budget == 'all':
            budget = self.max_budget
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
            raise ValueError(f'token budget {budget!r}: give an int (patch tokens per view) or None.')
        row = min(int(budget), self.max_budget) - 1
        if budget < 1 or self.meta['kept_counts'][row] < 1:
            raise ValueError(f'token budget {budget} keeps no token on the {self.grid} grid; the '
                             f'smallest budget of {self.path} is {self.meta["min_budget"]}.')
        return dict(token_budget=None if budget >= self.max_budget else int(budget),
                    num_tokens=int(self.meta['kept_counts'][row]), head=int(self.meta['heads'][row]))

    def _check(self, clips: np.ndarray) -> None:
        frames, side = self.grid
        if clips.ndim != 5 or tuple(clips.shape[1:]) != (3, frames, side, side):
            raise ValueError(f'{self.path} was exported for clips (N, 3, {frames}, {side}, {side}), '
                             f'got {tuple(clips.shape)}; re-export with --grid for another grid.')

    def __call__(self, clips, budget: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        if hasattr(clips, 'detach'):  # torch tensor
            clips = clips.detach().cpu().numpy()
        clips = np.ascontiguousarray(clips, dtype=np.float32)
        self._check(clips)
        info = self.budget_info(budget)
        value = np.array(info['token_budget'] or self.max_budget, dtype=np.int64)
        if self.backend == 'onnxruntime':
            logits, kept = self._session.run(None, dict(zip(self._inputs, (clips, value))))
        else:
            result = self._request.infer({0: clips, 1: value})
            logits, kept = (result[self._compiled.output(i)] for i in range(2))
        return np.asarray(logits), np.asarray(kept).astype(np.int64, copy=False)


def build_runtime_model(path: str, num_threads: Optional[int] = None,
                        precision: Optional[str] = None) -> RuntimeModel:
    """The exported model at ``path`` as a callable: (clips (N, 3, T, S, S), budget) -> (logits, kept)."""
    return RuntimeModel(path, num_threads=num_threads, precision=precision)
