"""The replication report: tables, contrasts and the paper's claims from saved predictions.

Why a module of its own: ``docs/results.md`` must be reproducible from the saved
per-video predictions alone (``tools/replicate_flux.py --report-only``), so every
number in it is computed here from ``results.json`` and nothing else.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.tables import markdown_table
from .significance import PairedComparison, paired_comparison, seed_interval, verdict

FRACTIONS = ('1', '1/2', '1/4', '1/8')
METHODS = (('grid', 'grid reduction'), ('random', 'random'), ('group_dynamic', 'group-dyn'),
           ('to', 'TO'))
ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'  # one character per predicted class
FAILED = '-'  # a video that could not be decoded


@dataclass(frozen=True)
class Contrast:
    """A - B per budget; each side a (run, method). ``{budget}`` in a run name is
    replaced by the budget's token count (e.g. the per-budget baselines)."""
    key: str
    text: str
    a: Tuple[str, str]
    b: Tuple[str, str]
    fractions: Tuple[str, ...] = FRACTIONS[1:]
    sign: int = 1
    paper: str = ''


#: same test method on both sides, different training: what the training changes
LIKE_FOR_LIKE = (
    Contrast('multi_vs_fixed_to', 'Flux-Multi vs fixed grid, both with TO', ('flux_multi', 'to'),
             ('fixed', 'to'), FRACTIONS),
    Contrast('multi_vs_fixed_gd', 'Flux-Multi vs fixed grid, both group-dyn on 8x56',
             ('flux_multi', 'group_dynamic'), ('fixed', 'group_dynamic')),
    Contrast('multi_vs_direct_gd', 'Flux-Multi vs a model trained at that budget, both group-dyn',
             ('flux_multi', 'group_dynamic'), ('direct_{budget}', 'group_dynamic')),
    Contrast('multi_vs_direct_to', 'Flux-Multi vs a model trained at that budget, both with TO',
             ('flux_multi', 'to'), ('direct_{budget}', 'to')),
    Contrast('sampling_to', 'flexible sampling: Flux-Multi vs multi-budget on the fixed grid, TO',
             ('flux_multi', 'to'), ('multi_fixed', 'to'), FRACTIONS),
    Contrast('sampling_gd', 'flexible sampling: Flux-Multi vs multi-budget on the fixed grid, group-dyn',
             ('flux_multi', 'group_dynamic'), ('multi_fixed', 'group_dynamic')),
    Contrast('multibudget_gd', 'multi-budget training on the fixed grid vs single budget, group-dyn',
             ('multi_fixed', 'group_dynamic'), ('fixed', 'group_dynamic')),
    Contrast('align_gd', 'alignment loss: Flux-Multi vs Flux-Multi w/o align, group-dyn',
             ('flux_multi', 'group_dynamic'), ('flux_multi_no_align', 'group_dynamic')),
    Contrast('vit_multi_vs_fixed_to', "MMAction2's ViT: Flux-Multi vs fixed grid, both with TO",
             ('vit_flux_multi', 'to'), ('vit_fixed', 'to'), FRACTIONS),
    Contrast('vit_multi_vs_fixed_gd', "MMAction2's ViT: Flux-Multi vs fixed grid, both group-dyn",
             ('vit_flux_multi', 'group_dynamic'), ('vit_fixed', 'group_dynamic')),
)

#: the paper's claims (its Tables 1, 2, 3, 5), each as contrasts at this scale
PAPER_CLAIMS = (
    ('Table 1: Flux-Multi + TO beats the directly trained model + TO, most at small budgets '
     '(+0.7 / +1.0 / +1.6 / +7.5 at 3072 / 2048 / 1024 / 512 tokens)',
     ('multi_vs_fixed_to', )),
    ('Table 1: Flux-Single + TO beats the directly trained model + TO (+1.0 / +0.9 / +0.9 / +3.1)',
     (Contrast('single_vs_fixed_to', 'Flux-Single vs fixed grid, both with TO', ('flux_single', 'to'),
               ('fixed', 'to'), FRACTIONS), )),
    ('Tables 1 and 11: at a reduced budget, TO (a larger grid, selected) beats plain grid reduction',
     (Contrast('to_vs_grid_multi', 'Flux-Multi: TO vs grid reduction', ('flux_multi', 'to'),
               ('flux_multi', 'grid')),
      Contrast('to_vs_grid_fixed', 'fixed grid: TO vs grid reduction', ('fixed', 'to'),
               ('fixed', 'grid')))),
    ('Table 2: the group-dynamic selector beats random selection at the same count (+0.6 on K400)',
     (Contrast('gd_vs_random_multi', 'Flux-Multi: group-dyn vs random', ('flux_multi', 'group_dynamic'),
               ('flux_multi', 'random')),
      Contrast('gd_vs_random_fixed', 'fixed grid: group-dyn vs random', ('fixed', 'group_dynamic'),
               ('fixed', 'random')),
      Contrast('gd_vs_random_vit', "ViT Flux-Multi: group-dyn vs random",
               ('vit_flux_multi', 'group_dynamic'), ('vit_flux_multi', 'random')))),
    ('Table 3: Flux-Multi beats Flux-Single on the standard input, no selection (81.4 vs 80.5)',
     (Contrast('multi_vs_single_full', 'Flux-Multi vs Flux-Single at 8x56, all tokens',
               ('flux_multi', 'grid'), ('flux_single', 'grid'), ('1', )), )),
    ('Table 5: Flux (single count) beats no Flux on the standard input (80.5 vs 79.3)',
     (Contrast('single_vs_fixed_full', 'Flux-Single vs fixed grid at 8x56, all tokens',
               ('flux_single', 'grid'), ('fixed', 'grid'), ('1', )), )),
    ('Table 5: multi-count training with alignment beats single-count training on a fixed input '
     'reduced by the selector (80.3 vs 77.4 at 1/2, 76.6 vs 65.8 at 1/4)',
     (Contrast('multi_vs_single_gd', 'Flux-Multi vs Flux-Single, both group-dyn',
               ('flux_multi', 'group_dynamic'), ('flux_single', 'group_dynamic')), )),
    ('Table 5: the alignment loss helps multi-count training (76.6 vs 73.3 at 1/4)', ('align_gd', )),
)


def encode_predictions(preds: Sequence[Optional[int]]) -> str:
    """Per-video predicted classes as one string (compact in JSON; None: failed)."""
    return ''.join(FAILED if p is None else ALPHABET[p] for p in preds)


def _decode(text: str) -> np.ndarray:
    return np.array([-1 if c == FAILED else ALPHABET.index(c) for c in text])


def _p(p: Optional[float]) -> str:
    if p is None:
        return '—'
    return '<0.001' if p < 0.001 else f'{p:.3f}'


class ReplicationReport:
    """Reads a ``results.json`` state of ``tools/replicate_flux.py``."""

    def __init__(self, state: Dict) -> None:
        self.state = state
        self.setup = state['setup']
        self.labels = np.asarray(self.setup['labels'])
        self.budgets = {k: int(v) for k, v in self.setup['budgets'].items()}
        self.fractions = [f for f in FRACTIONS if f in self.budgets]
        self.runs: Dict[str, Dict[int, Dict]] = {}
        for run in state['runs'].values():
            self.runs.setdefault(run['run'], {})[int(run['seed'])] = run
        self.contrasts = {c.key: c for c in LIKE_FOR_LIKE}
        for _, items in PAPER_CLAIMS:
            for item in items:
                if isinstance(item, Contrast):
                    self.contrasts[item.key] = item

    # ------------------------------------------------------------ numbers
    def label(self, run: str) -> str:
        return self.setup['runs'][run]['label']

    def correct(self, run: str, method: str, fraction: str, seeds: Sequence[int]) -> Optional[np.ndarray]:
        """(seeds, videos) correctness in [0, 1]; random is the mean over its draws.
        At full budget the selectors keep everything, so they read the full grid."""
        if fraction == '1' and method in ('random', 'group_dynamic'):
            method = 'grid'
        rows = []
        for seed in seeds:
            cells = self.runs.get(run, {}).get(seed, {}).get('cells')
            if cells is None:
                return None
            if method == 'random':
                draws = [cells[k]['pred'] for k in sorted(cells) if k.startswith(f'{fraction}:random:')]
            else:
                draws = [cells[f'{fraction}:{method}']['pred']]
            rows.append(np.mean([_decode(d) == self.labels for d in draws], axis=0))
        return np.stack(rows) if rows else None

    def seeds(self, *runs: str) -> List[int]:
        common = None
        for run in runs:
            have = set(self.runs.get(run, {}))
            common = have if common is None else common & have
        return sorted(common or [])

    def top1(self, run: str, method: str, fraction: str):
        seeds = self.seeds(run)
        acc = self.correct(run, method, fraction, seeds)
        return None if acc is None else seed_interval(100 * acc.mean(axis=1))

    def resolve(self, name: str, fraction: str) -> str:
        return name.format(budget=self.budgets[fraction])

    def compare(self, contrast: Contrast, fraction: str) -> Optional[Tuple[PairedComparison, int]]:
        (ra, ma), (rb, mb) = contrast.a, contrast.b
        ra, rb = self.resolve(ra, fraction), self.resolve(rb, fraction)
        if ra not in self.setup['runs'] or rb not in self.setup['runs']:
            return None
        seeds = self.seeds(ra, rb)
        a, b = self.correct(ra, ma, fraction, seeds), self.correct(rb, mb, fraction, seeds)
        if a is None or b is None:
            return None
        return paired_comparison(a, b, mcnemar='random' not in (ma, mb)), len(seeds)

    # ------------------------------------------------------------ tables
    def fraction_text(self, fraction: str) -> str:
        return f'{self.budgets[fraction]} ({fraction})'

    def cell(self, interval) -> str:
        if interval is None:
            return 'pending'
        if interval.half_width is None:
            return f'{interval.mean:.1f}'
        return f'{interval.mean:.1f} ± {interval.half_width:.1f}'

    CONTRAST_HEADERS = ('contrast', 'budget', 'A', 'B', 'Δ (A − B)', '95% CI over seeds',
                        '95% CI, paired bootstrap over videos', 'p (bootstrap)',
                        'McNemar: A only / B only, p', 'verdict')

    def contrast_rows(self, contrasts: Sequence[Contrast]) -> List[str]:
        rows = []
        for contrast in contrasts:
            for fraction in contrast.fractions:
                if fraction not in self.budgets:
                    continue
                (ra, ma), (rb, mb) = contrast.a, contrast.b
                ra, rb = self.resolve(ra, fraction), self.resolve(rb, fraction)
                if ra not in self.setup['runs'] or rb not in self.setup['runs']:
                    continue  # a run this replication does not train (--runs)
                result = self.compare(contrast, fraction)
                head = [contrast.text, self.fraction_text(fraction),
                        f'{self.label(ra)}, {dict(METHODS)[ma]}', f'{self.label(rb)}, {dict(METHODS)[mb]}']
                if result is None:
                    rows.append(head + ['pending', '', '', '', '', ''])
                    continue
                comp, n = result
                si = comp.seed_interval
                mcnemar = (f'{comp.a_only} / {comp.b_only}, {_p(comp.mcnemar_p)}'
                           if comp.mcnemar_p is not None else '— (random: mean of draws)')
                rows.append(head + [
                    f'**{comp.delta:+.1f}** ({n} seeds)',
                    '—' if si.low is None else f'[{si.low:+.1f}, {si.high:+.1f}]',
                    f'[{comp.bootstrap_low:+.1f}, {comp.bootstrap_high:+.1f}]', _p(comp.bootstrap_p),
                    mcnemar, verdict(comp, contrast.sign)])
        return markdown_table(self.CONTRAST_HEADERS, rows).split('\n')

    def results_table(self) -> List[str]:
        rows = []
        for run in self.setup['runs']:
            seeds = self.seeds(run)
            if not seeds:
                continue
            for i, fraction in enumerate(self.fractions):
                cells = []
                for method, _ in METHODS:
                    if fraction == '1' and method in ('random', 'group_dynamic'):
                        cells.append('—')  # at full budget the selectors keep every token
                    else:
                        cells.append(self.cell(self.top1(run, method, fraction)))
                grids = ' '.join(self.runs[run][s]['cells'][f'{fraction}:to']['grid'] for s in seeds)
                head = [self.label(run), ' '.join(map(str, seeds))] if i == 0 else ['', '']
                rows.append(head + [self.fraction_text(fraction)] + cells + [grids])
        headers = ['run', 'seeds', 'budget'] + [h for _, h in METHODS] + ['TO grids (per seed)']
        return markdown_table(headers, rows).split('\n')

    def compute_table(self) -> List[str]:
        rows = []
        for run, info in self.setup['runs'].items():
            seeds = self.seeds(run)
            if not seeds:
                continue
            comp = [self.runs[run][s]['compute'] for s in seeds]
            what = ('Flux sampling' if info['flexible'] else 'fixed grid') + \
                (', align' if info['align'] and len(info['train_budgets']) > 1 else '')
            rows.append([info['label'], what, '/'.join(map(str, info['train_budgets'])),
                         '/'.join(map(str, sorted({c['steps'] for c in comp}))),
                         f"{comp[0]['token_passes'] / 1e6:.2f} M",
                         f"{np.mean([c['train_seconds'] for c in comp]):.0f}",
                         f"{np.mean([c['eval_seconds'] for c in comp]):.0f}"])
        headers = ['run', 'training', 'train budgets', 'steps', 'token-passes (≤)', 'train (s, mean)',
                   'evaluate (s, mean)']
        return markdown_table(headers, rows).split('\n')

    def kept_check(self) -> str:
        """Every selection cell keeps exactly its budget (grid reduction: the grid's tokens)."""
        kept = {}
        for run in self.state['runs'].values():
            for key, cell in run['cells'].items():
                fraction, method = key.split(':')[:2]
                kept.setdefault((fraction, method), set()).add(cell['kept'])
        parts = []
        for fraction in self.fractions:
            sel = sorted(set().union(*[v for (f, m), v in kept.items() if f == fraction and m != 'grid']
                                     or [set()]))
            grid = sorted(kept.get((fraction, 'grid'), set()))
            parts.append(f"{self.fraction_text(fraction)}: selection keeps {'/'.join(map(str, sel))}, "
                         f"grid reduction {'/'.join(map(str, grid))}")
        return '; '.join(parts)

    def learning_check(self, margin: float = 3.0) -> str:
        """Which trainings did not learn: full-grid top-1 within ``margin`` points of chance.
        Such runs make the seed intervals wide; a reader must see them before any verdict."""
        chance = 100 / self.setup['num_classes']
        stalled, total = [], 0
        for run in self.setup['runs']:
            for seed in self.seeds(run):
                total += 1
                acc = 100 * self.correct(run, 'grid', '1', [seed]).mean()
                if acc < chance + margin:
                    stalled.append(f'{self.label(run)} seed {seed} ({acc:.1f}%)')
        if not stalled:
            return f'Every training learned: full-grid top-1 at least {margin:.0f} points above chance.'
        return (f'**{len(stalled)} of {total} trainings did not learn** (full-grid top-1 within '
                f'{margin:.0f} points of chance, {chance:.1f}%): ' + '; '.join(stalled) + '. They are '
                'kept in every number below; they are why the intervals over seeds are wide.')

    def pretraining(self) -> str:
        """Where the fine-tuned backbones come from (or that they start from scratch)."""
        done = self.state.get('pretrained') or {}
        if not done:
            return 'Every run starts from a random initialisation (no pretraining).'
        names = dict(fluxvit='FluxViT', vit="MMAction2's ViT")
        parts = [f"{names.get(kind, kind)}: {r['epochs']} epochs, {r['compute']['steps']} steps, "
                 f"val top-1 {100 * r['val_top1']:.1f}% (chance {100 / r['classes']:.1f}%), "
                 f"{r['compute']['train_seconds'] / 60:.1f} min" for kind, r in sorted(done.items())]
        r = next(iter(done.values()))
        return ('Every run fine-tunes a backbone pretrained once, shared by all runs and seeds of its '
                f"kind, as the paper fine-tunes pretrained models: a plain fixed-grid ({self.setup['base_grid']}) "
                f"training on a {r['classes']}-class motion task rendered from another seed (data seed "
                f"{r['data_seed']}: none of these videos), heads discarded. " + '; '.join(parts) + '.')

    # ------------------------------------------------------------ output
    def markdown(self) -> str:
        s, st = self.setup, self.state
        total = len(s['runs']) * len(s['seeds'])
        state = ('quick run' if s['quick'] else 'full run') + \
            ('' if st.get('finished') else f', in progress: {len(st["runs"])} of {total} runs')
        n = len(self.labels)
        epochs = f"{s['epochs']} epoch" + ('s' if s['epochs'] != 1 else '')
        lines = [f'# Replication results ({state})', '',
                 f"{len(s['runs'])} trainings × seeds {', '.join(map(str, s['seeds']))}; "
                 f"{s['num_classes']} classes (chance {100 / s['num_classes']:.1f}%), {n} test videos "
                 f"(one video = {100 / n:.2f} points; the standard error of one accuracy near 50% is "
                 f"{100 * np.sqrt(0.25 / n):.1f} points). Every run: {epochs}, the same "
                 f"data, batch, optimizer and schedule. CPU: {st.get('cpu', 'not recorded')}. "
                 f"Wall time {st.get('seconds', 0) / 60:.1f} min.", '',
                 f"Budgets: {', '.join(self.fraction_text(f) for f in self.fractions)} tokens of the "
                 f"{s['base_grid']} grid. Kept tokens, read from the model: {self.kept_check()}. "
                 f"TO chooses its grid (frames {s['to_frames']} × sides {s['to_sides']}) on the val "
                 f"split and reports on test; random is the mean of {s['draws']} draws.", '',
                 'Intervals: mean over seeds ± the half-width of the 95% Student-t interval '
                 '(n − 1 degrees of freedom). A verdict is *supported* when the 95% interval over '
                 'seeds, the paired bootstrap interval over videos and McNemar\'s test (or, for the '
                 'random selector, the bootstrap alone) all exclude no difference on the claimed '
                 'side; *contradicted* when they all do on the other side; else *not resolvable*.',
                 '', self.pretraining(), '', self.learning_check(),
                 '', '## Like-for-like: same test method, different training', '']
        lines += self.contrast_rows(LIKE_FOR_LIKE)
        lines += ['', "## The paper's claims, one by one", '']
        for text, items in PAPER_CLAIMS:
            contrasts = [self.contrasts[i] if isinstance(i, str) else i for i in items]
            table = self.contrast_rows(contrasts)
            lines += [f'### {text}', ''] + (table if len(table) > 2 else
                                             ['Not tested: its runs are not part of this replication.']) + ['']
        lines += ['## Top-1 (%) of every run', ''] + self.results_table()
        lines += ['', '## Compute per run', ''] + self.compute_table()
        lines += ['', 'Commands:', '', '```'] + list(st.get('commands', [])) + ['```', '']
        return '\n'.join(lines)

    def plot(self, path: str) -> None:
        """Top-1 against budget, one panel per test method, one line per run (95% intervals)."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(METHODS), figsize=(4.2 * len(METHODS), 4), sharey=True)
        tokens = [self.budgets[f] for f in self.fractions]
        for (method, title), ax in zip(METHODS, axes):
            for run in self.setup['runs']:
                if not self.seeds(run):
                    continue
                values = [self.top1(run, method, f) for f in self.fractions]
                ax.errorbar(tokens, [v.mean for v in values],
                            yerr=[v.half_width or 0.0 for v in values], marker='o', capsize=3,
                            label=self.label(run))
            ax.axhline(100 / self.setup['num_classes'], color='grey', lw=0.8, ls=':')
            ax.set_xscale('log', base=2)
            ax.set_xticks(tokens, [f'{t}\n({f})' for t, f in zip(tokens, self.fractions)])
            ax.set_title(title)
            ax.set_xlabel('tokens')
            ax.grid(alpha=0.3)
        axes[0].set_ylabel('top-1 (%), 95% interval over seeds')
        axes[-1].legend(fontsize=6, loc='lower right')
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
