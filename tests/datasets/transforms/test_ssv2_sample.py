"""SSv2Sample: the released Something-Something v2 sampler."""
import numpy as np
import pytest

from mmflux.datasets.transforms import SSv2Sample, ssv2_indices


def sample(transform, total_frames, start_index=0, **extra):
    results = dict(total_frames=total_frames, start_index=start_index, **extra)
    return transform(results)


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
