"""Helpers of the robustness tests: unusual and broken videos, running the tools,
reading their logs, pickles that must not be loaded. (Tiny configs: conftest.py.)"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: videos that must load (odd sizes, few frames, grayscale, frames below the crop)
GOOD_KINDS = ('one_frame', 'three_frames', 'gray', 'tiny_20x20', 'odd_97x61')
#: videos that cannot be decoded; ``truncated_avi`` (an MJPG AVI cut at 60%) crashes
#: decord (a segfault) when opened from bytes as MMAction2's DecordInit opens it
BAD_KINDS = ('missing', 'empty', 'truncated', 'corrupt', 'truncated_avi')


def write_video(path: str, num_frames: int = 12, height: int = 64, width: int = 80,
                color: bool = True, seed: int = 0) -> str:
    """A small mp4 (mp4v) with a moving square on noise."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 8, (width, height),
                             isColor=color)
    assert writer.isOpened(), path
    side = max(2, min(height, width) // 4)
    for t in range(num_frames):
        frame = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        y = (t * 3) % max(1, height - side)
        x = (t * 5) % max(1, width - side)
        frame[y:y + side, x:x + side] = (255, 200, 50)
        writer.write(frame if color else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    writer.release()
    return path


def write_mjpg_avi(path: str, num_frames: int = 20, height: int = 64, width: int = 80,
                   seed: int = 0) -> str:
    """An MJPG AVI of noise frames (OpenCV's writer)."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 8, (width, height))
    assert writer.isOpened(), path
    for _ in range(num_frames):
        writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    writer.release()
    return path


def truncate_file(src: str, dst: str, fraction: float) -> str:
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])
    return dst


def make_bad_video(kind: str, video_dir: str, template: str) -> str:
    """Write (or not, for ``missing``) a broken video of ``kind``; returns its name."""
    name = f'{kind}.mp4'  # decord and OpenCV tell containers by content, not by name
    path = osp.join(video_dir, name)
    data = open(template, 'rb').read()
    if kind == 'truncated_avi':
        truncate_file(write_mjpg_avi(path + '.whole.avi'), path, 0.6)
        os.remove(path + '.whole.avi')
    elif kind == 'missing':
        pass
    elif kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'truncated':
        open(path, 'wb').write(data[:len(data) // 3])
    elif kind == 'corrupt':
        rng = np.random.default_rng(1)
        raw = np.frombuffer(data, dtype=np.uint8).copy()
        raw[64:] = rng.integers(0, 256, raw.size - 64, dtype=np.uint8)
        open(path, 'wb').write(raw.tobytes())
    else:
        raise ValueError(kind)
    return name


def make_good_video(kind: str, video_dir: str, seed: int = 0) -> str:
    path = osp.join(video_dir, f'{kind}.mp4')
    if kind == 'one_frame':
        write_video(path, num_frames=1, seed=seed)
    elif kind == 'three_frames':
        write_video(path, num_frames=3, seed=seed)
    elif kind == 'gray':
        write_video(path, num_frames=10, color=False, seed=seed)
    elif kind == 'tiny_20x20':
        write_video(path, num_frames=10, height=20, width=20, seed=seed)
    elif kind == 'odd_97x61':
        write_video(path, num_frames=10, height=61, width=97, seed=seed)
    else:
        raise ValueError(kind)
    return osp.basename(path)


def build_video_set(root: str, num_plain: int = 4, num_classes: int = 6,
                    bad: Sequence[str] = BAD_KINDS, good: Sequence[str] = GOOD_KINDS,
                    ann_name: str = 'list.txt',
                    prefix: str = 'plain') -> Tuple[str, str, List[str]]:
    """Videos (in ``root/videos``) and a ``name label`` list (``root/ann_name``)
    mixing good and broken files.

    Returns ``(video_dir, ann_file, bad_names)``.
    """
    video_dir = osp.join(root, 'videos')
    os.makedirs(video_dir, exist_ok=True)
    names = [osp.basename(write_video(osp.join(video_dir, f'{prefix}_{i}.mp4'), seed=i))
             for i in range(num_plain)]
    names += [make_good_video(kind, video_dir, seed=10 + i) for i, kind in enumerate(good)]
    template = osp.join(video_dir, names[0])
    bad_names = [make_bad_video(kind, video_dir, template) for kind in bad]
    ordered = []
    for i in range(max(len(names), len(bad_names))):  # interleave good and bad
        if i < len(names):
            ordered.append(names[i])
        if i < len(bad_names):
            ordered.append(bad_names[i])
    ann_file = osp.join(root, ann_name)
    with open(ann_file, 'w') as f:
        for i, name in enumerate(ordered):
            f.write(f'{name} {i % num_classes}\n')
    return video_dir, ann_file, bad_names


def run_tool(args: Sequence[str], env: Optional[Dict[str, str]] = None,
             check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    full_env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)  # torch's opt-out of safe loading
    full_env.update(env or {})
    result = subprocess.run([sys.executable] + list(args), cwd=REPO_ROOT, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (result.stdout[-6000:] + '\n' + result.stderr[-6000:])
    return result


def train_scalars(work_dir: str) -> List[Dict]:
    """The training records (those with a ``loss``) of vis_data/scalars.json."""
    records = []
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
    return [r for r in records if 'loss' in r]


class CustomPayload:
    """A harmless custom class: unpickling it still means importing test code."""

    def __init__(self, value: int = 3) -> None:
        self.value = value


class RunsCode:
    """Unpickling this object runs a shell command (``__reduce__`` -> os.system)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))
