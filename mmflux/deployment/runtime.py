"""Load an exported model (ONNX Runtime or OpenVINO) as a callable on clip batches."""
import json
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np

from ._requires import require


def _sidecar(path: str) -> Dict:
    meta_path = path + '.json'
    if not osp.isfile(meta_path):
        raise FileNotFoundError(f'{meta_path} not found: an exported model needs the JSON sidecar '
                                'that tools/deployment/export.py writes beside it.')
    with open(meta_path) as f:
        return json.load(f)


class RuntimeModel:
    """``model(clips) -> (logits, kept)`` through ONNX Runtime (``.onnx``) or OpenVINO (``.xml``).

    clips: (N, 3, T, S, S) normalised float array or tensor at the exported grid.
    ``meta`` is the export sidecar (grid, budget, head, config, ...).
    """

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'exported model {path} does not exist.')
        self.path = path
        self.meta = _sidecar(path)
        self.backend = 'openvino' if path.endswith('.xml') else 'onnxruntime'
        if self.backend == 'onnxruntime':
            ort = require('onnxruntime', 'running an ONNX model')
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if num_threads:
                options.intra_op_num_threads = int(num_threads)
            # idle worker threads sleep instead of spinning: on a CPU shared with other
            # work (eager PyTorch, other processes) spinning steals their cores
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
            self._session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            self._input = self._session.get_inputs()[0].name
        else:
            ov = require('openvino', 'running an OpenVINO model')
            # f32: the CPU plugin otherwise runs bf16 on CPUs with AVX512_BF16 / AMX
            config = {'INFERENCE_PRECISION_HINT': 'f32', 'PERFORMANCE_HINT': 'LATENCY'}
            if num_threads:
                config['INFERENCE_NUM_THREADS'] = int(num_threads)
            core = ov.Core()
            self._compiled = core.compile_model(core.read_model(path), 'CPU', config)
            self._request = self._compiled.create_infer_request()

    @property
    def grid(self) -> Tuple[int, int]:
        frames, side = self.meta['grid']
        return int(frames), int(side)

    def _check(self, clips: np.ndarray) -> None:
        frames, side = self.grid
        if clips.ndim != 5 or tuple(clips.shape[1:]) != (3, frames, side, side):
            raise ValueError(f'{self.path} was exported for clips (N, 3, {frames}, {side}, {side}), '
                             f'got {tuple(clips.shape)}; re-export with --grid for another grid.')

    def __call__(self, clips) -> Tuple[np.ndarray, np.ndarray]:
        if hasattr(clips, 'detach'):  # torch tensor
            clips = clips.detach().cpu().numpy()
        clips = np.ascontiguousarray(clips, dtype=np.float32)
        self._check(clips)
        if self.backend == 'onnxruntime':
            logits, kept = self._session.run(None, {self._input: clips})
        else:
            result = self._request.infer({0: clips})
            logits, kept = (result[self._compiled.output(i)] for i in range(2))
        return np.asarray(logits), np.asarray(kept).astype(np.int64, copy=False)


def build_runtime_model(path: str, num_threads: Optional[int] = None) -> RuntimeModel:
    """The exported model at ``path`` as a callable: clips (N, 3, T, S, S) -> (logits, kept)."""
    return RuntimeModel(path, num_threads=num_threads)
