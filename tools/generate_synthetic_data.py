#!/usr/bin/env python
"""Generate the embedded synthetic *motion* video dataset.

The defaults produce the small default dataset used by the mmflux configs
(6 classes, 240/60/60 videos of 32 frames at 96x96, seed 0); it renders in a
few seconds on 2 CPU cores and is reused when already present::

    python tools/generate_synthetic_data.py --out data/synthetic_motion

The written layout is MMAction2 ``VideoDataset`` compatible:
``data_prefix=dict(video='<out>/videos')`` and ``ann_file='<out>/train.txt'``.
"""
import argparse
import importlib
import importlib.util
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODULE_NAME = 'mmflux.datasets.synthetic_motion'


def load_synthetic_motion():
    """The generator module of the installed mmflux (``bash tools/setup_env.sh``)."""
    return importlib.import_module(MODULE_NAME)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Generate the synthetic motion video dataset '
        '(classes defined by how an object moves over time).')
    p.add_argument('--out', default='data/synthetic_motion',
                   help='output directory (default: data/synthetic_motion)')
    p.add_argument('--num-train', type=int, default=1200)
    p.add_argument('--num-val', type=int, default=150)
    p.add_argument('--num-test', type=int, default=150)
    p.add_argument('--num-classes', type=int, default=6,
                   help='use the first K classes of the fixed class list')
    p.add_argument('--frame-size', type=int, nargs='+', default=[96],
                   metavar='S', help='S or H W (even); default 96')
    p.add_argument('--num-frames', type=int, default=32)
    p.add_argument('--fps', type=float, default=16)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-distractors', type=int, default=3)
    p.add_argument('--workers', type=int,
                   default=max(1, min(4, os.cpu_count() or 1)))
    p.add_argument('--force', action='store_true',
                   help='regenerate even if meta.json matches')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--list-classes', action='store_true',
                   help='print the ordered class list and exit')
    args = p.parse_args(argv)
    if len(args.frame_size) not in (1, 2):
        p.error('--frame-size takes S or H W')
    return args


def main(argv=None):
    args = parse_args(argv)
    sm = load_synthetic_motion()
    if args.list_classes:
        for i, name in enumerate(sm.MOTION_CLASSES):
            print(f'{i}\t{name}')
        return 0
    frame_size = (args.frame_size[0] if len(args.frame_size) == 1 else
                  tuple(args.frame_size))
    meta = sm.generate_motion_dataset(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        num_classes=args.num_classes,
        frame_size=frame_size,
        num_frames=args.num_frames,
        fps=args.fps,
        seed=args.seed,
        workers=args.workers,
        max_distractors=args.max_distractors,
        force=args.force,
        progress=not args.no_progress)
    out = meta['out_dir']
    h, w = meta['frame_size']
    print('Synthetic motion dataset summary')
    print(f'  location     : {out}'
          f' ({"reused existing" if meta["reused"] else "generated"}, '
          f'{meta["num_rendered"]} rendered in {meta["elapsed_s"]:.1f}s)')
    print(f'  classes ({meta["num_classes"]}): ' + ', '.join(meta['classes']))
    print('  videos       : ' + ', '.join(
        f'{s}={n}' for s, n in meta['counts'].items()))
    print('  per class    : ' + '; '.join(
        f'{s}={c}' for s, c in meta['class_counts'].items()))
    print(f'  video format : {w}x{h}, {meta["num_frames"]} frames @ '
          f'{meta["fps"]:g} fps, mp4v, seed {meta["seed"]}')
    print(f'  data_prefix  : {osp.join(out, meta["data_prefix"])}')
    print('  ann files    : ' + ', '.join(
        osp.join(out, f) for f in meta['ann_files'].values()))
    print(f'  label map    : {osp.join(out, meta["label_map"])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
