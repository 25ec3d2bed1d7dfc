"""FluxViT with tubelet patches (t x p x p), used by the tiny from-scratch config; token counts.

The embedding itself: tests/models/layers/test_patch_embed.py.
"""
import pytest
import torch
from mmaction.registry import MODELS

from mmflux.datasets.flux_batch_sampler import flux_grid_pairs
from mmflux.evaluation.token_optimization import candidate_grids, reduction_grid
from mmflux.utils.flops import analytic_macs, count_macs
from conftest import tiny_model_cfg


def _tiny_tubelet_model(**test_cfg):
    return MODELS.build(tiny_model_cfg(
        num_classes=5, budgets=(64, 32, 16),
        backbone=dict(patch_size=7, tubelet_size=2,
                      arch=dict(embed_dims=32, depth=1, num_heads=1, pos_frames=2, pos_side=4)),
        cls_head=dict(pool_num_heads=2), **test_cfg)).eval()


@pytest.mark.parametrize('frames', [2, 4, 6, 8])
def test_fluxvit_tubelet_selection_and_macs(frames):
    torch.manual_seed(0)
    model = _tiny_tubelet_model()
    x = torch.randn(1, 3, frames, 28, 28)
    grid = frames // 2 * 16
    with torch.no_grad():
        tokens, kept = model.backbone.forward_features(x, budget=20)[:2]
    kept_count = min(20, grid)
    assert tokens.shape[1] - 1 <= kept_count and tokens.shape[1] - 1 >= kept_count - 4
    if grid > 20:
        assert kept is not None and int(kept.max()) < grid
    out = count_macs(model, frames, 28, 28, budget=None)
    assert out['grid_tokens'] == out['tokens'] == grid
    ref = analytic_macs(32, 1, grid, grid, num_classes=5, pool_dims=32, patch_dim=3 * 2 * 7 * 7)
    assert out['gmacs'] == pytest.approx(ref['gmacs'], rel=1e-9)


def test_sampler_and_token_optimizer_count_tubelet_tokens():
    backbone = _tiny_tubelet_model().backbone  # the owner of the 7 px x 2 frame geometry
    assert backbone.num_tokens(8, 56, 56) == backbone.geometry.num_tokens(8, 56, 56) == 256
    pairs = flux_grid_pairs((6, 13, 2), (42, 71, 7), (192, 400), patch_size=7, tubelet_size=2)
    assert all(192 <= t // 2 * (r // 7)**2 <= 400 for t, r in pairs)
    assert (8, 56) in pairs and (12, 70) not in pairs  # 6 x 100 = 600 tokens
    with pytest.raises(ValueError, match='tubelet_size=2'):
        flux_grid_pairs((5, 13, 2), (42, 71, 7), None, patch_size=7, tubelet_size=2)
    assert candidate_grids(64, [3, 4], [56], backbone) == [(4, 56)]  # 3 frames: no tubelets
    assert reduction_grid(128, 56, backbone, [2, 4, 6, 8]) == (4, 56)
