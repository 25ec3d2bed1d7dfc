"""What a budget-aware backbone returns: its patch embedding, and tokens, kept indices,
prefix count and grid after the blocks."""
import math
from typing import NamedTuple, Optional, Tuple

import torch


class PatchEmbedding(NamedTuple):
    """A clip's patch tokens before selection, positions and blocks.

    What a budget-aware backbone's ``embed_patches`` returns so that several
    budgets can run from one embedding (a test-time cascade embeds once).
    tokens: (B, t, h * w, C) patch embeddings, before positional embedding.
    grid: (t, h, w) token grid of the input.
    scores: the selector's budget-independent scores of these tokens (e.g. the
        group-dynamic selector's inter-frame change), or None when not computed
        or the selector has none.
    """
    tokens: torch.Tensor
    grid: Tuple[int, int, int]
    scores: Optional[torch.Tensor] = None

    def rows(self, index: torch.Tensor) -> 'PatchEmbedding':
        """The embedding of the clips ``index`` (a 1-D index or mask over B)."""
        scores = None if self.scores is None else self.scores[index]
        return PatchEmbedding(self.tokens[index], self.grid, scores)


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


__all__ = ['BackboneOutput', 'PatchEmbedding']
