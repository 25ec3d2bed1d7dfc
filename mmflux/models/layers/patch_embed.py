"""Patch embedding with Dual Patch Norm (RMSNorm before and after the projection)."""
import torch
import torch.nn.functional as F
from torch import nn

from mmflux.utils.token_geometry import token_grid
from .rms_norm import RMSNorm


class DualNormPatchEmbed(nn.Module):
    """Cut a video into t x p x p patches, RMSNorm the raw pixels, project, RMSNorm.

    The pixel norm ``norm_before`` acts on the t * p * p * 3 patch vector laid out
    (frame, row, column, channel) with the channel fastest, as in the released
    weights (t = 1). The projection is stored as the released Conv3d weight
    (C, 3, t, p, p) and run as one matrix multiply over the patch vectors.

    ``tubelet_size`` t > 1 (VideoMAE-style tubelets; the released models use 1)
    lets the embedding itself see motion between t consecutive frames: a strong
    inductive bias when training small models from scratch.

    Returns tokens of shape (B, T / t, L, C) with L = (H / p) * (W / p) in
    row-major (h, w) order.
    """

    def __init__(self, embed_dims: int, patch_size: int = 14, in_channels: int = 3,
                 dual_norm: bool = True, eps: float = 1e-6, tubelet_size: int = 1) -> None:
        super().__init__()
        for name, value in (('patch_size', patch_size), ('tubelet_size', tubelet_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'model.backbone.{name}={value!r}: must be a positive int; fix: '
                                 'e.g. patch_size=14, tubelet_size=1 (the released FluxViT).')
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.in_channels = in_channels
        self.patch_dim = patch_dim = in_channels * tubelet_size * patch_size * patch_size
        self.norm_before = RMSNorm(patch_dim, eps) if dual_norm else nn.Identity()
        self.proj = nn.Conv3d(in_channels, embed_dims,
                              kernel_size=(tubelet_size, patch_size, patch_size),
                              stride=(tubelet_size, patch_size, patch_size))
        self.norm = RMSNorm(embed_dims, eps) if dual_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(f'Expected {self.in_channels} input channels, got {C} '
                             '(inputs must be (B, C, T, H, W)).')
        tp, hp, wp = token_grid(T, H, W, self.patch_size, self.tubelet_size)
        p, t = self.patch_size, self.tubelet_size
        x = x.to(self.proj.weight.dtype)
        # (B, C, tp, t, hp, p, wp, p) -> (B, tp, hp, wp, t, p, p, C): channel-fastest vectors
        patches = x.reshape(B, C, tp, t, hp, p, wp, p).permute(0, 2, 4, 6, 3, 5, 7, 1)
        patches = patches.reshape(B, tp, hp * wp, t * p * p * C)
        patches = self.norm_before(patches)
        weight = self.proj.weight.permute(0, 2, 3, 4, 1).reshape(self.proj.out_channels, -1)
        tokens = F.linear(patches, weight, self.proj.bias)
        return self.norm(tokens)
