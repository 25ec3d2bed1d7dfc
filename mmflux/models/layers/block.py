"""Pre-norm transformer block of FluxViT."""
from functools import partial
from typing import Optional

import torch
from timm.layers import DropPath, LayerScale, Mlp
from torch import nn

from mmflux.utils.keyed_random import keyed_torch_generator
from .attention import FluxAttention
from .rms_norm import RMSNorm


class KeyedDropPath(DropPath):
    """timm's ``DropPath`` whose mask, in training, comes from a keyed stream.

    :class:`~mmflux.engine.KeyedRandomHook` calls :meth:`set_step_seed` before
    every training iteration with a seed keyed by (seed, iteration, this
    module's name); the mask is then drawn from that seed and the number of
    tokens, so it does not depend on other random draws, is the same after a
    resume, is redrawn identically by activation checkpointing, and differs
    between the budgets of a Flux-Multi step (they have different token counts).
    Without a step seed (no hook) it is timm's ``DropPath``.
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__(drop_prob, scale_by_keep)
        self.step_seed: Optional[int] = None

    def set_step_seed(self, seed: Optional[int]) -> None:
        self.step_seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_seed is None or not self.training or self.drop_prob == 0.0:
            return super().forward(x)
        keep = 1.0 - self.drop_prob
        generator = keyed_torch_generator(self.step_seed, x.shape[1], device=x.device)
        mask = torch.empty((x.shape[0], ) + (1, ) * (x.ndim - 1), dtype=x.dtype,
                           device=x.device).bernoulli_(keep, generator=generator)
        if keep > 0.0 and self.scale_by_keep:
            mask.div_(keep)
        return x * mask


class FluxBlock(nn.Module):
    """x + DropPath(gamma1 * Attn(RMSNorm(x))), then the same with the MLP.

    The MLP uses tanh-approximate GELU: the released weights were trained with
    flash-attn's fused MLP, whose activation is the tanh approximation.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, qk_norm: bool = True, use_lpe: bool = True,
                 layer_scale_init_value: float = 1e-5, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = FluxAttention(dim, num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm,
                                  use_lpe=use_lpe)
        self.ls1 = LayerScale(dim, layer_scale_init_value) if layer_scale_init_value else nn.Identity()
        self.drop_path1 = KeyedDropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = RMSNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio),
                       act_layer=partial(nn.GELU, approximate='tanh'))
        self.ls2 = LayerScale(dim, layer_scale_init_value) if layer_scale_init_value else nn.Identity()
        self.drop_path2 = KeyedDropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x
