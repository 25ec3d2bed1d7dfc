"""Point a config at another dataset with a few top-level ``--cfg-options``.

Upstream (mmengine 0.10.7, by design): ``Config.fromfile`` resolves a config file's
own variables (``data_root``, ``num_classes`` ...) when the file is read, so
``--cfg-options num_classes=8`` changes only the top-level key, not
``model.cls_head.num_classes`` that was built from it.

Fix, scoped: mmflux's tools/train.py, tools/test.py and tools/profile_training.py
call :func:`apply_dataset_overrides` after merging the options; for the configs that
declare them (the tiny synthetic one does), these shortcut keys are propagated to
where they are used:

* ``data_root``: ``video_root`` = ``data_root/videos`` and ``ann_file_{train,val,test}``
  = ``data_root/{train,val,test}.txt`` (the layout of
  ``tools/generate_synthetic_data.py``), unless those are given too;
* ``video_root``: ``data_prefix.video`` of every dataloader;
* ``ann_file_train`` / ``ann_file_val`` / ``ann_file_test``: the dataloaders' ``ann_file``;
* ``num_classes``: ``model.cls_head.num_classes``.

Anything else given with a full key (``train_dataloader.dataset.ann_file=...``)
is merged as usual and wins.
"""
import os.path as osp
from typing import Dict, List, Optional

from mmengine.logging import print_log

SHORTCUTS = ('data_root', 'video_root', 'ann_file_train', 'ann_file_val', 'ann_file_test',
             'num_classes')
_LOADERS = {'ann_file_train': 'train_dataloader', 'ann_file_val': 'val_dataloader',
            'ann_file_test': 'test_dataloader'}


def innermost_dataset(cfg, loader: str) -> Optional[Dict]:
    """The innermost dataset config of a dataloader (through dataset wrappers)."""
    dataset = (cfg.get(loader) or {}).get('dataset') if isinstance(cfg.get(loader), dict) else None
    while isinstance(dataset, dict) and isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    return dataset if isinstance(dataset, dict) else None


def apply_dataset_overrides(cfg, options: Optional[Dict]) -> List[str]:
    """Propagate the shortcut keys of ``options`` (already merged into ``cfg``).

    Returns the full keys that were set (also logged).
    """
    options = dict(options or {})
    given = {k: options[k] for k in SHORTCUTS if k in options}
    if not given:
        return []
    full = set(options) - set(SHORTCUTS)
    if 'data_root' in given:
        root = given['data_root']
        given.setdefault('video_root', osp.join(root, 'videos'))
        for key, split in (('ann_file_train', 'train'), ('ann_file_val', 'val'),
                           ('ann_file_test', 'test')):
            given.setdefault(key, osp.join(root, f'{split}.txt'))
    changed = []
    for key in ('video_root', 'ann_file_train', 'ann_file_val', 'ann_file_test'):
        if key in given:
            cfg[key] = given[key]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = innermost_dataset(cfg, loader)
        if dataset is None:
            continue
        path = f'{loader}.dataset'
        if 'video_root' in given and not any(k.startswith(f'{path}.data_prefix') for k in full):
            dataset.setdefault('data_prefix', {})
            dataset['data_prefix']['video'] = given['video_root']
            changed.append(f'{path}.data_prefix.video')
    for key, loader in _LOADERS.items():
        dataset = innermost_dataset(cfg, loader)
        if key in given and dataset is not None and f'{loader}.dataset.ann_file' not in full:
            dataset['ann_file'] = given[key]
            changed.append(f'{loader}.dataset.ann_file')
    if 'num_classes' in given:
        head = (cfg.get('model') or {}).get('cls_head')
        if isinstance(head, dict) and 'model.cls_head.num_classes' not in full:
            head['num_classes'] = int(given['num_classes'])
            changed.append('model.cls_head.num_classes')
    if changed:
        named = ', '.join(f'{k}={options[k]}' for k in SHORTCUTS if k in options)
        print_log(f'--cfg-options {named}: set {", ".join(changed)}', logger='current')
    return changed


__all__ = ['apply_dataset_overrides', 'innermost_dataset', 'SHORTCUTS']
