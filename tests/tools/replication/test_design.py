"""The replication's design: every run's config builds from Config merges, compute-matched
arms train for Flux-Multi's token-passes, grid reduction's candidates by hand."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..', 'tools'))
from replication.design import DATASETS, Design  # noqa: E402
from replication.pipeline import read_training_log, reduction_candidates  # noqa: E402


@pytest.fixture(scope='module')
def design():
    return Design(quick=False)


def test_every_run_config_builds_with_exact_budgets(design):
    import mmflux  # noqa: F401
    from mmengine.registry import init_default_scope

    from mmaction.registry import MODELS
    init_default_scope('mmaction')
    specs = design.runs()
    core = {'fixed', 'fixed_cm', 'flux_single', 'flux_single_cm', 'flux_multi', 'multi_fixed',
            'flux_multi_no_align', 'flux_multi_fluxpre'}
    assert {n for n, s in specs.items() if s.core} == core
    for name, spec in specs.items():
        cfg = design.config(spec, '/data/x', 9, init_checkpoint='/ckpt/pre.pth')
        model = MODELS.build(cfg.model)
        assert model.cls_head.num_classes == 9, name
        assert model.backbone.selector.exact_count, name
        assert tuple(cfg.model.train_cfg.budgets) == design.train_budgets(spec), name
        if len(design.train_budgets(spec)) > 1:  # the alignment loss needs several budgets
            assert cfg.model.train_cfg.get('align_weight', 1.0) == (1.0 if spec.align else 0.0), name
        assert (cfg.train_dataloader.batch_sampler.token_window is None) == (not spec.flexible), name
        assert cfg.train_dataloader.dataset.ann_file == '/data/x/train.txt', name
        assert cfg.test_dataloader.dataset.data_prefix.video == '/data/x/videos', name
        # every run validates (its curve is in the report); the schedule follows max_epochs
        assert cfg.train_cfg.val_interval == design.schedule.val_interval, name
        assert cfg.param_scheduler == design.base.param_scheduler, name
        init = cfg.model.backbone.init_cfg
        assert init.checkpoint == '/ckpt/pre.pth' and init.prefix == 'backbone.', name


def test_compute_matched_runs_train_for_flux_multis_token_passes(design):
    specs = design.runs()
    e = design.schedule.epochs
    assert design.epochs(specs['fixed']) == design.epochs(specs['flux_multi']) == e
    # Flux-Multi: 256 + 128 + 64 = 448 tokens per clip, the fixed grid 256: 448 / 256 = 1.75
    assert design.epochs(specs['fixed_cm']) == design.epochs(specs['flux_single_cm']) == round(1.75 * e)
    assert design.config(specs['fixed_cm'], '/d', 6).train_cfg.max_epochs == round(1.75 * e)
    assert design.epochs(specs['fixed'], pretrain=True) == design.schedule.pretrain_epochs


def test_pretraining_arms_and_dataset_sizes(design):
    arms = design.pretrain_arms()
    assert not arms['fixed'].flexible and arms['flux'].flexible and arms['vit'].vit
    assert design.dataset('finetune') == DATASETS[('finetune', False)]
    assert design.dataset('pretrain').classes == 9
    assert design.dataset('pretrain').seed != design.dataset('finetune').seed
    assert DATASETS[('finetune', True)].generator_args()[:2] == ['--num-train', '48']


def test_grid_reduction_candidates_by_hand(design):
    # 32 tokens (1/8), 7 px patches, 2-frame tubelets: per frame count the largest side that fits,
    # kept when its grid uses more than 16 tokens: 1x5x5=25, 2x4x4=32, 3x3x3=27, (4x2x2=16 out),
    # 5x2x2=20, 6x2x2=24, 7x2x2=28, 8x2x2=32
    assert reduction_candidates(design, 32) == [(2, 35), (4, 28), (6, 21), (10, 14), (12, 14),
                                                (14, 14), (16, 14)]
    assert reduction_candidates(design, 256) == [(8, 56)]
    for budget in (128, 64, 32):
        for frames, side in reduction_candidates(design, budget):
            assert budget / 2 < design.num_tokens(frames, side) <= budget


def test_training_log_gives_steps_and_the_validation_curve(tmp_path):
    for stamp, lines in (('20260101_000000', ['{"loss": 2.0, "step": 10}', '{"acc/top1": 0.25, "step": 1}']),
                         ('20260101_010000', ['{"loss": 1.0, "step": 20}', '{"acc/top1": 0.5, "step": 2}'])):
        (tmp_path / stamp / 'vis_data').mkdir(parents=True)
        (tmp_path / stamp / 'vis_data' / 'scalars.json').write_text('\n'.join(lines) + '\n')
    assert read_training_log(str(tmp_path)) == (20, [(1, 0.25), (2, 0.5)])


def test_a_pilot_overrides_the_schedule():
    pilot = Design(epochs=3, val_interval=1)
    assert pilot.schedule.epochs == 3 and pilot.schedule.val_interval == 1
    assert pilot.schedule.pretrain_epochs == Design().schedule.pretrain_epochs  # None keeps it
    spec = pilot.runs()['fixed_cm']
    assert pilot.epochs(spec) == 5  # round(1.75 x 3)
    cfg = pilot.config(spec, '/d', 6)
    assert (cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval) == (5, 1)
