#!/usr/bin/env python
"""Replication of the paper's claims on the embedded motion dataset: converged,
compute-matched trainings over five seeds, verdicts corrected for the number of claims.

    python tools/replicate_flux.py --out docs/replication_v3 --work /work/replication_cache
        # trains what is missing (resumes: finished runs are kept), writes the report
    python tools/replicate_flux.py --out OUT --report-only   # the report again, from the saved predictions
    python tools/replicate_flux.py --out OUT --work WORK --verify   # re-evaluate the checkpoints
    python tools/replicate_flux.py --quick                   # the reduced version CI runs

The design (datasets, epochs, seeds, runs) is in ``tools/replication/design.py``,
the steps in ``pipeline.py``, the statistics in ``significance.py`` and the report
in ``report.py``. OUT holds small JSON files only (committed): one per finished
run with every per-video prediction; WORK holds data, configs and checkpoints.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/replication when imported

from replication import pipeline  # noqa: E402
from replication.design import ROOT, Design  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'replication'),
                   help='results: setup.json, runs/*.json, results.md/png (small; commit them)')
    p.add_argument('--work', default=None,
                   help='data, configs, checkpoints (large; default OUT/work)')
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='default: the design\'s (0..4; quick: 0 1)')
    p.add_argument('--epochs', type=int, default=None, help='fine-tuning epochs (default: the design\'s)')
    p.add_argument('--pretrain-epochs', type=int, default=None,
                   help='pretraining epochs (default: the design\'s)')
    p.add_argument('--val-interval', type=int, default=None,
                   help='epochs between validations (a pilot: 1)')
    p.add_argument('--draws', type=int, default=3, help='random-selector draws per setting')
    p.add_argument('--runs', nargs='+', default=None, help='subset of runs (default: all)')
    p.add_argument('--jobs', type=int, default=1,
                   help='runs trained and evaluated at once, each with cores / jobs threads')
    p.add_argument('--quick', action='store_true', help='reduced version for CI')
    p.add_argument('--report-only', action='store_true',
                   help='rewrite results.md / results.png from OUT')
    p.add_argument('--verify', action='store_true',
                   help='re-evaluate the saved checkpoints and compare every prediction')
    args = p.parse_args(argv)
    args.out = osp.abspath(args.out)
    args.work = osp.abspath(args.work or osp.join(args.out, 'work'))
    return args


def make_state(args) -> pipeline.State:
    design = Design(quick=args.quick, epochs=args.epochs, pretrain_epochs=args.pretrain_epochs,
                    val_interval=args.val_interval)
    specs = design.runs()
    runs = args.runs or (['fixed', 'flux_multi'] if args.quick else list(specs))
    unknown = sorted(set(runs) - set(specs))
    if unknown:
        raise SystemExit(f'unknown --runs {unknown}; choose from {sorted(specs)}')
    return pipeline.State(out=args.out, work=args.work, design=design,
                          seeds=tuple(args.seeds or design.schedule.seeds), runs=runs,
                          draws=args.draws, jobs=args.jobs)


def write_report(out: str) -> str:
    from replication.report import ReplicationReport
    state = pipeline.report_state(pipeline.State(out=out, work='', design=None, seeds=(), runs=[]))
    report = ReplicationReport(state)
    text = report.markdown()
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write(text)
    if state['runs']:
        report.plot(osp.join(out, 'results.png'))
    return text


def main(argv=None) -> None:
    args = parse_args(argv)
    saved, results = pipeline.load_saved(args.out)
    if args.report_only or args.verify:
        if not saved:
            raise SystemExit(f'--report-only / --verify need {osp.join(args.out, "setup.json")}; '
                             'run the replication first')
        if args.verify:
            args.quick = saved['setup']['quick']  # the design the runs were trained with
            state = make_state(args)
            state.setup, state.results = saved['setup'], results
            state.draws = saved['setup']['draws']
            return pipeline.verify(state)
        print(write_report(args.out))
        return
    state = make_state(args)
    os.makedirs(state.work, exist_ok=True)
    pipeline.prepare_data(state)
    state.setup = pipeline.describe_setup(state, state.design.runs())
    if saved:
        differ = [k for k in pipeline.SAME_SETUP if saved['setup'].get(k) != state.setup.get(k)]
        if differ:
            raise SystemExit(f'{args.out} holds another setup ({", ".join(differ)} differ); use '
                             'another --out')
        state.pretrained, state.results = saved['pretrained'], results
        state.commands, state.seconds = saved['commands'], saved['seconds']
        # runs saved under a wider --runs / --seeds stay in the setup and the report
        state.setup['runs'] = dict(saved['setup']['runs'], **state.setup['runs'])
        state.setup['seeds'] = sorted(set(saved['setup']['seeds']) | set(state.seeds))
    pipeline.run_all(state)
    print(write_report(args.out))


if __name__ == '__main__':
    main()
