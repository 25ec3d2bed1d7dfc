"""The test grid's one owner: reading and setting a config's grid, views kept."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmflux.evaluation.grid_config import ViewGrid, read_test_grid, set_test_grid, view_grids
from conftest import REPO_ROOT, TINY_RECIPE

SSV2 = osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-s14_ssv2.py')
PLUG = osp.join(REPO_ROOT, 'configs', 'plug_and_play', 'vit-b16_videomae_flux-multi_k400.py')


@pytest.mark.parametrize('path, grid', [
    (TINY_RECIPE, ViewGrid(8, 56, 2, 'ThreeCrop')),
    (SSV2, ViewGrid(8, 224, 2, 'ThreeCrop')),   # SSv2: 2 temporal views x 3 crops
    (PLUG, ViewGrid(16, 224, 4, 'ThreeCrop')),  # K400: 4 x 3
])
def test_read_test_grid_of_the_shipped_configs(path, grid):
    assert read_test_grid(Config.fromfile(path)) == grid


def test_set_test_grid_sets_every_test_pipeline_and_only_the_grid():
    cfg = Config.fromfile(TINY_RECIPE)
    test_cfg = dict(cfg.model.test_cfg)
    set_test_grid(cfg, 12, 70)
    assert read_test_grid(cfg) == ViewGrid(12, 70, 2, 'ThreeCrop')
    for pipeline in (cfg.test_dataloader.dataset.pipeline, cfg.test_pipeline):
        steps = {s['type']: s for s in pipeline}
        assert steps['Resize']['scale'] == (-1, 70) and steps['ThreeCrop']['crop_size'] == 70
    grids = {g['where']: g for g in view_grids(cfg)}
    assert grids['val_dataloader.dataset.pipeline']['frames'] == 8  # val untouched
    assert dict(cfg.model.test_cfg) == test_cfg  # budget and head belong to the switch
    set_test_grid(cfg, num_clips=1, crop='CenterCrop')
    assert read_test_grid(cfg) == ViewGrid(12, 70, 1, 'CenterCrop')
    with pytest.raises(ValueError, match="crop='Nope'"):
        set_test_grid(cfg, crop='Nope')
