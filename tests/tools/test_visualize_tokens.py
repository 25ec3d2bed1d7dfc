"""The token picture: each selector's kept mask has the budget's count, and a PNG is written."""
import numpy as np
from mmengine.config import Config

from mmaction.registry import MODELS

from conftest import TINY_RECIPE, load_tool, shared_path


def test_masks_keep_the_budget_per_group_and_png_is_written(tmp_path, capsys):
    tool = load_tool('visualize_tokens')
    cfg = Config.fromfile(TINY_RECIPE)
    cfg.token_optimization = dict(budget=64, grid=(8, 56))
    tool.apply_token_optimization(cfg)
    model = MODELS.build(cfg.model).eval()
    batch, raw = tool.one_view(cfg, shared_path('data', 'demo.mp4'))
    assert raw.shape == (8, 56, 56, 3) and raw.dtype == np.uint8
    masks = tool.kept_masks(model, batch, 64, ['GroupDynamicSelector', 'RandomSelector'], seed=0)
    for mask in masks.values():  # 4 token frames (2-frame tubelets) of 8 x 8 patches
        assert mask.shape == (4, 8, 8) and mask.sum() == 64
    # the same count in each temporal group: 4 token frames make 2 groups of 2 frames
    gd = masks['GroupDynamicSelector'].reshape(2, -1).sum(1)
    assert gd.tolist() == [32, 32]
    out = tmp_path / 'tokens.png'
    tool.main([shared_path('data', 'demo.mp4'), TINY_RECIPE, '--budget', '32', '--out', str(out)])
    assert out.stat().st_size > 10000
    assert 'kept 32 of 256' in capsys.readouterr().out
