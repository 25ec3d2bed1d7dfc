"""The recognizer at one grid and budget as a plain module: clip batch -> (logits, kept).

This is the one place that knows how a recognizer turns a clip into logits
(backbone at a budget, then the head the recognizer would pick for the kept
count), so exporters trace exactly what ``FluxRecognizer.predict`` computes per
view, without the data preprocessor and the view averaging (those run outside
the graph, see :mod:`mmflux.deployment.inference`).
"""
from typing import Optional, Tuple

import torch
from torch import nn


class ExportableRecognizer(nn.Module):
    """``recognizer`` fixed at ``budget`` (None: all tokens) on a ``frames`` x ``side`` grid.

    forward(x): x (N, 3, frames, side, side) normalised clips -> logits
    (N, num_classes) of the head the recognizer picks for the kept count, and the
    kept patch indices (N, K) into the flattened (t, h, w) token raster (all of
    them, in order, when nothing is dropped).
    """

    def __init__(self, recognizer: nn.Module, frames: int, side: int, budget: Optional[int]) -> None:
        super().__init__()
        self.backbone = recognizer.backbone
        self.cls_head = recognizer.cls_head
        self.budget = budget
        self.frames, self.side = int(frames), int(side)
        # the backbone owns the geometry; it names the fix for a grid it cannot cut
        self.num_patches = self.backbone.num_tokens(self.frames, self.side, self.side)
        # the head exactly as the recognizer picks it (test_cfg.head or nearest budget)
        example = torch.zeros(1, 3, self.frames, self.side, self.side)
        saved = recognizer.test_cfg
        recognizer.test_cfg = dict(saved or {}, token_budget=budget)  # None here means all
        try:
            with torch.no_grad():
                _, info = recognizer.extract_feat(example, stage='head')
        finally:
            recognizer.test_cfg = saved
        self.head = int(info['head'])
        self.num_tokens = int(info['num_tokens'])
        # the positional table of this grid, computed once by the eager code: the graph
        # holds it as a constant (bit-identical to eager, no Resize op to re-implement)
        self._grid = tuple(self.backbone.token_grid(self.frames, self.side, self.side))
        with torch.no_grad():
            self.register_buffer('pos_table', self.backbone.positional_embedding(*self._grid).clone(),
                                 persistent=False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with self.backbone.fixed_positional_embedding(self._grid, self.pos_table):
            out = self.backbone(x, self.budget, return_output=True)
        logits = self.cls_head(out.tokens, self.head)
        kept = out.kept
        if kept is None:
            kept = torch.arange(self.num_patches, device=x.device).unsqueeze(0).expand(x.shape[0], -1)
        return logits, kept
