"""FluxRandomResizedCrop: crops to the batch's side, with the released fallback box."""
import numpy as np

from mmflux.datasets.transforms import FluxRandomResizedCrop


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
