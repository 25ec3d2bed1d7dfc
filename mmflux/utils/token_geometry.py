"""The one answer to "what token grid does a T x H x W clip give?" (a leaf-layer fact).

Backbones call :func:`token_grid` with their own patch and tubelet sizes (and
expose it as ``backbone.token_grid(T, H, W)`` and, as one value,
``backbone.geometry``, a :class:`TokenGeometry`); the backbone owns the
instance, this module only the rule. It sits in ``utils`` because the data
layer needs it too (the batch sampler counts tokens before a model exists) and
``datasets`` may not import ``models``: code without a built model (the batch
sampler, config checks, the replication driver) calls it with the sizes it was
given, so the rule and its error messages live here only. Code
that is handed "the geometry" (token optimisation's grid helpers) asks
:func:`token_geometry` for it and never assumes a patch or tubelet size.
"""
import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Tuple


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


__all__ = ['TokenGeometry', 'num_tokens', 'token_geometry', 'token_grid']
