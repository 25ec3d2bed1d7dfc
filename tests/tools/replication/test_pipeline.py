"""The pipeline's order and bookkeeping, with training and evaluation replaced by fakes:
each seed's runs start from that seed's pretraining of their arm, every step is saved,
and a second call finds nothing to do."""
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..', 'tools'))
from replication import pipeline  # noqa: E402
from replication.design import Design  # noqa: E402


def test_each_seed_fine_tunes_its_own_pretraining_and_everything_is_saved(tmp_path, monkeypatch):
    calls = []

    def fake_train(state, key, spec, seed, pretrain=False, init=None):
        calls.append((key, init))
        return dict(config=f'{key}/config.py', checkpoint=f'{key}/last.pth', val_curve=[[1, 0.5]],
                    compute=dict(epochs=1, steps=3, batch_size=16, tokens_per_clip=256,
                                 train_seconds=1.0, token_passes=3 * 16 * 256))

    monkeypatch.setattr(pipeline, 'train', fake_train)
    monkeypatch.setattr(pipeline, 'evaluate', lambda state, config, ckpt: {'1:grid': dict(pred='0')})
    state = pipeline.State(out=str(tmp_path / 'out'), work=str(tmp_path / 'work'), design=Design(quick=True),
                           seeds=(0, 1), runs=['fixed', 'flux_multi_fluxpre'])
    state.setup = dict(videos=['a.mp4'], version=pipeline.FORMAT_VERSION)
    pipeline.run_all(state)
    assert set(state.pretrained) == {'fixed/seed0', 'flux/seed0', 'fixed/seed1', 'flux/seed1'}
    work = str(tmp_path / 'work')
    # seed-major: seed 0's pretrainings, then its runs from them, then seed 1
    assert calls == [
        ('pretrain_fixed/seed0', None), ('pretrain_flux/seed0', None),
        ('fixed/seed0', osp.join(work, 'pretrain_fixed/seed0/last.pth')),
        ('flux_multi_fluxpre/seed0', osp.join(work, 'pretrain_flux/seed0/last.pth')),
        ('pretrain_fixed/seed1', None), ('pretrain_flux/seed1', None),
        ('fixed/seed1', osp.join(work, 'pretrain_fixed/seed1/last.pth')),
        ('flux_multi_fluxpre/seed1', osp.join(work, 'pretrain_flux/seed1/last.pth'))]
    saved, results = pipeline.load_saved(state.out)
    assert set(results) == {'fixed/seed0', 'fixed/seed1', 'flux_multi_fluxpre/seed0',
                            'flux_multi_fluxpre/seed1'}
    assert results['flux_multi_fluxpre/seed1']['pretrained'] == 'flux/seed1'
    assert set(saved['pretrained']) == set(state.pretrained)
    assert json.loads((tmp_path / 'out' / 'runs' / 'fixed_seed0.json').read_text())['cells'] == {
        '1:grid': dict(pred='0')}
    assert pipeline.todo(state) == []  # a second call trains nothing
