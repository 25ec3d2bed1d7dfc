"""The one answer to "what token grid does a T x H x W clip give?".

Backbones call :func:`token_grid` with their own patch and tubelet sizes (and
expose it as ``backbone.token_grid(T, H, W)`` and, as one value,
``backbone.geometry``, a :class:`TokenGeometry`); code without a built model
(the batch sampler, config checks, the replication driver) calls it with the
sizes it was given, so the rule and its error messages live here only. Code
that is handed "the geometry" (token optimisation's grid helpers) asks
:func:`token_geometry` for it and never assumes a patch or tubelet size.
"""
import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any, NamedTuple, Optional, Tuple

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


@dataclass(frozen=True)
class TokenGeometry:
    """How a backbone cuts a clip into patch tokens: ``patch_size`` px by
    ``patch_size`` px by ``tubelet_size`` frames.

    The built backbone's ``geometry``; tools that only have a config build one
    from the sizes the config sets (``TokenGeometry(patch_size=7, tubelet_size=2)``).
    Both sizes are required: there is no default patch or tubelet.
    """
    patch_size: int
    tubelet_size: int

    def __post_init__(self) -> None:
        for name in ('patch_size', 'tubelet_size'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise TypeError(f'TokenGeometry.{name}={value!r}: not an int; pass the '
                                f"backbone's {name} (a positive int).")
            if value < 1:
                raise ValueError(f'TokenGeometry.{name}={value!r}: must be a positive int.')
            object.__setattr__(self, name, int(value))

    def token_grid(self, frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """(t, h, w) patch tokens of a ``frames x height x width`` clip."""
        return token_grid(frames, height, width, self.patch_size, self.tubelet_size)

    def num_tokens(self, frames: int, height: int, width: int) -> int:
        """Patch tokens of a clip before selection (prefix tokens excluded)."""
        return num_tokens(frames, height, width, self.patch_size, self.tubelet_size)


def token_geometry(owner: Any) -> TokenGeometry:
    """The :class:`TokenGeometry` of ``owner``: a ``TokenGeometry`` itself, or a
    backbone that exposes one as ``owner.geometry`` (every ``BaseFluxBackbone``).

    Raises ``TypeError`` naming the type of anything else (nothing is assumed).
    """
    if isinstance(owner, TokenGeometry):
        return owner
    geometry = getattr(owner, 'geometry', None)
    if isinstance(geometry, TokenGeometry):
        return geometry
    name = type(owner).__name__
    if isinstance(getattr(getattr(owner, 'backbone', None), 'geometry', None), TokenGeometry):
        raise TypeError(f'{name} is not a backbone: pass its .backbone, which owns the token '
                        'geometry (patch and tubelet size).')
    raise TypeError(f'{name} does not expose a token geometry (a TokenGeometry as .geometry); '
                    'pass the built budget-aware backbone (a BaseFluxBackbone, e.g. '
                    'model.backbone) or TokenGeometry(patch_size=..., tubelet_size=...).')


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


__all__ = ['BackboneOutput', 'PatchEmbedding', 'TokenGeometry', 'num_tokens', 'token_geometry', 'token_grid']
