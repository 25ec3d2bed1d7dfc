"""DualNormPatchEmbed: tubelet patch embedding (t x p x p patches), as a strided Conv3d."""
import pytest
import torch
import torch.nn.functional as F

from mmflux.models.layers.patch_embed import DualNormPatchEmbed


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
