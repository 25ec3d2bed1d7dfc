"""The one answer to "what token grid does a T x H x W clip give?".

Backbones call :func:`token_grid` with their own patch and tubelet sizes (and
expose it as ``backbone.token_grid(T, H, W)``); code without a built model (the
batch sampler, config checks, token optimisation) calls it with the sizes it
was given, so the rule and its error messages live here only.
"""
import math
from typing import NamedTuple, Optional, Tuple

import torch


def token_grid(frames: int, height: int, width: int, patch_size: int,
               tubelet_size: int = 1) -> Tuple[int, int, int]:
    """(t, h, w) patch tokens of a clip: frames / tubelet, height / patch, width / patch.

    Raises ``ValueError`` naming the side that is not a positive multiple and
    the nearest size that is.
    """
    for name, side, step, what in (('frames', frames, tubelet_size, 'tubelet size'),
                                   ('height', height, patch_size, 'patch size'),
                                   ('width', width, patch_size, 'patch size')):
        if side % step != 0 or side < step:
            unit = 'frames' if name == 'frames' else 'px'
            raise ValueError(f'Input {name} {side} is not a positive multiple of the {what} {step}; '
                             f'use a multiple of {step} (e.g. {max(step, side // step * step)} '
                             f'{unit}).')
    return frames // tubelet_size, height // patch_size, width // patch_size


def num_tokens(frames: int, height: int, width: int, patch_size: int,
               tubelet_size: int = 1) -> int:
    """Patch tokens of a clip (prefix tokens such as cls excluded)."""
    return math.prod(token_grid(frames, height, width, patch_size, tubelet_size))


class BackboneOutput(NamedTuple):
    """What a budget-aware backbone returns from ``forward_features``.

    tokens: (B, num_prefix_tokens + K, C), prefix (cls) tokens first.
    kept: (B, K) indices of the kept patch tokens in the (t, h, w) raster, or
        None when every token was kept.
    num_prefix_tokens: tokens before the patch tokens (1 for FluxViT's cls, 0
        for MMAction2's ViT).
    grid: (t, h, w) token grid of the input, before selection.
    """
    tokens: torch.Tensor
    kept: Optional[torch.Tensor]
    num_prefix_tokens: int
    grid: Tuple[int, int, int]

    @property
    def patch_tokens(self) -> torch.Tensor:
        return self.tokens[:, self.num_prefix_tokens:]

    @property
    def num_kept(self) -> int:
        """Patch tokens that reached the blocks."""
        return self.tokens.shape[1] - self.num_prefix_tokens

    @property
    def grid_tokens(self) -> int:
        """Patch tokens of the input grid, before selection."""
        return math.prod(self.grid)


__all__ = ['BackboneOutput', 'num_tokens', 'token_grid']
