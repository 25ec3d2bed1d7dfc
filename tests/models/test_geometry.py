"""The token grid has one owner: mmflux.utils.token_geometry, asked through the backbones."""
import pytest
import torch

from mmaction.registry import MODELS
from mmflux.models.backbone_output import BackboneOutput
from mmflux.utils.token_geometry import TokenGeometry, num_tokens, token_geometry, token_grid
from conftest import small_plug_and_play_cfg, tiny_model_cfg


def test_token_grid_divides_by_tubelet_and_patch():
    assert token_grid(16, 224, 192, patch_size=16, tubelet_size=2) == (8, 14, 12)
    assert num_tokens(16, 224, 224, 16, 2) == 1568
    assert num_tokens(12, 224, 224, 14) == 3072


@pytest.mark.parametrize('args,expected', [
    ((15, 224, 224, 16, 2), 'frames 15 is not a positive multiple of the tubelet size 2; use a '
     'multiple of 2 (e.g. 14 frames)'),
    ((8, 230, 224, 14, 1), 'height 230 is not a positive multiple of the patch size 14'),
    ((8, 224, 10, 14, 1), 'width 10 is not a positive multiple of the patch size 14; use a '
     'multiple of 14 (e.g. 14 px)'),
])
def test_token_grid_names_the_bad_side_and_the_fix(args, expected):
    with pytest.raises(ValueError, match=expected.replace('(', r'\(').replace(')', r'\)')):
        token_grid(*args)


@pytest.fixture(scope='module')
def backbones():
    flux = MODELS.build(tiny_model_cfg()).backbone.eval()
    vit = MODELS.build(small_plug_and_play_cfg().model).backbone.eval()
    return flux, vit


def test_backbones_answer_for_their_own_geometry(backbones):
    flux, vit = backbones
    assert (flux.patch_size, flux.tubelet_size, flux.num_prefix_tokens) == (14, 1, 1)
    assert (vit.patch_size, vit.tubelet_size, vit.num_prefix_tokens) == (16, 2, 0)
    assert flux.token_grid(6, 42, 70) == (6, 3, 5)
    assert vit.num_tokens(16, 224, 224) == 1568
    # the same facts as one value, what grid helpers are handed
    assert flux.geometry == TokenGeometry(patch_size=14, tubelet_size=1)
    assert vit.geometry == TokenGeometry(patch_size=16, tubelet_size=2)
    geometry = vit.geometry
    assert token_geometry(vit) == geometry and token_geometry(geometry) is geometry
    for backbone in (flux, vit):
        for grid in ((2, 112, 112), (4, 112, 224), (16, 224, 224)):
            assert backbone.geometry.num_tokens(*grid) == backbone.num_tokens(*grid)
            assert backbone.geometry.token_grid(*grid) == backbone.token_grid(*grid)


def test_token_geometry_has_no_defaults_and_checks_its_sizes():
    with pytest.raises(TypeError):
        TokenGeometry(14)  # noqa  (no default tubelet)
    with pytest.raises(TypeError, match="TokenGeometry.patch_size='14': not an int"):
        TokenGeometry('14', 1)
    with pytest.raises(ValueError, match='TokenGeometry.tubelet_size=0: must be a positive int'):
        TokenGeometry(14, 0)
    with pytest.raises(ValueError, match='width 50 is not a positive multiple of the patch size 16'):
        TokenGeometry(16, 2).num_tokens(4, 64, 50)
    with pytest.raises(TypeError, match='dict does not expose a token geometry'):
        token_geometry(dict(patch_size=14, tubelet_size=1))


@pytest.mark.parametrize('which,shape,budget', [(0, (2, 3, 6, 42, 70), 40),
                                                (1, (1, 3, 4, 64, 96), 20),
                                                (1, (1, 3, 4, 64, 96), None)])
def test_forward_features_reports_what_it_did(backbones, which, shape, budget):
    backbone = backbones[which]
    with torch.no_grad():
        out = backbone(torch.randn(shape), budget, return_output=True)
    assert isinstance(out, BackboneOutput)
    assert out.grid == backbone.token_grid(*shape[2:])
    assert out.grid_tokens == backbone.num_tokens(*shape[2:])
    kept = out.grid_tokens if budget is None else backbone.selector.kept_count(
        out.grid[0], out.grid[1] * out.grid[2], budget)
    assert out.num_kept == kept == out.patch_tokens.shape[1]
    assert out.tokens.shape[1] == backbone.num_prefix_tokens + kept
    assert (out.kept is None) == (budget is None)


def test_plain_forward_gives_the_tokens_of_the_typed_output(backbones):
    flux, _ = backbones
    x = torch.randn(1, 3, 4, 56, 56)
    with torch.no_grad():
        out = flux(x, 32, return_output=True)
        assert torch.equal(flux(x, 32), out.tokens)
