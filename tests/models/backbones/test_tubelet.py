"""Tubelet patch embedding (t x p x p patches), used by the tiny from-scratch config."""
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from mmflux.datasets.flux_batch_sampler import flux_grid_pairs
from mmflux.evaluation.token_optimization import candidate_grids, reduction_grid
from mmflux.models.layers.patch_embed import DualNormPatchEmbed
from mmflux.utils.flops import analytic_macs, count_macs


def test_tubelet_embedding_equals_conv3d():
    torch.manual_seed(0)
    embed = DualNormPatchEmbed(32, patch_size=7, tubelet_size=2, dual_norm=False)
    x = torch.randn(2, 3, 6, 21, 14)
    out = embed(x)
    ref = F.conv3d(x, embed.proj.weight, embed.proj.bias, stride=(2, 7, 7))  # (B, C, 3, 3, 2)
    ref = ref.flatten(3).permute(0, 2, 3, 1)  # (B, T', L, C), row-major (h, w)
    assert out.shape == (2, 3, 6, 32)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_tubelet_one_is_the_released_layout():
    torch.manual_seed(0)
    embed = DualNormPatchEmbed(16, patch_size=14, dual_norm=False)
    x = torch.randn(1, 3, 3, 28, 28)
    ref = F.conv3d(x, embed.proj.weight, embed.proj.bias, stride=(1, 14, 14)).flatten(3)
    torch.testing.assert_close(embed(x), ref.permute(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_frames_not_a_multiple_of_the_tubelet_named():
    embed = DualNormPatchEmbed(16, patch_size=7, tubelet_size=2)
    with pytest.raises(ValueError, match='tubelet size 2'):
        embed(torch.randn(1, 3, 5, 14, 14))


def _tiny_tubelet_model(**test_cfg):
    return MODELS.build(dict(
        type='FluxRecognizer',
        backbone=dict(type='FluxViT', patch_size=7, tubelet_size=2,
                      arch=dict(embed_dims=32, depth=1, num_heads=1, pos_frames=2, pos_side=4)),
        cls_head=dict(type='FluxMultiHead', num_classes=5, in_channels=32, pool_num_heads=2,
                      pool_dims=32, head_budgets=(64, 32, 16)),
        test_cfg=test_cfg or None)).eval()


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
