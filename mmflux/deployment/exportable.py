"""The recognizer on one grid as a plain module: (clip batch, token budget) -> (logits, kept).

This is the one place that knows how a recognizer turns a clip into logits
(backbone at a budget, then the head the recognizer would pick for the kept
count), so exporters trace exactly what ``FluxRecognizer.predict`` computes per
view, without the data preprocessor and the view averaging (those run outside
the graph, see :mod:`mmflux.deployment.inference`). The budget is an input, so
one exported file serves every budget up to the grid's token count.
"""
from typing import List, Tuple

import torch
from torch import nn


class ExportableRecognizer(nn.Module):
    """``recognizer`` on a ``frames`` x ``side`` grid, the token budget an input.

    forward(x, budget): x (N, 3, frames, side, side) normalised clips, budget a
    0-d int64 tensor (patch tokens kept per view; at or above the grid's token
    count: all) -> logits (N, num_classes) of the head the recognizer picks for
    the kept count, and the kept patch indices (N, K) into the flattened
    (t, h, w) token raster (all of them, in order, when nothing is dropped).

    What depends on the budget only through Python rules of the eager code (the
    selector's per-group counts, the recognizer's head for a kept count) is
    evaluated here for every budget once and held by the graph as constant
    tables; each head whose budget some budget maps to is computed and the
    budget's head is picked by index (exact: the others are discarded).
    """

    def __init__(self, recognizer: nn.Module, frames: int, side: int) -> None:
        super().__init__()
        self.backbone = recognizer.backbone
        self.cls_head = recognizer.cls_head
        self.frames, self.side = int(frames), int(side)
        # the backbone owns the geometry; it names the fix for a grid it cannot cut
        self.num_patches = self.backbone.num_tokens(self.frames, self.side, self.side)
        self._grid = tuple(self.backbone.token_grid(self.frames, self.side, self.side))
        t, h, w = self._grid
        selector = self.backbone.selector
        self.kept_counts: List[int] = [
            self.num_patches if b >= self.num_patches or selector is None else
            selector.kept_count(t, h * w, b) for b in range(1, self.num_patches + 1)]
        # the head exactly as the recognizer picks it (test_cfg.head, or nearest budget)
        self.head_for_budget: List[int] = [recognizer.select_head(k) for k in self.kept_counts]
        self.heads = sorted(set(self.head_for_budget))
        rank = {head: i for i, head in enumerate(self.heads)}
        self.register_buffer('head_table', torch.tensor([rank[h] for h in self.head_for_budget],
                                                        dtype=torch.int64), persistent=False)
        # the positional table of this grid, computed once by the eager code: the graph
        # holds it as a constant (bit-identical to eager, no Resize op to re-implement)
        with torch.no_grad():
            self.register_buffer('pos_table', self.backbone.positional_embedding(*self._grid).clone(),
                                 persistent=False)

    def budget_info(self, budget) -> Tuple[int, int]:
        """(kept tokens per view, head) at ``budget`` (None or >= the token count: all)."""
        b = self.num_patches if budget is None else min(int(budget), self.num_patches)
        if b < 1:
            raise ValueError(f'token budget {budget!r} must be >= 1.')
        return self.kept_counts[b - 1], self.head_for_budget[b - 1]

    def forward(self, x: torch.Tensor, budget: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        budget = budget.reshape(()).to(torch.int64)
        # without a selector every budget keeps every token
        selected = budget if self.backbone.selector is not None else None
        with self.backbone.fixed_positional_embedding(self._grid, self.pos_table):
            out = self.backbone(x, selected, return_output=True)
        kept = out.kept
        if kept is None:
            kept = torch.arange(self.num_patches, device=x.device).unsqueeze(0).expand(x.shape[0], -1)
        if len(self.heads) == 1:
            return self.cls_head(out.tokens, self.heads[0]), kept
        logits = torch.stack([self.cls_head(out.tokens, head) for head in self.heads])
        row = budget.clamp(1, self.num_patches) - 1
        return logits[self.head_table[row]], kept
