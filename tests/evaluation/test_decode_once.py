"""Decode-once inputs equal each grid's own pipeline, down to the logits."""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate

from mmaction.registry import DATASETS, MODELS
from mmflux.evaluation.decode_once import MultiGridDecoder, frames_needed
from mmflux.evaluation.grid_config import set_test_grid
from mmflux.evaluation.token_optimization import Setting, TokenOptimizer
from conftest import TINY_RECIPE, write_tiny_train_config

GRIDS = [(4, 28), (8, 56), (6, 42)]


def tiny_setup(tmp_path, data):
    cfg = Config.fromfile(write_tiny_train_config(tmp_path, data))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    return cfg, model, dataset


def test_inputs_and_logits_equal_the_per_grid_pipeline(tiny_motion_data, tmp_path):
    cfg, model, dataset = tiny_setup(tmp_path, tiny_motion_data)
    decoder = MultiGridDecoder(cfg, GRIDS)
    model.test_cfg = dict(token_budget=16, head=None)
    for index in range(2):
        info = dataset.get_data_info(index)
        once = decoder(info)
        for frames, side in GRIDS:
            cfg_g = copy.deepcopy(cfg)
            set_test_grid(cfg_g, frames, side)
            own = Compose(cfg_g.test_dataloader.dataset.pipeline)(copy.deepcopy(info))
            got = once[(frames, side)]
            assert got['inputs'].shape == own['inputs'].shape == (6, 3, frames, side, side)
            assert torch.equal(got['inputs'], own['inputs'])
            with torch.no_grad():
                a = model.test_step(pseudo_collate([got]))[0].pred_score
                b = model.test_step(pseudo_collate([own]))[0].pred_score
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def write_numbered_video(path, num_frames=16, side=64):
    """An mp4 whose frame t is uniformly grey at 15 * t: a decoded frame tells its index."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 8, (side, side))
    assert writer.isOpened(), path
    for t in range(num_frames):
        writer.write(np.full((side, side, 3), 15 * t, dtype=np.uint8))
    writer.release()
    return str(path)


# frame indices of a 16-frame video, by hand from FluxUniformSample's test formula:
# seg = 15 / T, starts round(seg * i) (half to even), clip k adds int(seg / (K + 1) * (k + 1)).
# 4 frames: seg 3.75, starts 0 4 8 11; 8 frames: seg 1.875, starts 0 2 4 6 8 9 11 13.
ONE_CLIP = {4: [1, 5, 9, 12], 8: [0, 2, 4, 6, 8, 9, 11, 13]}  # offsets 1 and 0
TWO_CLIPS = {4: [1, 5, 9, 12, 2, 6, 10, 13],  # offsets 1, 2
             8: [0, 2, 4, 6, 8, 9, 11, 13, 1, 3, 5, 7, 9, 10, 12, 14]}  # offsets 0, 1


def test_frame_indices_of_two_grids_by_hand():
    cfg = Config.fromfile(TINY_RECIPE)
    grids = [(4, 56), (8, 56)]
    # one clip: the grids share only frame 9, so the union has 4 + 8 - 1 frames
    assert frames_needed(cfg, grids, total_frames=16, num_clips=1) == \
        [0, 1, 2, 4, 5, 6, 8, 9, 11, 12, 13]
    # the recipe's two clips: every 4-frame index is among the 8-frame ones
    assert frames_needed(cfg, grids, total_frames=16) == list(range(15))
    assert frames_needed(cfg, grids[:1], total_frames=16) == sorted(TWO_CLIPS[4])


@pytest.mark.parametrize('num_clips,expected', [(1, ONE_CLIP), (2, TWO_CLIPS)])
def test_union_of_frames_is_what_is_decoded(tmp_path, num_clips, expected):
    """The decoder reads each needed frame once, and every grid's views are built from
    its own frames: the grey level of each frame of the packed inputs is its index."""
    cfg = Config.fromfile(TINY_RECIPE)
    decoder = MultiGridDecoder(cfg, [(4, 56), (8, 56)], num_clips=num_clips)
    calls = []
    decode = decoder.decode
    decoder.decode = lambda results: calls.append(list(results['frame_inds'])) or decode(results)
    video = write_numbered_video(tmp_path / 'numbered.mp4')
    out = decoder(dict(filename=video, label=0, start_index=0, modality='RGB'))
    assert calls == [sorted(set(expected[4]) | set(expected[8]))]  # one decode, no repeats
    for frames, side in ((4, 56), (8, 56)):
        inputs = out[(frames, side)]['inputs'].float()  # (clips x 3 crops, C, T, H, W)
        assert inputs.shape == (num_clips * 3, 3, frames, side, side)
        shown = (inputs.mean(dim=(1, 3, 4)) / 15).round().long()  # (views, T)
        for view, indices in enumerate(shown.tolist()):
            clip = view % num_clips  # FormatShape: views are crop-major
            assert indices == expected[frames][clip * frames:(clip + 1) * frames], view


def test_search_paths_agree_and_predictions_are_saved(tiny_motion_data, tmp_path):
    cfg, model, _ = tiny_setup(tmp_path, tiny_motion_data)
    settings = [Setting(4, 28, 8, 'RandomSelector'), Setting(8, 56, 16, 'GroupDynamicSelector'),
                Setting(8, 56, None, 'GroupDynamicSelector', 'grid_reduction')]
    ann = cfg.test_dataloader.dataset.ann_file
    results = {}
    for once in (True, False):
        opt = TokenOptimizer(cfg, model, num_clips=1, progress=False, decode_once=once)
        results[once] = (opt.evaluate_settings(ann, settings, 'eval'), opt.predictions)
    (fast, fast_rows), (slow, slow_rows) = results[True], results[False]
    assert [r.top1 for r in fast] == [r.top1 for r in slow]
    assert [r.kept_tokens for r in fast] == [8, 16, 128]
    key = lambda r: (r['frames'], r['side'], str(r['budget']), r['video'])  # noqa: E731
    assert sorted(fast_rows, key=key) == sorted(slow_rows, key=key)  # random selector too
    assert len(fast_rows) == 3 * 8
