"""Decode-once inputs equal each grid's own pipeline, down to the logits."""
import copy

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


def test_union_of_frames_is_what_is_decoded():
    cfg = Config.fromfile(TINY_RECIPE)
    # 2 clips of 4 and of 8 frames over 16 frames: the 4-frame indices are not all in the 8-frame set
    union = frames_needed(cfg, [(4, 56), (8, 56)], total_frames=16)
    four = frames_needed(cfg, [(4, 56)], total_frames=16)
    eight = frames_needed(cfg, [(8, 56)], total_frames=16)
    assert union == sorted(set(four) | set(eight)) and len(union) < len(four) + len(eight)


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
