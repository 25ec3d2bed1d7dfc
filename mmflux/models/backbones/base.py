"""What every budget-aware backbone shares: its token geometry, selection and outputs."""
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from mmaction.registry import MODELS
from mmflux.utils.token_geometry import TokenGeometry, num_tokens, token_grid
from ..backbone_output import BackboneOutput, PatchEmbedding
from ..selectors import BaseTokenSelector, check_budget


class BaseFluxBackbone(BaseModule):
    """Owner of the facts others ask a Flux backbone about.

    Subclasses set ``patch_size``, ``tubelet_size``, ``embed_dims``,
    ``selector`` and the class attribute ``num_prefix_tokens``, expose their
    ordered transformer ``blocks`` and the parameters that come before them
    (:meth:`embedding_parameters`, the layer-decay optimizer's level 0), and
    implement :meth:`embed_patches` and :meth:`forward_embedded`.
    ``forward_features`` is the two in a row; a caller that runs several budgets
    on the same clips (a test-time cascade) embeds once and calls
    :meth:`forward_embedded` per budget, so the backbone stays the owner of its
    token geometry, selection and positions.
    """

    num_prefix_tokens: int = 0
    patch_size: int
    tubelet_size: int
    selector: Optional[nn.Module]
    blocks: nn.ModuleList

    @staticmethod
    def build_selector(cfg: Optional[dict]) -> Optional[BaseTokenSelector]:
        """The token selector of ``model.backbone.selector`` (None: no selection)."""
        if cfg is None:
            return None
        known = sorted(name for name, cls in MODELS.module_dict.items()
                       if isinstance(cls, type) and issubclass(cls, BaseTokenSelector))
        kind = cfg.get('type') if isinstance(cfg, dict) else None
        if kind is None:
            raise ValueError(f'model.backbone.selector={cfg!r}: not a selector config; fix: use '
                             f'dict(type=...) with one of {known}, or None for no selection.')
        cls = kind if isinstance(kind, type) else MODELS.get(kind)
        if cls is None or not (isinstance(cls, type) and issubclass(cls, BaseTokenSelector)):
            what = 'is not a registered model' if cls is None else 'is not a token selector'
            raise ValueError(f'model.backbone.selector.type={kind!r}: {what}; fix: use one of '
                             f'{known} (or register your BaseTokenSelector subclass in '
                             "MMAction2's MODELS and import it via custom_imports).")
        return MODELS.build(cfg)

    # ------------------------------------------------------------ geometry
    @property
    def geometry(self) -> TokenGeometry:
        """Patch and tubelet size as one value: what grid helpers are handed (its
        ``num_tokens`` / ``token_grid`` are this backbone's)."""
        patch_size = getattr(self, 'patch_size', None)
        tubelet_size = getattr(self, 'tubelet_size', None)
        if patch_size is None or tubelet_size is None:
            missing = [n for n, v in (('patch_size', patch_size), ('tubelet_size', tubelet_size))
                       if v is None]
            raise TypeError(f'{type(self).__name__} does not set {" and ".join(missing)}, so it '
                            'has no token geometry; a BaseFluxBackbone sets patch_size and '
                            'tubelet_size in its __init__ (the sizes its patch embedding cuts).')
        return TokenGeometry(patch_size, tubelet_size)

    def token_grid(self, frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """(t, h, w) patch tokens of a ``frames x height x width`` clip."""
        return token_grid(frames, height, width, self.patch_size, self.tubelet_size)

    def num_tokens(self, frames: int, height: int, width: int) -> int:
        """Patch tokens of a clip before selection (prefix tokens excluded)."""
        return num_tokens(frames, height, width, self.patch_size, self.tubelet_size)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def embedding_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used before the first block (patch embedding, positions, cls)."""
        raise NotImplementedError

    # ------------------------------------------------------------ selection
    def select_tokens(self, tokens: torch.Tensor, budget: Optional[int],
                      scores: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """Kept patch indices (B, K) of patch embeddings (B, t, h * w, C), or None for all.

        ``scores``: the selector's :meth:`selection_scores` of these tokens, when
        the caller already has them (they do not depend on the budget).
        """
        if budget is None:
            return None
        if isinstance(budget, torch.Tensor):  # a budget that is data (an exported graph's input)
            if self.selector is None:
                raise ValueError('A token budget tensor was given but the backbone has no '
                                 'selector; set model.backbone.selector.')
            return self.selector(tokens.detach(), budget)
        check_budget(budget)
        B, T, L, _ = tokens.shape
        if budget >= T * L:
            return None
        if self.selector is None:
            raise ValueError(f'A token budget of {budget} < {T * L} tokens was requested but the '
                             'backbone has no selector; set model.backbone.selector.')
        if scores is None:  # selectors written for forward(tokens, budget) keep working
            return self.selector(tokens.detach(), budget)
        return self.selector(tokens.detach(), budget, token_scores=scores)

    def selection_scores(self, tokens: torch.Tensor) -> Optional[torch.Tensor]:
        """The selector's budget-independent scores of (B, t, h * w, C) patch embeddings,
        or None when the selector has none (random) or there is no selector."""
        scores = getattr(self.selector, 'scores', None)
        return scores(tokens.detach()) if callable(scores) else None

    # ------------------------------------------------------------ forward
    def embed_patches(self, x: torch.Tensor, with_scores: bool = False) -> PatchEmbedding:
        """Patch embeddings of ``x`` (B, C, T, H, W) before selection and positions;
        ``with_scores`` adds the selector's :meth:`selection_scores`."""
        raise NotImplementedError

    def forward_embedded(self, embedded: PatchEmbedding,
                         budget: Optional[int] = None) -> BackboneOutput:
        """Select ``budget`` tokens of an embedding, add positions, run the blocks."""
        raise NotImplementedError

    def positional_embedding(self, frames: int, height: int, width: int) -> torch.Tensor:
        """(1, frames * height * width, C) positional table of a (t, h, w) token grid,
        added to the patch tokens before selection (so kept tokens keep their place)."""
        raise NotImplementedError

    @contextmanager
    def fixed_positional_embedding(self, grid: Tuple[int, int, int], table: torch.Tensor):
        """Inside the block, :meth:`positional_embedding` of ``grid`` is ``table`` and any
        other grid is refused: an exporter traces the table as a constant instead of its
        interpolation (bit-identical to eager, no resize op in the graph)."""
        grid = tuple(int(g) for g in grid)

        def fixed(frames: int, height: int, width: int) -> torch.Tensor:
            if (frames, height, width) != grid:
                raise ValueError(f'the positional embedding is fixed to the token grid {grid}, '
                                 f'got {(frames, height, width)}.')
            return table

        self.positional_embedding = fixed  # shadows the method on this instance only
        try:
            yield self
        finally:
            del self.positional_embedding

    def forward_features(self, x: torch.Tensor, budget: Optional[int] = None) -> BackboneOutput:
        return self.forward_embedded(self.embed_patches(x), budget)

    def forward(self, x: torch.Tensor, budget: Optional[int] = None, return_output: bool = False):
        """Tokens (B, num_prefix_tokens + K, C) of ``x`` (B, C, T, H, W) at ``budget``.

        ``return_output=True`` gives :meth:`forward_features`' :class:`BackboneOutput`
        (tokens, kept indices, prefix tokens, token grid) through ``__call__``, so
        module hooks (e.g. FLOP counters) see the backbone.
        """
        out = self.forward_features(x, budget)
        return out if return_output else out.tokens
