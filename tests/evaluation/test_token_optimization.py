"""Token Optimization: candidate grids, and never choosing on the split it reports.

The tool end to end: tests/tools/test_token_optimize.py.
"""
import pytest
import torch
from mmengine.config import Config

from mmaction.registry import MODELS
from mmflux.evaluation.token_optimization import (GridResult, TokenOptimizer, candidate_grids,
                                                  candidate_sides, check_frames, check_grid,
                                                  check_side, reduction_grid)
from mmflux.models.backbones import BaseFluxBackbone
from mmflux.utils.token_geometry import TokenGeometry
from conftest import REPO_ROOT, small_plug_and_play_cfg, write_tiny_train_config

P14 = TokenGeometry(patch_size=14, tubelet_size=1)
P7T2 = TokenGeometry(patch_size=7, tubelet_size=2)


def test_candidate_and_reduction_grids():
    assert candidate_grids(64, [2, 4, 8, 16], [42, 56], P14, max_ratio=2) == \
        [(4, 56), (8, 42), (8, 56)]
    assert reduction_grid(64, 56, P14, [2, 4, 8]) == (4, 56)
    assert reduction_grid(8, 56, P14, [2, 4]) is None
    # without a frame list: any multiple of the tubelet (the reports' baseline)
    assert reduction_grid(128, 56, P7T2) == (4, 56)
    assert reduction_grid(32, 56, P7T2) is None
    # below one tubelet at the side: one tubelet at the largest side that fits (5 x 5 <= 32)
    assert reduction_grid(32, 56, P7T2, [2, 4], shrink_side=True) == (2, 35)


def test_candidate_sides_are_multiples_of_the_patch():
    assert candidate_sides(224, P14) == [210, 224, 238, 252]
    p16 = TokenGeometry(16, 2)
    assert candidate_sides(224, p16) == [208, 224, 240, 256]  # not 210/238: a ViT/16 refuses them
    assert candidate_sides(56, P7T2) == [49, 56, 63, 70]
    with pytest.raises(ValueError, match='not a multiple of the patch size 16; use 240'):
        check_grid(16, 238, p16)
    with pytest.raises(ValueError, match='tubelet size 2; use 8'):
        check_grid(7, 224, p16)


def test_refusals_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match='^candidate side 50 is not a multiple of the patch size '
                       '14; use 56.$'):
        check_side(50, P14, 'candidate side')
    with pytest.raises(ValueError, match='^--frames 7 is not a multiple of the tubelet size 2; '
                       'use 8.$'):
        check_frames(7, P7T2, '--frames')
    with pytest.raises(ValueError, match='candidate side 60 is not a multiple of the patch size 7'):
        candidate_grids(64, [4], [56, 60], P7T2)  # was silently counted as 8 x 8 patches
    with pytest.raises(ValueError, match='grid-reduction side 60 is not a multiple of the patch '
                       'size 7; use 63'):
        reduction_grid(64, 60, P7T2)


def test_a_backbone_without_geometry_is_a_type_error():
    class NoGeometry(BaseFluxBackbone):
        pass

    with pytest.raises(TypeError, match='NoGeometry does not set patch_size and tubelet_size'):
        reduction_grid(64, 56, NoGeometry())
    with pytest.raises(TypeError, match='Linear does not expose a token geometry'):
        candidate_sides(56, torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match='Linear does not expose a token geometry'):
        TokenOptimizer(Config(), torch.nn.ModuleDict(dict(backbone=torch.nn.Linear(2, 2))))
    recognizer = torch.nn.Module()
    recognizer.backbone = _tiny_tubelet_model().backbone
    with pytest.raises(TypeError, match='Module is not a backbone: pass its .backbone'):
        check_grid(4, 56, recognizer)


def _tiny_tubelet_model():
    """A tiny FluxViT with 7 px patches over 2-frame tubelets."""
    return MODELS.build(dict(
        type='FluxRecognizer',
        backbone=dict(type='FluxViT', patch_size=7, tubelet_size=2,
                      arch=dict(embed_dims=32, depth=1, num_heads=1, pos_frames=2, pos_side=4)),
        cls_head=dict(type='FluxMultiHead', num_classes=5, in_channels=32, pool_num_heads=2,
                      pool_dims=32, head_budgets=(64, 32, 16)))).eval()


def _vit16_model():
    """MMAction2's ViT (16 px patches over 2-frame tubelets) in SelectiveVisionTransformer."""
    return MODELS.build(small_plug_and_play_cfg().model).eval()


# Candidate grids worked out by hand: tokens = (frames / tubelet) * (side / patch)^2 and a
# candidate keeps budget <= tokens <= 8 * budget. Patch 7, tubelet 2: one tubelet holds 49, 64,
# 81, 100 tokens at sides 49, 56, 63, 70 (e.g. budget 20: 4 frames x 63 px = 162 > 160 is out).
# Patch 16, tubelet 2: 9, 16, 25, 36 tokens at sides 48, 64, 80, 96 (e.g. budget 128: 16 frames
# x 48 px = 72 < 128 is out, 8 x 96 = 144 is in).
P7_GRIDS = {
    128: [(4, 56), (4, 63), (4, 70), (6, 49), (6, 56), (6, 63), (6, 70),
          (8, 49), (8, 56), (8, 63), (8, 70)],
    64: [(2, 56), (2, 63), (2, 70), (4, 49), (4, 56), (4, 63), (4, 70),
         (6, 49), (6, 56), (6, 63), (6, 70), (8, 49), (8, 56), (8, 63), (8, 70)],
    20: [(2, 49), (2, 56), (2, 63), (2, 70), (4, 49), (4, 56), (6, 49)]}
P16_GRIDS = {
    128: [(8, 96), (16, 64), (16, 80), (16, 96)],
    64: [(4, 96), (8, 64), (8, 80), (8, 96), (16, 48), (16, 64), (16, 80), (16, 96)],
    20: [(2, 80), (2, 96), (4, 64), (4, 80), (4, 96), (8, 48), (8, 64), (8, 80), (8, 96),
         (16, 48), (16, 64)]}


@pytest.mark.parametrize('build,geometry,side,frames,budgets,expected_grids', [
    (_tiny_tubelet_model, P7T2, 56, [1, 2, 3, 4, 6, 8], [128, 64, 20], P7_GRIDS),
    (_vit16_model, TokenGeometry(16, 2), 64, [2, 3, 4, 8, 16], [128, 64, 20], P16_GRIDS),
], ids=['fluxvit-patch7-tubelet2', 'selective-vit-patch16-tubelet2'])
def test_token_optimizer_uses_the_models_geometry(build, geometry, side, frames, budgets,
                                                   expected_grids, tmp_path, monkeypatch):
    """Candidates, their token counts and the grid-reduction baseline are the backbone's own."""
    model = build()
    backbone = model.backbone
    assert backbone.geometry == geometry
    optimizer = TokenOptimizer(Config(), model, progress=False)
    assert optimizer.geometry == geometry
    sides = candidate_sides(side, backbone)
    assert sides and all(s % geometry.patch_size == 0 for s in sides)
    if geometry.patch_size == 16:
        assert sides == [48, 64, 80, 96]  # a 14 px default would give 56, 70, 84
    evaluated = []

    def fake_evaluate(self, ann, settings, split):
        evaluated.extend(settings)
        return [self._result(s, split, 1, 1, min(s.budget or 10**9, backbone.num_tokens(
            s.frames, s.side, s.side)), 0, ann) for s in settings]

    monkeypatch.setattr(TokenOptimizer, 'evaluate_settings', fake_evaluate)
    select, report = tmp_path / 'val.txt', tmp_path / 'test.txt'
    select.write_text('v.mp4 0\n')
    report.write_text('t.mp4 0\n')
    choices, baselines = optimizer.search(budgets, frames, sides, str(select), str(report),
                                          standard_side=side)
    for choice in choices:
        grids = candidate_grids(choice.budget, frames, sides, backbone)
        assert [(r.frames, r.side) for r in choice.candidates] == grids
        assert grids == expected_grids[choice.budget]
    for setting in evaluated:
        assert setting.side % geometry.patch_size == 0
        assert setting.frames % geometry.tubelet_size == 0
    for result in [r for c in choices for r in c.candidates + [c.reported]] + baselines:
        assert result.grid_tokens == backbone.num_tokens(result.frames, result.side, result.side)
    by_budget = {b.budget: b for b in baselines}
    for budget in budgets:
        reduced = reduction_grid(budget, side, backbone, frames)
        fitting = [t for t in frames if t % geometry.tubelet_size == 0
                   and backbone.num_tokens(t, side, side) <= budget]
        if not fitting:  # not even one tubelet at the side: no baseline
            assert reduced is None and budget not in by_budget
            continue
        base = by_budget[budget]
        assert (base.frames, base.side, base.method) == (max(fitting), side, 'grid_reduction')
        assert (base.frames, base.side) == reduced and base.grid_tokens <= budget
    # the model embeds what was chosen, with the count TO recorded
    chosen = choices[-1].chosen
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, chosen.frames, chosen.side, chosen.side),
                       return_output=True)
    assert out.grid_tokens == chosen.grid_tokens


def write_list(path, names):
    path.write_text(''.join(f'{n} 0\n' for n in names))
    return str(path)


def test_search_refuses_the_same_split(tmp_path):
    a = write_list(tmp_path / 'a.txt', ['x.mp4', 'y.mp4'])
    b = write_list(tmp_path / 'b.txt', ['y.mp4', 'x.mp4'])  # same videos, other order
    optimizer = TokenOptimizer.__new__(TokenOptimizer)
    optimizer.geometry = P14
    with pytest.raises(ValueError, match='must not choose on the split it reports'):
        optimizer.search([32], [4, 8], [56], a, a)
    with pytest.raises(ValueError, match='list the same videos'):
        optimizer.search([32], [4, 8], [56], a, b)


def test_choice_comes_from_the_selection_split(tmp_path, monkeypatch):
    select = write_list(tmp_path / 'val.txt', ['v1.mp4'])
    report = write_list(tmp_path / 'test.txt', ['t1.mp4'])
    # on the selection split 8 frames win; on the evaluation split 16 frames would
    scores = {('select', 4): 0.2, ('select', 8): 0.9, ('select', 16): 0.5, ('eval', 8): 0.4, ('eval', 16): 0.95,
              ('eval', 4): 0.3}
    calls = []

    def fake_evaluate(self, ann, settings, split):
        out = []
        for frames, side, budget, selector, method, _ in settings:
            calls.append((split, ann, frames))
            out.append(GridResult(budget, frames, side, selector, split, scores[(split, frames)],
                                  1, budget or frames * 16, frames * 16, method=method))
        return out

    monkeypatch.setattr(TokenOptimizer, 'evaluate_settings', fake_evaluate)
    optimizer = TokenOptimizer.__new__(TokenOptimizer)
    optimizer.geometry = P14
    choices, baselines = optimizer.search([64], [4, 8, 16], [56], select, report, max_ratio=4)
    choice = choices[0]
    assert {c.frames for c in choice.candidates} == {4, 8, 16}
    assert all(split == 'select' and ann == select for split, ann, _ in calls[:-2])
    assert choice.chosen.frames == 8 and choice.chosen.split == 'select'
    assert choice.reported.frames == 8 and choice.reported.split == 'eval'
    assert choice.reported.top1 == 0.4  # not the 0.95 an eval-set maximum would report
    assert baselines[0].method == 'grid_reduction' and baselines[0].frames == 4
