"""Tests for the embedded synthetic motion video dataset generator."""
import hashlib
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from mmflux.datasets import synthetic_motion as sm

decord = pytest.importorskip('decord')

DEFAULT6 = ('move_left', 'move_right', 'rotate_cw', 'rotate_ccw', 'approach',
            'recede')
SMALL = dict(num_train=12, num_val=6, num_test=6, num_classes=6,
             frame_size=64, num_frames=12, fps=16, seed=3, progress=False)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def _plain(label, seed, **kw):
    """Target only, flat background."""
    kw.setdefault('num_frames', 16)
    kw.setdefault('frame_size', 96)
    return sm.render_motion_video(
        label, np.random.default_rng(seed), max_distractors=0,
        textured_background=False, return_info=True, **kw)


def _masks(frames):
    """Foreground masks of a flat-background video (background = median)."""
    bg = np.median(frames[0].reshape(-1, 3), axis=0)
    diff = np.abs(frames.astype(np.int16) - bg.astype(np.int16)).max(-1)
    return diff > 40


def _circular_centroid(mask):
    """Centroid on the torus (objects wrap around the frame edges)."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    cx = np.angle(np.exp(2j * np.pi * xs / w).mean()) * w / (2 * np.pi)
    cy = np.angle(np.exp(2j * np.pi * ys / h).mean()) * h / (2 * np.pi)
    return np.array([cx % w, cy % h])


def _wrapped_delta(a, b, size):
    return (b - a + size / 2) % size - size / 2


def _decode(path):
    vr = decord.VideoReader(path)
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def _md5(path):
    with open(path, 'rb') as f:
        return hashlib.md5(f.read()).hexdigest()


# ----------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------
def test_class_list():
    assert len(sm.MOTION_CLASSES) >= 9
    assert len(set(sm.MOTION_CLASSES)) == len(sm.MOTION_CLASSES)
    assert sm.MOTION_CLASSES[:6] == DEFAULT6
    assert sm.DEFAULT_NUM_CLASSES == 6
    for name in ('move_up', 'move_down', 'still'):
        assert name in sm.MOTION_CLASSES


def test_render_shape_dtype_and_determinism():
    a = sm.render_motion_video('rotate_cw', sm.video_rng(0, 'train', 5),
                               num_frames=10, frame_size=(64, 80))
    b = sm.render_motion_video(2, sm.video_rng(0, 'train', 5),
                               num_frames=10, frame_size=(64, 80))
    c = sm.render_motion_video(2, sm.video_rng(1, 'train', 5),
                               num_frames=10, frame_size=(64, 80))
    d = sm.render_motion_video(2, sm.video_rng(0, 'val', 5),
                               num_frames=10, frame_size=(64, 80))
    assert a.shape == (10, 64, 80, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)
    # frames are not degenerate and change over time (moving clutter)
    assert a.std() > 10
    assert np.abs(a[1:].astype(int) - a[:-1]).mean() > 0.1
    with pytest.raises(ValueError):
        sm.render_motion_video(0, 0, frame_size=63)
    with pytest.raises(ValueError):
        sm.render_motion_video('jump', 0)


def test_appearance_is_class_independent():
    """Same seed: identical first frame for classes with a fixed start."""
    same_start = ('move_left', 'move_right', 'move_up', 'move_down',
                  'rotate_cw', 'rotate_ccw', 'still')
    for seed in range(4):
        videos = {c: sm.render_motion_video(c, np.random.default_rng(seed),
                                            num_frames=8, frame_size=64)
                  for c in same_start}
        first = videos['still'][0]
        for c in same_start:
            assert np.array_equal(videos[c][0], first), c
            if c != 'still':
                assert not np.array_equal(videos[c][-1], videos['still'][-1])
        # approach(t) and recede(T-1-t) share the target size
        _, ia = _plain('approach', seed)
        _, ir = _plain('recede', seed)
        np.testing.assert_allclose(ia['radius'], ir['radius'][::-1])


@pytest.mark.parametrize('cls,axis,sign', [('move_left', 0, -1),
                                           ('move_right', 0, 1),
                                           ('move_up', 1, -1),
                                           ('move_down', 1, 1)])
def test_translation_direction_from_pixels(cls, axis, sign):
    for seed in range(5):
        frames, _ = _plain(cls, seed)
        masks = _masks(frames)
        cents = np.stack([_circular_centroid(m) for m in masks])
        size = frames.shape[2 - axis]
        steps = _wrapped_delta(cents[:-1, axis], cents[1:, axis], size)
        other = _wrapped_delta(cents[:-1, 1 - axis], cents[1:, 1 - axis],
                               frames.shape[1 + axis])
        assert np.all(sign * steps > 0.5), (seed, steps)
        assert np.abs(other).max() < 0.5
        # object area stays (about) constant
        areas = masks.sum((1, 2))
        assert areas.max() < 1.15 * areas.min()


@pytest.mark.parametrize('cls', ['rotate_cw', 'rotate_ccw'])
def test_rotation_sense_from_pixels(cls):
    cands = np.arange(-40, 41, 1.0)
    for seed in range(6):
        # large frames: precise pixel-level angle estimate
        frames, info = _plain(cls, seed, num_frames=8, frame_size=192)
        h, w = frames.shape[1:3]
        # centre the (static) object so it does not wrap around the edges
        cx, cy = info['center'][0]
        shift = (int(round(h / 2 - cy % h)), int(round(w / 2 - cx % w)))
        masks = np.roll(_masks(frames), shift, axis=(1, 2)).astype(np.uint8)
        centre = (float(cx % w + shift[1]), float(cy % h + shift[0]))
        m0, m2 = masks[0], masks[2].astype(bool)
        ious = []
        for ang in cands:
            # cv2: positive angle = counter-clockwise on screen
            rot = cv2.warpAffine(m0, cv2.getRotationMatrix2D(centre, ang, 1.0),
                                 (w, h), flags=cv2.INTER_NEAREST).astype(bool)
            ious.append((rot & m2).sum() / (rot | m2).sum())
        best = cands[int(np.argmax(ious))]
        true_cw = info['angle_deg'][2] - info['angle_deg'][0]  # + = clockwise
        assert (best < 0) == (cls == 'rotate_cw'), (seed, best)
        assert abs(-best - true_cw) <= 4, (seed, best, true_cw)
        # no translation, constant area
        areas = masks.sum((1, 2))
        assert areas.max() < 1.1 * areas.min()


def test_scaling_and_still_from_pixels():
    for seed in range(4):
        fa, _ = _plain('approach', seed)
        fr, _ = _plain('recede', seed)
        fs, _ = _plain('still', seed)
        aa = _masks(fa).sum((1, 2)).astype(float)
        ar = _masks(fr).sum((1, 2)).astype(float)
        assert aa[-1] > 2.0 * aa[0] and np.all(np.diff(aa) > -3)
        assert ar[0] > 2.0 * ar[-1] and np.all(np.diff(ar) < 3)
        # nothing moves without distractors
        assert all(np.array_equal(f, fs[0]) for f in fs)


def test_single_frame_colour_does_not_separate_classes():
    """Mean colour of one frame is at chance level for the default classes."""
    per_class = 12
    feats, labels = [], []
    for idx in range(per_class * 6):
        label = idx % 6
        frames = sm.render_motion_video(label, sm.video_rng(7, 'train', idx),
                                        num_frames=16, frame_size=64)
        feats.append(frames[8].reshape(-1, 3).mean(0))
        labels.append(label)
    feats, labels = np.array(feats), np.array(labels)
    # leave-one-out nearest class centroid
    correct = 0
    for i in range(len(feats)):
        keep = np.arange(len(feats)) != i
        cents = np.stack([feats[keep & (labels == k)].mean(0)
                          for k in range(6)])
        pred = np.argmin(((cents - feats[i])**2).sum(1))
        correct += int(pred == labels[i])
    acc = correct / len(feats)
    assert acc < 0.4, acc  # chance = 1/6
    # ... while a temporal statistic separates left from right trivially
    for seed in range(3):
        # a few frames apart: over the whole clip the target may wrap around
        dl = _circular_centroid(_masks(_plain('move_left', seed)[0])[4])[0] \
            - _circular_centroid(_masks(_plain('move_left', seed)[0])[0])[0]
        dr = _circular_centroid(_masks(_plain('move_right', seed)[0])[4])[0] \
            - _circular_centroid(_masks(_plain('move_right', seed)[0])[0])[0]
        assert _wrapped_delta(0, dl, 96) < 0 < _wrapped_delta(0, dr, 96)


# ----------------------------------------------------------------------------
# dataset on disk
# ----------------------------------------------------------------------------
def _check_lists(out, counts, num_classes):
    pattern = re.compile(r'^(train|val|test)_\d{5}\.mp4 \d+$')
    for split, n in counts.items():
        with open(osp.join(out, f'{split}.txt')) as f:
            lines = f.read().splitlines()
        assert len(lines) == n
        labels = []
        for line in lines:
            assert pattern.match(line), line
            name, lbl = line.split()
            assert name.startswith(split + '_')
            assert osp.isfile(osp.join(out, 'videos', name))
            labels.append(int(lbl))
        hist = np.bincount(labels, minlength=num_classes)
        assert len(hist) == num_classes
        assert hist.max() - hist.min() <= 1
    with open(osp.join(out, 'label_map.txt')) as f:
        assert tuple(f.read().splitlines()) == sm.MOTION_CLASSES[:num_classes]


def test_generate_dataset_files_decode_and_reuse(tmp_path):
    out = str(tmp_path / 'motion')
    meta = sm.generate_motion_dataset(out, workers=2, **SMALL)
    assert not meta['reused'] and meta['num_rendered'] == 24
    counts = dict(train=12, val=6, test=6)
    _check_lists(out, counts, 6)
    with open(osp.join(out, 'meta.json')) as f:
        stored = json.load(f)
    assert stored['classes'] == list(DEFAULT6)
    assert stored['counts'] == counts
    assert stored['seed'] == 3 and stored['frame_size'] == [64, 64]
    assert stored['num_frames'] == 12
    assert stored['generator_version'] == sm.GENERATOR_VERSION
    assert stored['class_counts']['train'] == [2] * 6

    # decord reads every video with the right length/size; content (and RGB
    # channel order) matches the renderer up to compression
    video_dir = osp.join(out, 'videos')
    names = sorted(os.listdir(video_dir))
    assert len(names) == 24
    for name in names:
        vr = decord.VideoReader(osp.join(video_dir, name))
        assert len(vr) == 12
        assert vr[0].shape == (64, 64, 3)
    with open(osp.join(out, 'val.txt')) as f:
        name, label = f.readline().split()
    idx = int(name[4:9])
    ref = sm.render_motion_video(int(label), sm.video_rng(3, 'val', idx),
                                 num_frames=12, frame_size=64)
    dec = _decode(osp.join(video_dir, name)).astype(float)
    psnr = 10 * np.log10(255**2 / ((dec - ref)**2).mean())
    assert psnr > 26, psnr
    # swapped channels would be far worse
    swapped = 10 * np.log10(255**2 / ((dec[..., ::-1] - ref)**2).mean())
    assert swapped < psnr - 3

    hashes = {n: _md5(osp.join(video_dir, n)) for n in names}
    mtimes = {n: os.stat(osp.join(video_dir, n)).st_mtime_ns for n in names}

    # identical parameters: reused, nothing rewritten
    again = sm.generate_motion_dataset(out, workers=2, **SMALL)
    assert again['reused'] and again['num_rendered'] == 0
    assert {n: os.stat(osp.join(video_dir, n)).st_mtime_ns
            for n in names} == mtimes

    # a missing video alone is regenerated, byte-identically
    os.remove(osp.join(video_dir, 'train_00004.mp4'))
    part = sm.generate_motion_dataset(out, workers=1, **SMALL)
    assert not part['reused'] and part['num_rendered'] == 1
    assert _md5(osp.join(video_dir, 'train_00004.mp4')) == \
        hashes['train_00004.mp4']

    # fresh directory, single worker: byte-identical files (deterministic)
    out2 = str(tmp_path / 'motion_again')
    sm.generate_motion_dataset(out2, workers=1, **SMALL)
    assert {n: _md5(osp.join(out2, 'videos', n)) for n in names} == hashes

    # changed parameters: regenerated with different content, stale removed
    changed = dict(SMALL, seed=4, num_train=6)
    meta3 = sm.generate_motion_dataset(out, workers=2, **changed)
    assert not meta3['reused'] and meta3['num_rendered'] == 18
    _check_lists(out, dict(train=6, val=6, test=6), 6)
    assert len(os.listdir(video_dir)) == 18
    for n in ('train_00000.mp4', 'val_00001.mp4'):
        assert _md5(osp.join(video_dir, n)) != hashes[n]
        assert not np.array_equal(_decode(osp.join(video_dir, n)),
                                  _decode(osp.join(out2, 'videos', n)))


def test_num_classes_and_odd_split(tmp_path):
    out = str(tmp_path / 'nine')
    meta = sm.generate_motion_dataset(
        out, num_train=20, num_val=0, num_test=9, num_classes=9,
        frame_size=(48, 64), num_frames=6, seed=0, progress=False)
    assert meta['classes'] == list(sm.MOTION_CLASSES[:9])
    _check_lists(out, dict(train=20, val=0, test=9), 9)
    vr = decord.VideoReader(osp.join(out, 'videos', 'test_00008.mp4'))
    assert len(vr) == 6 and vr[0].shape == (48, 64, 3)
    with pytest.raises(ValueError):
        sm.generate_motion_dataset(out, num_classes=len(sm.MOTION_CLASSES) + 1)


def test_lists_load_in_mmaction_video_dataset(tmp_path):
    datasets = pytest.importorskip('mmaction.datasets')
    out = str(tmp_path / 'mm')
    sm.generate_motion_dataset(out, **SMALL)
    ds = datasets.VideoDataset(
        ann_file=osp.join(out, 'train.txt'),
        pipeline=[],
        data_prefix=dict(video=osp.join(out, 'videos')),
        num_classes=6)
    assert len(ds) == 12
    item = ds.get_data_info(7)
    assert item['filename'] == osp.join(out, 'videos', 'train_00007.mp4')
    assert item['label'] == 7 % 6
