"""check_built: what spans objects is checked on the objects themselves."""
from mmaction.registry import MODELS
from mmflux.datasets.flux_batch_sampler import FluxBatchSampler
from mmflux.engine.config_check import check_built
from conftest import small_plug_and_play_cfg, tiny_model_cfg


def sampler(**kwargs):
    args = dict(frames=(4, 5), sides=(56, 57, 14), token_window=None, patch_size=14,
                tubelet_size=1, seed=0)
    return FluxBatchSampler(range(4), 2, **dict(args, **kwargs))


def test_budget_above_the_built_samplers_largest_grid():
    model = MODELS.build(tiny_model_cfg(budgets=(96, 64, 32)))
    errors = check_built(model, sampler())
    assert len(errors) == 1 and errors[0].startswith(
        'model.train_cfg.budgets=[96, 64, 32]: 96 is above the 64 tokens of the largest training '
        'grid (4 frames x 56 px)')
    assert check_built(model, sampler(frames=(8, 9))) == []


def test_the_wrapped_vit_counts_its_own_tubelets():
    model = MODELS.build(small_plug_and_play_cfg().model)
    errors = check_built(model, sampler(patch_size=16, sides=(64, 65, 16)))
    assert errors == ["train_dataloader.batch_sampler.tubelet_size=1: differs from the backbone's "
                      'tubelet size 2, so the token window counts the wrong tokens; fix: set '
                      'batch_sampler.tubelet_size=2.']


def test_other_models_are_not_checked():
    model = MODELS.build(dict(type='Recognizer3D', backbone=dict(type='X3D', gamma_w=1, gamma_b=1,
                                                                 gamma_d=1),
                              cls_head=dict(type='X3DHead', num_classes=2, in_channels=432)))
    assert check_built(model, sampler()) == []


def test_heads_trained_at_other_budgets_than_they_declare():
    cfg = tiny_model_cfg(budgets=(96, 64, 32))
    cfg['train_cfg'] = dict(budgets=(96, 64, 16))
    errors = check_built(MODELS.build(cfg))
    assert errors == ['model.train_cfg.budgets=[96, 64, 16] with heads=[0, 1, 2]: do not match '
                      'model.cls_head.head_budgets=[96, 64, 32] (head 2 is trained at 16 but '
                      'declared for 32), so testing would pick the wrong head for a budget; fix: '
                      'set model.cls_head.head_budgets=(96, 64, 16) or change '
                      'model.train_cfg.budgets/heads.']


def test_labels_are_read_from_the_built_dataset_whatever_its_file_name(tmp_path):
    # the label check once scanned only files named *.txt: a list called train.list slipped through
    from mmaction.registry import DATASETS
    ann = tmp_path / 'train.list'
    ann.write_text('a.mp4 3\nb.mp4 9\n')
    dataset = DATASETS.build(dict(type='VideoDataset', ann_file=str(ann), pipeline=[]))
    model = MODELS.build(tiny_model_cfg(num_classes=7))
    errors = check_built(model, datasets=dict(train_dataloader=dataset))
    assert len(errors) == 1 and errors[0].startswith(
        f"train_dataloader.dataset.ann_file={str(ann)!r}: has label 9 but model.cls_head.num_classes=7")
    assert 'fix: --cfg-options num_classes=10' in errors[0]
    assert check_built(MODELS.build(tiny_model_cfg(num_classes=10)),
                       datasets=dict(train_dataloader=dataset)) == []
