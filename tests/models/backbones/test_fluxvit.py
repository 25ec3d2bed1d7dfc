"""FluxViT behaviour beyond the fixture: any grid, batch 1, H != W, clear errors."""
import copy

import pytest
import torch

from mmflux.models.backbones.fluxvit import FluxViT
from mmflux.utils.checkpoint_convert import convert_official_state_dict
from conftest import FIXTURE_ARCH


@pytest.fixture(scope='module')
def backbone(reference):
    model = FluxViT(arch=FIXTURE_ARCH)
    state = convert_official_state_dict(reference['state_dict'])
    model.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()
                           if k.startswith('backbone.')})
    return model.eval()


def test_batch_size_one_equals_batched(backbone):
    x = torch.randn(3, 3, 8, 56, 56)
    with torch.no_grad():
        full = backbone(x, budget=40)
        single = torch.cat([backbone(x[i:i + 1], budget=40) for i in range(3)])
    assert full.shape == (3, 1 + 40, 64)
    torch.testing.assert_close(single, full, atol=1e-5, rtol=1e-5)


def transposed_copy(backbone):
    """The backbone with every spatial layout transposed (H <-> W): the patch
    projection's kernel, the pixel norm's weight over a patch, the stored positions."""
    model = copy.deepcopy(backbone)
    p, dim = backbone.patch_size, backbone.embed_dims
    f, s = backbone.pos_frames, backbone.pos_side
    with torch.no_grad():
        embed = model.patch_embed
        embed.proj.weight.copy_(embed.proj.weight.transpose(-1, -2).clone())
        # the pixel norm acts on (frame, row, column, channel) patch vectors
        norm = embed.norm_before.weight.view(backbone.tubelet_size, p, p, 3)
        embed.norm_before.weight.copy_(norm.transpose(1, 2).reshape(-1).clone())
        table = model.pos_embed[0, 1:].view(f, s, s, dim)
        model.pos_embed[0, 1:] = table.transpose(1, 2).reshape(-1, dim).clone()
    return model


def test_non_square_input_uses_hw_grid(backbone):
    """A 42 x 70 input is a 3 x 5 patch grid; the transposed model on the transposed
    video (70 x 42, 5 x 3) gives the same features, token (t, w, h) for (t, h, w). A
    model that swapped H and W, or squared the grid, anywhere would break this."""
    x = torch.randn(2, 3, 4, 42, 70)
    transposed = transposed_copy(backbone)
    with torch.no_grad():
        tokens = backbone(x)
        tokens_t = transposed(x.transpose(-1, -2).contiguous())
        pos, pos_t = backbone.positional_embedding(4, 3, 5), transposed.positional_embedding(4, 5, 3)
    assert tokens.shape == tokens_t.shape == (2, 1 + 4 * 15, 64)
    torch.testing.assert_close(pos_t.view(4, 5, 3, 64).transpose(1, 2).reshape(60, 64), pos,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tokens_t[:, 0], tokens[:, 0], atol=1e-4, rtol=1e-4)  # cls
    patches_t = tokens_t[:, 1:].view(2, 4, 5, 3, 64).transpose(2, 3).reshape(2, 60, 64)
    torch.testing.assert_close(patches_t, tokens[:, 1:], atol=1e-4, rtol=1e-4)
    # the positions do vary over the 3 x 5 grid (else the check above says nothing of them)
    grid = pos.view(4, 3, 5, 64)
    assert (grid[:, :, 1:] - grid[:, :, :-1]).abs().amax() > 1e-2
    assert (grid[:, 1:] - grid[:, :-1]).abs().amax() > 1e-2


def test_storage_grid_positions_are_the_table(backbone):
    pos = backbone.positional_embedding(4, 4, 4)
    w = backbone.gpe_proj.depthwise_conv.weight.view(-1)
    b = backbone.gpe_proj.depthwise_conv.bias
    torch.testing.assert_close(pos, backbone.pos_embed[0, 1:] * w + b)


def test_positional_cache_follows_weights(backbone):
    with torch.no_grad():
        first = backbone.positional_embedding(6, 5, 5)
        assert backbone.positional_embedding(6, 5, 5) is first  # cached at test time
        backbone.pos_embed.add_(1.0)
        second = backbone.positional_embedding(6, 5, 5)
        backbone.pos_embed.sub_(1.0)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(second - first, torch.ones_like(first) *
                               backbone.gpe_proj.depthwise_conv.weight.view(-1), atol=1e-4, rtol=0)


# frames -> tokens kept per temporal group at a budget of half the 9 x frames tokens
# (rounded down), by hand: groups are the largest of 4 / 2 / 1 that gives groups of at
# least two frames; each keeps int(budget / N * T_g * 9) in floats (the released rule):
# 3 frames at 13 of 27: (1 - (1 - 13/27)) * 27 = 12.999999999999998 -> 12.
KEPT_PER_GROUP = {1: [4], 3: [12], 4: [9, 9], 5: [22], 7: [31], 9: [40]}


@pytest.mark.parametrize('frames', sorted(KEPT_PER_GROUP))
def test_selection_for_any_frame_count(backbone, frames):
    x = torch.randn(2, 3, frames, 42, 42)  # 9 patches per frame
    budget = max(1, frames * 9 // 2)
    with torch.no_grad():
        tokens, kept = backbone.forward_features(x, budget=budget)[:2]
    expected = KEPT_PER_GROUP[frames]
    assert kept.shape == (2, sum(expected)) and tokens.shape[1] == 1 + sum(expected)
    group_size = frames // len(expected) * 9
    for row in kept:
        assert torch.bincount(row // group_size, minlength=len(expected)).tolist() == expected
    assert (kept.diff(dim=1) > 0).all()


def test_four_frame_selection_uses_two_groups(backbone):
    assert backbone.selector.num_groups(4) == 2
    x = torch.randn(1, 3, 4, 56, 56)
    with torch.no_grad():
        _, kept = backbone.forward_features(x, budget=32)[:2]
    assert kept.shape == (1, 32)
    # two groups of two frames keep 16 tokens each
    assert ((kept < 32).sum().item(), (kept >= 32).sum().item()) == (16, 16)


def test_budget_at_or_above_token_count_means_no_selection(backbone):
    x = torch.randn(2, 3, 2, 42, 42)
    with torch.no_grad():
        _, kept = backbone.forward_features(x, budget=18)[:2]
        _, kept_big = backbone.forward_features(x, budget=10_000)[:2]
    assert kept is None and kept_big is None


@pytest.mark.parametrize('side', [50, 13])
def test_side_not_multiple_of_patch_raises(backbone, side):
    with pytest.raises(ValueError, match='multiple of the patch size 14'):
        backbone(torch.randn(1, 3, 2, side, 56))


@pytest.mark.parametrize('budget', [0, -5, 2.5])
def test_bad_budget_raises(backbone, budget):
    with pytest.raises(ValueError, match='token budget must be a positive int'):
        backbone(torch.randn(1, 3, 2, 56, 56), budget=budget)


def test_unknown_arch_names_choices():
    with pytest.raises(ValueError, match="Unknown FluxViT arch 'huge'"):
        FluxViT(arch='huge')


def test_activation_checkpointing_gives_same_gradients(reference):
    torch.manual_seed(0)
    plain, ckpt = FluxViT(arch=FIXTURE_ARCH), FluxViT(arch=FIXTURE_ARCH, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 4, 56, 56)
    for model in (plain, ckpt):
        model.train()
        model(x, budget=40).sum().backward()
    torch.testing.assert_close(plain.blocks[0].attn.qkv.weight.grad,
                               ckpt.blocks[0].attn.qkv.weight.grad)
