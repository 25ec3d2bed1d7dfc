"""ClipRandAugment: one RandAugment draw for every frame of a clip."""
import random

import numpy as np
import pytest

from mmaction.registry import TRANSFORMS
from mmflux.datasets.transforms import ClipRandAugment


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
