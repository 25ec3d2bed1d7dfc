"""What a budget-aware backbone returns: tokens, kept indices, prefix count and grid."""
import math
from typing import NamedTuple, Optional, Tuple

import torch


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


__all__ = ['BackboneOutput']
