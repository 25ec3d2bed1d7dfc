import random

import numpy as np
import pytest

import mmflux  # noqa: F401
from mmaction.datasets.transforms import UniformSample
from mmaction.registry import TRANSFORMS
from mmflux.datasets.transforms import (ClipRandAugment, FluxRandomResizedCrop,
                                        FluxUniformSample, SSv2Sample,
                                        flux_uniform_indices, ssv2_indices)


def sample(transform, total_frames, start_index=0, **extra):
    results = dict(total_frames=total_frames, start_index=start_index, **extra)
    return transform(results)


# ----------------------------------------------------------------- K400 sampler
def test_uniform_sample_train_segments_hand_computed():
    # n = 40, T = 8: seg = 4.875; [round(seg*i), round(seg*(i+1))] inclusive
    ranges = [(0, 5), (5, 10), (10, 15), (15, 20), (20, 24), (24, 29), (29, 34),
              (34, 39)]
    np.random.seed(0)
    seen = [set() for _ in ranges]
    for _ in range(400):
        inds = flux_uniform_indices(40, 8)
        for i, (lo, hi) in enumerate(ranges):
            assert lo <= inds[i] <= hi
            seen[i].add(int(inds[i]))
    assert [sorted(s) for s in seen] == [list(range(lo, hi + 1)) for lo, hi in ranges]


def test_uniform_sample_val_and_test_hand_computed():
    # val: k = 0, K = 1: duration = 4.875 / 2 -> offset int(2.4375) = 2
    assert flux_uniform_indices(40, 8, 1, True).tolist() == [2, 7, 12, 17, 22, 26, 31, 36]
    # test K = 4: duration = 0.975 -> offsets 0, 1, 2, 3
    starts = np.array([0, 5, 10, 15, 20, 24, 29, 34])
    expected = np.concatenate([starts + k for k in range(4)])
    assert flux_uniform_indices(40, 8, 4, True).tolist() == expected.tolist()
    # the n-1 cap and tiny videos
    assert flux_uniform_indices(1, 4, 1, True).tolist() == [0, 0, 0, 0]
    assert flux_uniform_indices(1, 4).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize('n', [3, 17, 40, 300])
@pytest.mark.parametrize('T', [4, 8, 24])
def test_uniform_sample_test_mode_equals_mmaction(n, T):
    ours = FluxUniformSample(clip_len=T, num_clips=4, test_mode=True)
    theirs = UniformSample(clip_len=T, num_clips=4, test_mode=True)
    a, b = sample(ours, n), sample(theirs, n)
    assert a['frame_inds'].tolist() == b['frame_inds'].tolist()
    assert (a['clip_len'], a['num_clips'], a['frame_interval']) == (T, 4, None)


def test_uniform_sample_reads_flux_frames_and_start_index():
    t = FluxUniformSample(clip_len=8)
    out = sample(t, 300, start_index=1, flux_frames=14)
    assert out['clip_len'] == 14 and out['frame_inds'].shape == (14, )
    assert out['frame_inds'].dtype == np.int32
    assert out['frame_inds'].min() >= 1 and out['frame_inds'].max() <= 300
    assert np.all(np.diff(out['frame_inds']) >= 0)
    assert sample(t, 300)['clip_len'] == 8
    assert sample(t, 0) is None  # broken video -> dataset refetch
    with pytest.raises(ValueError):
        FluxUniformSample(clip_len=8, num_clips=4)


# ----------------------------------------------------------------- SSv2 sampler
def test_ssv2_val_and_test_hand_computed():
    # n = 50, T = 8: tick = 6.25
    mids = [3, 9, 15, 21, 28, 34, 40, 46]
    starts = [0, 6, 12, 18, 25, 31, 37, 43]
    assert ssv2_indices(50, 8, 1, True).tolist() == mids
    assert ssv2_indices(50, 8, 2, True).tolist() == starts + mids
    out = sample(SSv2Sample(clip_len=8, num_clips=2, test_mode=True), 50, start_index=1)
    assert out['frame_inds'].tolist() == [i + 1 for i in starts + mids]
    assert out['num_clips'] == 2 and out['clip_len'] == 8
    # short video (tick = 0.625): starts [0,0,1,1,2,3,3,4], middles
    # [0,0,1,2,2,3,4,4]; duplicates are kept, each view still has T frames
    assert ssv2_indices(5, 8, 2, True).tolist() == [0, 0, 1, 1, 2, 3, 3, 4,
                                                    0, 0, 1, 2, 2, 3, 4, 4]


def test_ssv2_train_hand_computed():
    np.random.seed(1)
    for _ in range(200):
        inds = ssv2_indices(50, 8)  # avg = 6
        assert all(6 * i <= v <= 6 * i + 5 for i, v in enumerate(inds))
    assert ssv2_indices(5, 8).tolist() == [0] * 8  # n < T: zeros (reference)
    out = sample(SSv2Sample(clip_len=8), 50, flux_frames=16)
    assert out['clip_len'] == 16 and out['frame_inds'].shape == (16, )
    with pytest.raises(ValueError):
        SSv2Sample(clip_len=8, num_clips=3, test_mode=True)


# ------------------------------------------------------------------ RandAugment
def test_clip_rand_augment_is_clip_consistent():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    t = TRANSFORMS.build(dict(type='ClipRandAugment'))
    assert isinstance(t, ClipRandAugment)
    np.random.seed(0)
    changed = 0
    for _ in range(20):
        out = t(dict(imgs=[frame.copy() for _ in range(6)], flux_side=224))['imgs']
        assert len(out) == 6
        for f in out[1:]:
            assert f.dtype == np.uint8 and f.shape == frame.shape
            np.testing.assert_array_equal(f, out[0])
        changed += int(not np.array_equal(out[0], frame))
    assert changed >= 10  # 4 ops at p=0.5: almost every clip is changed


def test_clip_rand_augment_leaves_python_random_untouched():
    t = ClipRandAugment()
    frames = [np.full((16, 16, 3), 100, np.uint8)] * 2
    random.seed(5)
    expected = random.random()
    random.seed(5)
    t(dict(imgs=frames))
    assert random.random() == expected
    assert 224 in t._cache and t(dict(imgs=frames, flux_side=112)) and 112 in t._cache
    assert t._cache[112].ops[0].hparams['translate_const'] == int(0.45 * 112)
    with pytest.raises(ValueError):
        ClipRandAugment(config_str='augmix-m5')
    with pytest.raises(ValueError):
        t(dict(imgs=[np.zeros((8, 8, 3), np.float32)]))


# ----------------------------------------------------------- RandomResizedCrop
def test_random_resized_crop_output_side_and_box():
    t = FluxRandomResizedCrop(size=56)
    imgs = [np.random.randint(0, 255, (48, 64, 3), np.uint8) for _ in range(3)]
    out = t(dict(imgs=list(imgs), img_shape=(48, 64), flux_side=28))
    assert [im.shape for im in out['imgs']] == [(28, 28, 3)] * 3
    assert out['img_shape'] == (28, 28)
    left, top, right, bottom = out['crop_bbox']
    assert 0 <= left < right <= 64 and 0 <= top < bottom <= 48
    out = t(dict(imgs=list(imgs), img_shape=(48, 64)))
    assert out['img_shape'] == (56, 56)


def test_random_resized_crop_fallback_is_ratio_clipped_centre():
    t = FluxRandomResizedCrop(area_range=(0.9, 1.0))
    np.random.seed(0)
    # a 10 x 100 frame cannot hold 90 % of its area at aspect <= 4/3
    assert t.get_crop_bbox((10, 100), (0.9, 1.0), (3 / 4, 4 / 3)) == (43, 0, 56, 10)
    assert t.get_crop_bbox((100, 10), (0.9, 1.0), (3 / 4, 4 / 3)) == (0, 43, 10, 56)
    for _ in range(50):
        left, top, right, bottom = t.get_crop_bbox((48, 64), (0.08, 1.0), (3 / 4, 4 / 3))
        w, h = right - left, bottom - top
        assert 0 < w <= 64 and 0 < h <= 48
        assert 0.08 * 48 * 64 * 0.8 <= w * h


def test_uniform_sample_consecutive_frames_per_segment():
    from mmflux.datasets.transforms.flux_uniform_sample import flux_uniform_indices
    np.random.seed(0)
    for test_mode, num_clips in ((False, 1), (True, 2)):
        inds = flux_uniform_indices(20, 8, num_clips, test_mode, frames_per_segment=2)
        pairs = inds.reshape(-1, 2)
        assert len(inds) == 8 * num_clips
        assert (pairs[:, 1] - pairs[:, 0] == 1).all() and inds.max() <= 19
    # the segment starts follow the plain formula on the first n - k + 1 frames
    np.testing.assert_array_equal(
        flux_uniform_indices(20, 8, 1, True, 2)[::2], flux_uniform_indices(19, 4, 1, True))
    assert flux_uniform_indices(1, 4, 1, False, 2).tolist() == [0, 0, 0, 0]  # 1-frame video
    with pytest.raises(ValueError, match='multiple of frames_per_segment=2'):
        flux_uniform_indices(20, 7, 1, True, 2)
