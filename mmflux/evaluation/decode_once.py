"""Decode a video once and build the inputs of several test grids from it.

Why: a Token Optimization search scores many grids (frames x side) on the same
videos. Decoding each video once per grid repeats the most expensive data step;
here every grid's sampler is run on the video's frame count, the union of their
frame indices is decoded once, and each grid's own resize/crop/format/pack steps
run on its frames. The result is identical to running each grid's pipeline
(tests/evaluation/test_decode_once.py compares the logits).
"""
import copy
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmengine.dataset import Compose

from mmaction.registry import TRANSFORMS
from .grid_config import SAMPLER_TYPES, is_decoder, pipelines, set_test_grid, type_name

Grid = Tuple[int, int]


def _split_at_decode(pipeline: Sequence[dict], where: str) -> Tuple[list, list, dict, list]:
    """(steps before the sampler, the sampler, the decode step, steps after it)."""
    names = [type_name(s) for s in pipeline]
    samplers = [i for i, n in enumerate(names) if n in SAMPLER_TYPES]
    decoders = [i for i, s in enumerate(pipeline) if is_decoder(s)]
    if len(samplers) != 1 or len(decoders) != 1 or samplers[0] > decoders[0]:
        raise ValueError(f'{where}: decode-once needs one frame sampler ({", ".join(SAMPLER_TYPES)}) '
                         f'before one *Decode step; got {names}. Use the per-grid search '
                         '(tools/token_optimize.py --per-grid).')
    s, d = samplers[0], decoders[0]
    if d != s + 1:
        raise ValueError(f'{where}: steps {names[s + 1:d]} between the sampler and the decoder '
                         'are not supported by decode-once; use --per-grid.')
    return list(pipeline[:s]), pipeline[s], pipeline[d], list(pipeline[d + 1:])


class MultiGridDecoder:
    """Inputs of every grid in ``grids`` from one decode of a video.

    Args:
        cfg: the config whose ``split`` pipeline is the template of every grid.
        grids: ``(frames, side)`` pairs.
        num_clips: temporal views per video (None: the config's).
    """

    def __init__(self, cfg, grids: Sequence[Grid], num_clips=None, split: str = 'test') -> None:
        self.grids = [tuple(int(v) for v in g) for g in dict.fromkeys(tuple(g) for g in grids)]
        self.samplers: Dict[Grid, object] = {}
        self.posts: Dict[Grid, Compose] = {}
        pre = decode = None
        for grid in self.grids:
            cfg_g = copy.deepcopy(cfg)
            set_test_grid(cfg_g, grid[0], grid[1], num_clips=num_clips, split=split)
            where, pipeline = pipelines(cfg_g, split)[0]
            pre_g, sampler, decode_g, post = _split_at_decode(pipeline, where)
            if pre is None:
                pre, decode = pre_g, decode_g
            self.samplers[grid] = TRANSFORMS.build(sampler)
            self.posts[grid] = Compose(post)
        self.pre = Compose(pre)
        self.decode = TRANSFORMS.build(decode)

    def __call__(self, data_info: Dict) -> Dict[Grid, Dict]:
        """Packed inputs (``inputs``, ``data_samples``) per grid for one video."""
        base = self.pre(copy.deepcopy(data_info))
        sampled = {}
        for grid, sampler in self.samplers.items():
            sampled[grid] = sampler(dict(base))  # samplers read total_frames only
        union = np.unique(np.concatenate([np.asarray(r['frame_inds']).reshape(-1)
                                          for r in sampled.values()]))
        decoded = self.decode(dict(base, frame_inds=union))
        frames = dict(zip(union.tolist(), decoded['imgs']))
        out = {}
        for grid, results in sampled.items():
            inds = np.asarray(results['frame_inds'])
            inds = np.squeeze(inds) if inds.ndim != 1 else inds
            results = dict(results, frame_inds=inds, video_reader=None,
                           imgs=[frames[int(i)] for i in inds.reshape(-1)],
                           original_shape=decoded['original_shape'],
                           img_shape=decoded['img_shape'])
            out[grid] = self.posts[grid](results)
        return out


def frames_needed(cfg, grids: Sequence[Grid], total_frames: int, num_clips=None,
                  split: str = 'test') -> List[int]:
    """Frame indices a video of ``total_frames`` frames needs for all ``grids`` (sorted)."""
    decoder = MultiGridDecoder(cfg, grids, num_clips=num_clips, split=split)
    inds = [np.asarray(s(dict(total_frames=total_frames, start_index=0))['frame_inds']).reshape(-1)
            for s in decoder.samplers.values()]
    return np.unique(np.concatenate(inds)).tolist()
