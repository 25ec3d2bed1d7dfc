"""Token Optimization: candidate grids, and never choosing on the split it reports.

The tool end to end: tests/tools/test_token_optimize.py.
"""
import pytest

from mmflux.evaluation.token_optimization import (GridResult, TokenOptimizer, candidate_grids,
                                                  candidate_sides, check_grid, reduction_grid)


def test_candidate_and_reduction_grids():
    assert candidate_grids(64, [2, 4, 8, 16], [42, 56], max_ratio=2) == [(4, 56), (8, 42), (8, 56)]
    assert reduction_grid(64, 56, [2, 4, 8]) == (4, 56)
    assert reduction_grid(8, 56, [2, 4]) is None
    # without a frame list: any multiple of the tubelet (the reports' baseline)
    assert reduction_grid(128, 56, patch_size=7, tubelet_size=2) == (4, 56)
    assert reduction_grid(32, 56, patch_size=7, tubelet_size=2) is None
    # below one tubelet at the side: one tubelet at the largest side that fits (5 x 5 <= 32)
    assert reduction_grid(32, 56, [2, 4], 7, 2, shrink_side=True) == (2, 35)


def test_candidate_sides_are_multiples_of_the_patch():
    assert candidate_sides(224, 14) == [210, 224, 238, 252]
    assert candidate_sides(224, 16) == [208, 224, 240, 256]  # not 210/238: a ViT/16 refuses them
    assert candidate_sides(56, 7) == [49, 56, 63, 70]
    with pytest.raises(ValueError, match='not a multiple of the patch size 16; use 240'):
        check_grid(16, 238, 16, 2)
    with pytest.raises(ValueError, match='tubelet size 2; use 8'):
        check_grid(7, 224, 16, 2)


def write_list(path, names):
    path.write_text(''.join(f'{n} 0\n' for n in names))
    return str(path)


def test_search_refuses_the_same_split(tmp_path):
    a = write_list(tmp_path / 'a.txt', ['x.mp4', 'y.mp4'])
    b = write_list(tmp_path / 'b.txt', ['y.mp4', 'x.mp4'])  # same videos, other order
    optimizer = TokenOptimizer.__new__(TokenOptimizer)
    optimizer.patch_size, optimizer.tubelet_size = 14, 1
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
    optimizer.patch_size, optimizer.tubelet_size = 14, 1
    choices, baselines = optimizer.search([64], [4, 8, 16], [56], select, report, max_ratio=4)
    choice = choices[0]
    assert {c.frames for c in choice.candidates} == {4, 8, 16}
    assert all(split == 'select' and ann == select for split, ann, _ in calls[:-2])
    assert choice.chosen.frames == 8 and choice.chosen.split == 'select'
    assert choice.reported.frames == 8 and choice.reported.split == 'eval'
    assert choice.reported.top1 == 0.4  # not the 0.95 an eval-set maximum would report
    assert baselines[0].method == 'grid_reduction' and baselines[0].frames == 4
