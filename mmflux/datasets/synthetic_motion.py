"""Deterministic generator of a small synthetic *motion* video dataset.

Every video shows one large *target* object on a textured background together
with a few small distractor shapes that drift and spin in random directions.
The class is defined only by how the target moves over time
(``move_left``, ``rotate_cw``, ``approach`` ...).  Appearance (shape, colours,
background, position, orientation, size) is sampled independently of the
class, so a single frame does not reveal the label:

* translations happen on a torus (the target wraps around the frame edges),
  so its position is uniformly distributed at every time step for every class;
* rotations start from a uniformly random orientation;
* ``approach`` grows the target from size ``a`` to ``b`` and ``recede``
  shrinks it from ``b`` to ``a``; the non-scaling classes use a size drawn
  from the same range, so the size of a frame taken at a random time has the
  same distribution in every class;
* the random stream is consumed in the same order for every class, hence two
  videos rendered from the same seed with e.g. ``move_left`` / ``move_right`` /
  ``rotate_cw`` / ``still`` share an identical first frame.

This module is self-contained on purpose (numpy, OpenCV and mmengine only) so
it can be used by tools even when the rest of :mod:`mmflux` is being edited.

Layout written by :func:`generate_motion_dataset`::

    out_dir/
        videos/train_00000.mp4 ...   # mp4 ('mp4v'), RGB content
        train.txt val.txt test.txt   # "train_00000.mp4 3" (VideoDataset)
        label_map.txt                # one class name per line, label order
        meta.json                    # parameters, classes, counts
"""
import json
import os
import os.path as osp
import re
import time
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

__all__ = [
    'MOTION_CLASSES', 'DEFAULT_NUM_CLASSES', 'GENERATOR_VERSION', 'SPLITS',
    'render_motion_video', 'video_rng', 'generate_motion_dataset'
]

#: Fixed, ordered list of classes; ``num_classes=k`` uses the first ``k``.
MOTION_CLASSES: Tuple[str, ...] = (
    'move_left',
    'move_right',
    'rotate_cw',
    'rotate_ccw',
    'approach',
    'recede',
    'move_up',
    'move_down',
    'still',
)
DEFAULT_NUM_CLASSES = 6
#: Bump whenever the rendered content changes for a given seed.
GENERATOR_VERSION = 3
SPLITS: Tuple[str, ...] = ('train', 'val', 'test')

_SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}
_SUBPIX_SHIFT = 4  # cv2 fixed-point drawing: coordinates in 1/16 pixel
_SUBPIX = float(1 << _SUBPIX_SHIFT)
_VIDEO_NAME_RE = re.compile(r'^(train|val|test)_\d+\.mp4$')

# Target motion parameters, expressed relative to S = min(H, W) per frame.
_SPEED_RANGE = (0.035, 0.07)      # translation, fraction of S per frame
_OMEGA_RANGE = (6.0, 12.0)         # rotation, degrees per frame
_RADIUS_RANGE = (0.14, 0.42)       # target circumradius, fraction of S
_SCALE_RATIO_RANGE = (1.6, 2.2)    # approach/recede total size change
_DISTRACTOR_RADIUS = (0.03, 0.07)  # fraction of S


# ----------------------------------------------------------------------------
# shapes
# ----------------------------------------------------------------------------
def _normalise_polygon(pts: np.ndarray) -> np.ndarray:
    """Move the area centroid to the origin and scale the circumradius to 1."""
    pts = np.asarray(pts, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2.0
    if abs(area) > 1e-9:
        cx = ((x + xn) * cross).sum() / (6.0 * area)
        cy = ((y + yn) * cross).sum() / (6.0 * area)
    else:
        cx, cy = x.mean(), y.mean()
    pts = pts - np.array([cx, cy])
    return pts / np.sqrt((pts**2).sum(1)).max()


_TEMPLATES = {
    'arrow': [(1.0, 0.0), (0.15, 0.65), (0.15, 0.25), (-0.9, 0.25),
              (-0.9, -0.25), (0.15, -0.25), (0.15, -0.65)],
    'L': [(-0.7, -0.9), (-0.2, -0.9), (-0.2, 0.35), (0.8, 0.35), (0.8, 0.85),
          (-0.7, 0.85)],
    'flag': [(-0.6, -1.0), (0.9, -0.55), (-0.3, -0.1), (-0.3, 1.0),
             (-0.6, 1.0)],
    'kite': [(1.0, 0.0), (0.0, 0.45), (-0.6, 0.0), (0.0, -0.25)],
    'T': [(-0.9, -0.9), (0.9, -0.9), (0.9, -0.45), (0.25, -0.45), (0.25, 0.9),
          (-0.25, 0.9), (-0.25, -0.45), (-0.9, -0.45)],
}
_TEMPLATE_NAMES = tuple(sorted(_TEMPLATES))
_NORMALISED_TEMPLATES = {
    k: _normalise_polygon(v)
    for k, v in _TEMPLATES.items()
}


def _random_polygon(rng: np.random.Generator, n_min: int, n_max: int,
                    r_min: float) -> np.ndarray:
    n = int(rng.integers(n_min, n_max + 1))
    # jittered, evenly spaced vertex angles (no degenerate spikes)
    jitter = rng.uniform(-0.35, 0.35, n) * (2 * np.pi / n)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + jitter + \
        rng.uniform(0, 2 * np.pi)
    radii = rng.uniform(r_min, 1.0, n)
    return _normalise_polygon(
        np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1))


def _target_shape(rng: np.random.Generator) -> Tuple[str, np.ndarray]:
    kind = int(rng.integers(0, len(_TEMPLATE_NAMES) + 2))
    if kind < len(_TEMPLATE_NAMES):
        name = _TEMPLATE_NAMES[kind]
        pts = _NORMALISED_TEMPLATES[name].copy()
        if rng.random() < 0.5:  # random mirror image (independent of class)
            pts[:, 1] = -pts[:, 1]
        return name, pts
    return 'polygon', _random_polygon(rng, 5, 8, 0.4)


def _distractor_shape(rng: np.random.Generator) -> Optional[np.ndarray]:
    """``None`` means a circle."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return None
    if kind == 1:
        return _normalise_polygon([(1, 1), (-1, 1), (-1, -1), (1, -1)])
    if kind == 2:
        return _random_polygon(rng, 3, 3, 0.7)
    return _random_polygon(rng, 4, 7, 0.5)


# ----------------------------------------------------------------------------
# colours / background
# ----------------------------------------------------------------------------
def _contrasting_colour(rng: np.random.Generator, ref: np.ndarray,
                        min_dist: float) -> np.ndarray:
    for _ in range(32):
        col = rng.uniform(0, 255, 3)
        if np.linalg.norm(col - ref) >= min_dist:
            return col
    return np.where(ref > 127, 20.0, 235.0)


def _background(rng: np.random.Generator, h: int, w: int,
                textured: bool) -> np.ndarray:
    base = rng.uniform(30, 225, 3)
    # always consume the same amount of randomness
    grid = int(rng.integers(3, 9))
    low = rng.normal(0.0, 1.0, (grid, grid, 3)).astype(np.float32)
    amp_low = rng.uniform(5, 20)
    stripe_period = rng.uniform(6, 24)
    stripe_angle = rng.uniform(0, np.pi)
    amp_stripe = rng.uniform(0, 10)
    grain_seed = int(rng.integers(0, 2**31 - 1))
    amp_grain = rng.uniform(0, 6)
    if not textured:
        return np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    img += amp_low * cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * np.cos(stripe_angle) + yy * np.sin(stripe_angle))
    img += (amp_stripe * np.sin(2 * np.pi * phase / stripe_period))[..., None]
    grain = np.random.default_rng(grain_seed).normal(0, 1, (h, w, 1))
    img += amp_grain * grain.astype(np.float32)
    return img


# ----------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------
def _wrap_offsets(c: float, r: float, size: int) -> List[float]:
    offs = [0.0]
    if c - r < 0:
        offs.append(float(size))
    if c + r > size:
        offs.append(-float(size))
    return offs


def _draw(img: np.ndarray, cx: float, cy: float, radius: float, angle: float,
          poly: Optional[np.ndarray], colour: Tuple[float, ...]) -> None:
    """Draw a (wrapped) polygon or circle with sub-pixel accuracy."""
    h, w = img.shape[:2]
    if poly is not None:
        ca, sa = np.cos(angle), np.sin(angle)
        rot = np.array([[ca, sa], [-sa, ca]]) * radius  # row-vector form
        base = poly @ rot
    for dx in _wrap_offsets(cx, radius, w):
        for dy in _wrap_offsets(cy, radius, h):
            x, y = cx + dx, cy + dy
            if poly is None:
                centre = (int(round(x * _SUBPIX)), int(round(y * _SUBPIX)))
                cv2.circle(img, centre,
                           max(1, int(round(radius * _SUBPIX))), colour, -1,
                           cv2.LINE_AA, _SUBPIX_SHIFT)
            else:
                pts = np.round((base + (x, y)) * _SUBPIX).astype(np.int32)
                cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, _SUBPIX_SHIFT)


def _as_hw(frame_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(frame_size, (int, np.integer)):
        h = w = int(frame_size)
    else:
        h, w = (int(v) for v in frame_size)
    if h < 16 or w < 16:
        raise ValueError(f'frame_size must be >= 16, got {(h, w)}')
    if h % 2 or w % 2:
        raise ValueError(
            f'frame_size must be even (mp4 encoder), got {(h, w)}')
    return h, w


def _class_index(label: Union[int, str]) -> int:
    if isinstance(label, str):
        if label not in MOTION_CLASSES:
            raise ValueError(f'unknown motion class {label!r}; '
                             f'choose from {MOTION_CLASSES}')
        return MOTION_CLASSES.index(label)
    label = int(label)
    if not 0 <= label < len(MOTION_CLASSES):
        raise ValueError(f'label {label} out of range')
    return label


def render_motion_video(label: Union[int, str],
                        rng: Union[np.random.Generator, int],
                        num_frames: int = 32,
                        frame_size: Union[int, Sequence[int]] = 96,
                        max_distractors: int = 3,
                        textured_background: bool = True,
                        return_info: bool = False):
    """Render the frames of one synthetic motion video.

    Args:
        label (int | str): Index into :data:`MOTION_CLASSES` or class name.
        rng (np.random.Generator | int): Random generator (or seed). All
            randomness is drawn from it in a class-independent order.
        num_frames (int): Number of frames T. Defaults to 32.
        frame_size (int | tuple): ``S`` or ``(H, W)``; even. Defaults to 96.
        max_distractors (int): Up to this many distractors (at least one when
            > 0); 0 renders the target alone. Defaults to 3.
        textured_background (bool): If False the background is one flat
            colour (handy for tests). Defaults to True.
        return_info (bool): Also return a dict with the target trajectory.

    Returns:
        np.ndarray: ``(T, H, W, 3)`` uint8 RGB frames, and optionally the
        info dict (``center`` (T, 2) as (x, y) before wrapping, ``angle_deg``
        (T,), ``radius`` (T,), ``class``, ``shape``).
    """
    cls = MOTION_CLASSES[_class_index(label)]
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    h, w = _as_hw(frame_size)
    num_frames = int(num_frames)
    if num_frames < 2:
        raise ValueError('num_frames must be >= 2')
    s = float(min(h, w))
    t = np.arange(num_frames, dtype=np.float64)

    # ---- appearance (class independent) ----
    bg = _background(rng, h, w, textured_background)
    bg_mean = bg.reshape(-1, 3).mean(0)
    shape_name, poly = _target_shape(rng)
    colour = _contrasting_colour(rng, bg_mean, 110.0)
    marker_colour = _contrasting_colour(rng, colour, 120.0)
    marker_pos = rng.uniform(0.25, 0.45) * np.array(
        [np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    marker_rel_r = rng.uniform(0.16, 0.24)

    # ---- motion parameters (all drawn, class picks what it uses) ----
    start = rng.uniform(0, 1, 2) * (w, h)
    angle0 = rng.uniform(0, 360)
    speed = rng.uniform(*_SPEED_RANGE) * s
    omega = rng.uniform(*_OMEGA_RANGE)
    ratio = rng.uniform(*_SCALE_RATIO_RANGE)
    r_lo, r_hi = _RADIUS_RANGE[0] * s, _RADIUS_RANGE[1] * s
    a = float(np.exp(rng.uniform(np.log(r_lo), np.log(r_hi / ratio))))
    b = a * ratio
    size_u = rng.uniform(0, 1)

    velocity = np.zeros(2)
    ang_vel = 0.0
    frac = t / (num_frames - 1)
    radius = np.full(num_frames, a * ratio**size_u)
    if cls == 'move_left':
        velocity[0] = -speed
    elif cls == 'move_right':
        velocity[0] = speed
    elif cls == 'move_up':
        velocity[1] = -speed
    elif cls == 'move_down':
        velocity[1] = speed
    elif cls == 'rotate_cw':
        ang_vel = omega  # image coords (y down): increasing angle is clockwise
    elif cls == 'rotate_ccw':
        ang_vel = -omega
    elif cls == 'approach':
        radius = a * (b / a)**frac
    elif cls == 'recede':
        radius = b * (a / b)**frac
    elif cls != 'still':  # pragma: no cover - guarded by _class_index
        raise AssertionError(cls)
    centers = start[None] + t[:, None] * velocity[None]
    angles = angle0 + ang_vel * t

    # ---- distractors (class independent) ----
    n_d = (int(rng.integers(1, max_distractors + 1))
           if max_distractors > 0 else 0)
    distractors = []
    for _ in range(n_d):
        d_poly = _distractor_shape(rng)
        d_col = tuple(float(c) for c in
                      _contrasting_colour(rng, bg_mean, 70.0))
        d_r = rng.uniform(*_DISTRACTOR_RADIUS) * s
        d_pos = rng.uniform(0, 1, 2) * (w, h)
        d_dir = rng.uniform(0, 2 * np.pi)
        d_speed = rng.uniform(0.2, 1.0) * _SPEED_RANGE[1] * s
        d_ang0 = rng.uniform(0, 360)
        d_omega = rng.uniform(-8.0, 8.0)
        d_front = bool(rng.random() < 0.3)
        distractors.append((d_poly, d_col, d_r, d_pos,
                            d_speed * np.array([np.cos(d_dir), np.sin(d_dir)]),
                            d_ang0, d_omega, d_front))

    # ---- render ----
    col_t = tuple(float(c) for c in colour)
    col_m = tuple(float(c) for c in marker_colour)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    bg_u8 = np.clip(np.round(bg), 0, 255).astype(np.uint8)
    for i in range(num_frames):
        img = bg_u8.copy()
        for front in (False, True):
            if front:
                cx, cy = centers[i, 0] % w, centers[i, 1] % h
                ang = np.deg2rad(angles[i])
                r = radius[i]
                _draw(img, cx, cy, r, ang, poly, col_t)
                ca, sa = np.cos(ang), np.sin(ang)
                mx = (marker_pos[0] * ca - marker_pos[1] * sa) * r
                my = (marker_pos[0] * sa + marker_pos[1] * ca) * r
                _draw(img, (cx + mx) % w, (cy + my) % h, marker_rel_r * r,
                      0.0, None, col_m)
            for (d_poly, d_col, d_r, d_pos, d_vel, d_ang0, d_omega,
                 d_front) in distractors:
                if d_front != front:
                    continue
                p = d_pos + i * d_vel
                _draw(img, p[0] % w, p[1] % h, d_r,
                      np.deg2rad(d_ang0 + d_omega * i), d_poly, d_col)
        frames[i] = img
    if not return_info:
        return frames
    info = dict(
        class_name=cls,
        shape=shape_name,
        center=centers,
        angle_deg=angles,
        radius=radius,
        colour=colour,
        num_distractors=n_d)
    return frames, info


# ----------------------------------------------------------------------------
# dataset generation
# ----------------------------------------------------------------------------
def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent generator for video ``index`` of ``split``."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _SPLIT_IDS[split], int(index)]))


def _video_name(split: str, index: int) -> str:
    return f'{split}_{index:05d}.mp4'


def _write_mp4(path: str, frames: np.ndarray, fps: float) -> None:
    h, w = frames.shape[1:3]
    tmp = path[:-4] + '.tmp.mp4'
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*'mp4v'), float(fps),
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cv2.VideoWriter could not open {tmp} (mp4v)')
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    os.replace(tmp, path)


def _generate_one(task) -> Tuple[str, int]:
    (video_dir, split, index, label, seed, num_frames, hw, fps,
     max_distractors) = task
    frames = render_motion_video(
        label,
        video_rng(seed, split, index),
        num_frames=num_frames,
        frame_size=hw,
        max_distractors=max_distractors)
    _write_mp4(osp.join(video_dir, _video_name(split, index)), frames, fps)
    return split, index


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def generate_motion_dataset(out_dir: str,
                            num_train: int = 240,
                            num_val: int = 60,
                            num_test: int = 60,
                            num_classes: int = DEFAULT_NUM_CLASSES,
                            frame_size: Union[int, Sequence[int]] = 96,
                            num_frames: int = 32,
                            fps: float = 16,
                            seed: int = 0,
                            workers: int = 1,
                            max_distractors: int = 3,
                            force: bool = False,
                            progress: bool = True) -> dict:
    """Generate (or reuse) the synthetic motion dataset in ``out_dir``.

    Labels are assigned round-robin (``label = index % num_classes``), so every
    split is balanced (counts differ by at most one). Video ``index`` of
    ``split`` is rendered from :func:`video_rng` ``(seed, split, index)``, so
    results do not depend on ``workers`` and missing files can be regenerated
    individually.

    If ``out_dir/meta.json`` records the same parameters and every listed file
    exists, nothing is rendered (missing videos alone are re-rendered).

    Args:
        out_dir (str): Output directory.
        num_train, num_val, num_test (int): Videos per split.
        num_classes (int): Use the first ``num_classes`` of
            :data:`MOTION_CLASSES`. Defaults to 6.
        frame_size (int | tuple): ``S`` or ``(H, W)``, even. Defaults to 96.
        num_frames (int): Frames per video. Defaults to 32.
        fps (float): Frame rate stored in the mp4. Defaults to 16.
        seed (int): Global seed. Defaults to 0.
        workers (int): Processes used for rendering/encoding. Defaults to 1.
        max_distractors (int): Max distractor shapes per video. Defaults to 3.
        force (bool): Regenerate everything even if ``meta.json`` matches.
        progress (bool): Show an mmengine progress bar.

    Returns:
        dict: The meta data (as stored in ``meta.json``) plus ``out_dir``,
        ``reused`` (bool), ``num_rendered`` and ``elapsed_s``.
    """
    t0 = time.perf_counter()
    if not 1 <= num_classes <= len(MOTION_CLASSES):
        raise ValueError(f'num_classes must be in [1, {len(MOTION_CLASSES)}]')
    counts = dict(train=int(num_train), val=int(num_val), test=int(num_test))
    if any(c < 0 for c in counts.values()):
        raise ValueError(f'negative split size in {counts}')
    h, w = _as_hw(frame_size)
    classes = list(MOTION_CLASSES[:num_classes])
    params = dict(
        generator_version=GENERATOR_VERSION,
        seed=int(seed),
        classes=classes,
        counts=counts,
        frame_size=[h, w],
        num_frames=int(num_frames),
        fps=float(fps),
        max_distractors=int(max_distractors),
        codec='mp4v')

    out_dir = osp.abspath(out_dir)
    video_dir = osp.join(out_dir, 'videos')
    meta_path = osp.join(out_dir, 'meta.json')
    os.makedirs(video_dir, exist_ok=True)

    entries = [(split, i, i % num_classes) for split in SPLITS
               for i in range(counts[split])]
    ann_files = {s: osp.join(out_dir, f'{s}.txt') for s in SPLITS}
    side_files = list(ann_files.values()) + [
        osp.join(out_dir, 'label_map.txt')
    ]

    old = None if force else _read_json(meta_path)
    same = old is not None and old.get('params') == params
    if same:
        todo = [e for e in entries if not osp.isfile(
            osp.join(video_dir, _video_name(e[0], e[1])))]
        missing_side = not all(osp.isfile(p) for p in side_files)
    else:
        todo = entries
        missing_side = True
        if osp.exists(meta_path):
            os.remove(meta_path)  # invalid until generation completes
        # drop stale videos of a previous configuration
        wanted = {_video_name(s, i) for s, i, _ in entries}
        for name in os.listdir(video_dir):
            if _VIDEO_NAME_RE.match(name) and name not in wanted:
                os.remove(osp.join(video_dir, name))

    if same and not todo and not missing_side:
        print_log(
            f'Synthetic motion dataset in {out_dir} matches the requested '
            f'parameters; reusing it ({sum(counts.values())} videos).',
            logger='current')
        meta = dict(old)
        meta.update(out_dir=out_dir, reused=True, num_rendered=0,
                    elapsed_s=time.perf_counter() - t0)
        return meta

    if todo:
        print_log(
            f'Rendering {len(todo)} synthetic motion videos '
            f'({num_classes} classes, {h}x{w}, {num_frames} frames) into '
            f'{video_dir} with {workers} worker(s)...',
            logger='current')
    tasks = [(video_dir, s, i, lbl, int(seed), int(num_frames), (h, w),
              float(fps), int(max_distractors)) for s, i, lbl in todo]
    bar = ProgressBar(len(tasks)) if progress and tasks else None
    step = max(1, len(tasks) // 40)  # keep the bar output short in logs
    done = 0

    def _tick():
        nonlocal done
        done += 1
        if bar is not None and (done % step == 0 or done == len(tasks)):
            bar.update(done - bar.completed)

    if workers > 1 and len(tasks) > 1:
        import multiprocessing as mp

        # 'spawn', not 'fork': a forked child inherits OpenCV's thread pool in
        # whatever state the parent left it and can hang in its first cv2 call
        # once the parent has used cv2 (opencv/opencv#5150)
        ctx = mp.get_context('spawn')
        with ctx.Pool(min(int(workers), len(tasks)),
                      initializer=_worker_init) as pool:
            for _ in pool.imap_unordered(_generate_one, tasks, chunksize=4):
                _tick()
    else:
        for task in tasks:
            _generate_one(task)
            _tick()
    if bar is not None:
        bar.file.write('\n')
        bar.file.flush()

    for split in SPLITS:
        lines = [f'{_video_name(s, i)} {lbl}\n' for s, i, lbl in entries
                 if s == split]
        with open(ann_files[split], 'w', encoding='utf-8') as f:
            f.writelines(lines)
    with open(osp.join(out_dir, 'label_map.txt'), 'w', encoding='utf-8') as f:
        f.writelines(c + '\n' for c in classes)

    class_counts = {
        split: [sum(1 for s, _, lbl in entries if s == split and lbl == k)
                for k in range(num_classes)]
        for split in SPLITS
    }
    meta = dict(
        params=params,
        classes=classes,
        num_classes=num_classes,
        counts=counts,
        class_counts=class_counts,
        frame_size=[h, w],
        num_frames=int(num_frames),
        fps=float(fps),
        seed=int(seed),
        generator_version=GENERATOR_VERSION,
        data_prefix='videos',
        ann_files={s: f'{s}.txt' for s in SPLITS},
        label_map='label_map.txt')
    with open(meta_path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)
    os.replace(meta_path + '.tmp', meta_path)
    elapsed = time.perf_counter() - t0
    print_log(
        f'Synthetic motion dataset ready in {out_dir}: '
        f'{len(todo)} video(s) rendered in {elapsed:.1f}s.',
        logger='current')
    meta.update(out_dir=out_dir, reused=False, num_rendered=len(todo),
                elapsed_s=elapsed)
    return meta
