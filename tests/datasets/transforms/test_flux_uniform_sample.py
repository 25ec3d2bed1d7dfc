"""FluxUniformSample: the released K400 segment sampler, and MMAction2's in test mode."""
import numpy as np
import pytest

from mmaction.datasets.transforms import UniformSample
from mmflux.datasets.transforms import FluxUniformSample, flux_uniform_indices


def sample(transform, total_frames, start_index=0, **extra):
    results = dict(total_frames=total_frames, start_index=start_index, **extra)
    return transform(results)


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
