"""The replication report: contrasts, the paper's claims, convergence and compute,
computed from the saved per-video predictions alone.

Why a module of its own: ``results.md`` must be reproducible from the committed
JSON files (``tools/replicate_flux.py --report-only``), so every number in it is
computed here from them and nothing else.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmflux.utils.tables import markdown_table
from .design import FRACTIONS
from .pipeline import ALPHABET, FAILED
from .significance import (PairedComparison, benjamini_hochberg, holm, minimal_detectable_difference,
                           paired_comparison, seed_interval, verdict)

METHODS = (('grid', 'grid reduction'), ('random', 'random'), ('group_dynamic', 'group-dyn'),
           ('to', 'TO'))
ALPHA = 0.05


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


#: the contrasts of a training effect at equal token-passes (the compute-matched
#: arms): what the report leads with
COMPUTE_MATCHED = (
    Contrast('multi_vs_fixed_cm_to', 'Flux-Multi vs fixed grid (compute-matched), both with TO',
             ('flux_multi', 'to'), ('fixed_cm', 'to'), FRACTIONS),
    Contrast('multi_vs_fixed_cm_gd', 'Flux-Multi vs fixed grid (compute-matched), both group-dyn',
             ('flux_multi', 'group_dynamic'), ('fixed_cm', 'group_dynamic')),
    Contrast('single_cm_vs_fixed_cm_to', 'Flux-Single vs fixed grid, both compute-matched, TO',
             ('flux_single_cm', 'to'), ('fixed_cm', 'to'), FRACTIONS),
    Contrast('multi_vs_single_cm_full', 'Flux-Multi vs Flux-Single (compute-matched) at 8x56, all tokens',
             ('flux_multi', 'grid'), ('flux_single_cm', 'grid'), ('1', )),
    Contrast('multi_vs_single_cm_gd', 'Flux-Multi vs Flux-Single (compute-matched), both group-dyn',
             ('flux_multi', 'group_dynamic'), ('flux_single_cm', 'group_dynamic')),
    Contrast('multibudget_vs_fixed_cm_gd',
             'multi-budget on the fixed grid vs fixed grid (compute-matched), group-dyn',
             ('multi_fixed', 'group_dynamic'), ('fixed_cm', 'group_dynamic')),
    Contrast('fixed_cm_vs_fixed_full', 'more compute alone: fixed grid compute-matched vs fixed, all tokens',
             ('fixed_cm', 'grid'), ('fixed', 'grid'), ('1', )),
)

#: same test method on both sides, different training, equal token-passes per step
LIKE_FOR_LIKE = (
    Contrast('sampling_to', 'flexible sampling: Flux-Multi vs multi-budget on the fixed grid, TO',
             ('flux_multi', 'to'), ('multi_fixed', 'to'), FRACTIONS),
    Contrast('sampling_gd', 'flexible sampling: Flux-Multi vs multi-budget on the fixed grid, group-dyn',
             ('flux_multi', 'group_dynamic'), ('multi_fixed', 'group_dynamic')),
    Contrast('multi_vs_fixed_to', 'Flux-Multi vs fixed grid (fewer token-passes), both with TO',
             ('flux_multi', 'to'), ('fixed', 'to'), FRACTIONS),
    Contrast('multi_vs_direct_gd', 'Flux-Multi vs a model trained at that budget, both group-dyn',
             ('flux_multi', 'group_dynamic'), ('direct_{budget}', 'group_dynamic')),
    Contrast('multi_vs_direct_to', 'Flux-Multi vs a model trained at that budget, both with TO',
             ('flux_multi', 'to'), ('direct_{budget}', 'to')),
    Contrast('vit_multi_vs_fixed_to', "MMAction2's ViT: Flux-Multi vs fixed grid, both with TO",
             ('vit_flux_multi', 'to'), ('vit_fixed', 'to'), FRACTIONS),
)


def _c(*args, **kwargs) -> Contrast:
    return Contrast(*args, **kwargs)


#: the paper's claims (Tables 1, 2, 3, 5 of the paper), each as contrasts at this
#: scale; every row of these tables is one hypothesis of the one pre-declared family
#: that Holm's correction is applied to. A training effect is tested against the
#: compute-matched arm where the two trainings' token-passes differ.
PAPER_CLAIMS = (
    ('Table 1: Flux-Multi + TO beats the directly trained model + TO, most at small budgets '
     '(+0.7 / +1.0 / +1.6 / +7.5 at 3072 / 2048 / 1024 / 512 tokens)', ('multi_vs_fixed_cm_to', )),
    ('Table 1: Flux-Single + TO beats the directly trained model + TO (+1.0 / +0.9 / +0.9 / +3.1)',
     (_c('single_vs_fixed_to', 'Flux-Single vs fixed grid, both with TO', ('flux_single', 'to'),
         ('fixed', 'to'), FRACTIONS), )),
    ('Tables 1 and 11: at a reduced budget, TO (a larger grid, selected) beats grid reduction '
     '(the best of several smaller grids on val)',
     (_c('to_vs_grid_multi', 'Flux-Multi: TO vs grid reduction', ('flux_multi', 'to'), ('flux_multi', 'grid')),
      _c('to_vs_grid_fixed', 'fixed grid: TO vs grid reduction', ('fixed', 'to'), ('fixed', 'grid')))),
    ('Table 2: the group-dynamic selector beats random selection at the same count (+0.6 on K400)',
     (_c('gd_vs_random_multi', 'Flux-Multi: group-dyn vs random', ('flux_multi', 'group_dynamic'),
         ('flux_multi', 'random')),
      _c('gd_vs_random_fixed', 'fixed grid: group-dyn vs random', ('fixed', 'group_dynamic'),
         ('fixed', 'random')))),
    ('Table 3: Flux-Multi beats Flux-Single on the standard input, no selection (81.4 vs 80.5)',
     ('multi_vs_single_cm_full', )),
    ('Table 5: Flux (single count) beats no Flux on the standard input (80.5 vs 79.3)',
     (_c('single_vs_fixed_full', 'Flux-Single vs fixed grid at 8x56, all tokens', ('flux_single', 'grid'),
         ('fixed', 'grid'), ('1', )), )),
    ('Table 5: multi-count training with alignment beats single-count training on a fixed input '
     'reduced by the selector (80.3 vs 77.4 at 1/2, 76.6 vs 65.8 at 1/4)', ('multi_vs_single_cm_gd', )),
    ('Table 5: the alignment loss helps multi-count training (76.6 vs 73.3 at 1/4)',
     (_c('align_gd', 'alignment loss: Flux-Multi vs Flux-Multi w/o align, group-dyn',
         ('flux_multi', 'group_dynamic'), ('flux_multi_no_align', 'group_dynamic')), )),
    ('Table 5: Flux sampling in pretraining helps (the fine-tuned Flux-Multi, Flux-pretrained vs '
     'fixed-grid-pretrained)',
     (_c('fluxpre_full', 'Flux-pretrained vs fixed-pretrained Flux-Multi, all tokens',
         ('flux_multi_fluxpre', 'grid'), ('flux_multi', 'grid'), ('1', )),
      _c('fluxpre_to', 'Flux-pretrained vs fixed-pretrained Flux-Multi, TO',
         ('flux_multi_fluxpre', 'to'), ('flux_multi', 'to'), FRACTIONS[1:]))),
)


def decode_predictions(text: str) -> np.ndarray:
    return np.array([-1 if c == FAILED else ALPHABET.index(c) for c in text])


def _p(p: Optional[float]) -> str:
    if p is None:
        return '—'
    return '<0.001' if p < 0.001 else f'{p:.3f}'


class ReplicationReport:
    """Reads the saved state of ``tools/replicate_flux.py`` (setup, pretrained, runs)."""

    def __init__(self, state: Dict, num_bootstrap: int = 4000) -> None:
        self.state = state
        self.setup = state['setup']
        self.labels = np.asarray(self.setup['labels'])
        self.budgets = {k: int(v) for k, v in self.setup['budgets'].items()}
        self.fractions = [f for f in FRACTIONS if f in self.budgets]
        self.num_bootstrap = num_bootstrap
        self.runs: Dict[str, Dict[int, Dict]] = {}
        for run in state['runs'].values():
            self.runs.setdefault(run['run'], {})[int(run['seed'])] = run
        self.contrasts = {c.key: c for c in COMPUTE_MATCHED + LIKE_FOR_LIKE}
        for _, items in PAPER_CLAIMS:
            for item in items:
                if isinstance(item, Contrast):
                    self.contrasts[item.key] = item
        self.rows = self._test_everything()

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
            rows.append(np.mean([decode_predictions(d) == self.labels for d in draws], axis=0))
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

    def sides(self, contrast: Contrast, fraction: str) -> Tuple[str, str]:
        return tuple(r.format(budget=self.budgets[fraction]) for r in (contrast.a[0], contrast.b[0]))

    def compare(self, contrast: Contrast, fraction: str) -> Optional[PairedComparison]:
        ra, rb = self.sides(contrast, fraction)
        seeds = self.seeds(ra, rb)
        a = self.correct(ra, contrast.a[1], fraction, seeds)
        b = self.correct(rb, contrast.b[1], fraction, seeds)
        if a is None or b is None:
            return None
        return paired_comparison(a, b, num_bootstrap=self.num_bootstrap)

    def _test_everything(self) -> Dict[Tuple[str, str], Dict]:
        """Every (contrast, budget) with data: its comparison, and its corrected p:
        Holm within the paper's claims (one family), Benjamini-Hochberg q for the rest."""
        claim_keys = {i if isinstance(i, str) else i.key for _, items in PAPER_CLAIMS for i in items}
        rows = {}
        for contrast in self.contrasts.values():
            for fraction in contrast.fractions:
                if fraction not in self.budgets:
                    continue
                if any(r not in self.setup['runs'] for r in self.sides(contrast, fraction)):
                    continue  # a run this replication does not train (--runs)
                comp = self.compare(contrast, fraction)
                if comp is not None:
                    rows[(contrast.key, fraction)] = dict(comp=comp, claim=contrast.key in claim_keys)
        for family, correct in ((True, holm), (False, benjamini_hochberg)):
            keys = [k for k, r in rows.items() if r['claim'] == family]
            if keys:
                for key, adjusted in zip(keys, correct([rows[k]['comp'].p for k in keys])):
                    rows[key]['adjusted'] = float(adjusted)
        return rows

    def family_size(self) -> int:
        return sum(r['claim'] for r in self.rows.values())

    # ------------------------------------------------------------ tables
    def fraction_text(self, fraction: str) -> str:
        return f'{self.budgets[fraction]} ({fraction})'

    def cell(self, interval) -> str:
        if interval is None:
            return 'pending'
        if interval.half_width is None:
            return f'{interval.mean:.1f}'
        return f'{interval.mean:.1f} ± {interval.half_width:.1f}'

    CONTRAST_HEADERS = ('contrast', 'budget', 'A', 'B', 'Δ (A − B)', '95% CI, seeds × videos bootstrap',
                        'p', 'corrected p', 'MDD', '95% t-CI over seeds', 'verdict')

    def contrast_rows(self, contrasts: Sequence[Contrast]) -> List[str]:
        rows = []
        for contrast in contrasts:
            for fraction in contrast.fractions:
                if fraction not in self.budgets:
                    continue
                ra, rb = self.sides(contrast, fraction)
                if ra not in self.setup['runs'] or rb not in self.setup['runs']:
                    continue  # a run this replication does not train (--runs)
                head = [contrast.text, self.fraction_text(fraction),
                        f'{self.label(ra)}, {dict(METHODS)[contrast.a[1]]}',
                        f'{self.label(rb)}, {dict(METHODS)[contrast.b[1]]}']
                row = self.rows.get((contrast.key, fraction))
                if row is None:
                    rows.append(head + ['pending'] + [''] * 6)
                    continue
                comp, si = row['comp'], row['comp'].seed_interval
                corrected = (f"{_p(row['adjusted'])} (Holm)" if row['claim']
                             else f"q {_p(row['adjusted'])} (BH)")
                rows.append(head + [
                    f'**{comp.delta:+.1f}** ({comp.seeds} seeds)', f'[{comp.low:+.1f}, {comp.high:+.1f}]',
                    _p(comp.p), corrected, f'{minimal_detectable_difference(comp.se, ALPHA):.1f}',
                    '—' if si.low is None else f'[{si.low:+.1f}, {si.high:+.1f}]',
                    verdict(comp, row['adjusted'], contrast.sign, ALPHA) if row['claim'] else '—'])
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
                grids = [' '.join(self.runs[run][s]['cells'][f'{fraction}:{m}']['grid'] for s in seeds)
                         for m in ('grid', 'to')]
                head = [self.label(run), ' '.join(map(str, seeds))] if i == 0 else ['', '']
                rows.append(head + [self.fraction_text(fraction)] + cells + grids)
        headers = (['run', 'seeds', 'budget'] + [h for _, h in METHODS]
                   + ['grid-reduction grids (per seed)', 'TO grids (per seed)'])
        return markdown_table(headers, rows).split('\n')

    def compute_table(self) -> List[str]:
        rows = []
        for run, info in self.setup['runs'].items():
            seeds = self.seeds(run)
            if not seeds:
                continue
            comp = [self.runs[run][s]['compute'] for s in seeds]
            what = ('Flux sampling' if info['flexible'] else 'fixed grid') + \
                (', align' if info['align'] and len(info['train_budgets']) > 1 else '') + \
                (f", {info['pretrain']}-pretrained" if not info['vit'] else '')
            rows.append([info['label'], what, '/'.join(map(str, info['train_budgets'])),
                         '/'.join(map(str, sorted({c['epochs'] for c in comp}))),
                         '/'.join(map(str, sorted({c['steps'] for c in comp}))),
                         f"{np.mean([c['token_passes'] for c in comp]) / 1e6:.2f} M",
                         f"{np.mean([c['train_seconds'] for c in comp]) / 60:.1f}",
                         f"{np.mean([c['eval_seconds'] for c in comp]) / 60:.1f}"])
        headers = ['run', 'training', 'train budgets', 'epochs', 'steps', 'token-passes (≤, mean)',
                   'train (min, mean)', 'evaluate (min, mean)']
        return markdown_table(headers, rows).split('\n')

    def curve_table(self) -> List[str]:
        """Validation top-1 (%) per validated epoch, mean over seeds: did it converge?"""
        curves = {}
        for key, rec in sorted((self.state.get('pretrained') or {}).items()):
            curves.setdefault(f"pretraining, {rec['arm']}", []).append(rec.get('val_curve', []))
        for run in self.setup['runs']:
            for seed in self.seeds(run):
                curves.setdefault(self.label(run), []).append(self.runs[run][seed].get('val_curve', []))
        epochs = sorted({e for cs in curves.values() for c in cs for e, _ in c})
        rows = []
        for name, cs in curves.items():
            means = []
            for epoch in epochs:
                values = [v for c in cs for e, v in c if e == epoch]
                means.append(f'{100 * np.mean(values):.1f}' if values else '')
            rows.append([name, len(cs)] + means)
        return markdown_table(['run', 'seeds'] + [f'ep {e}' for e in epochs], rows).split('\n')

    def kept_check(self) -> str:
        """Every selection cell keeps exactly its budget (grid reduction: its grid's tokens)."""
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
        """Which trainings did not learn: full-grid top-1 within ``margin`` points of chance."""
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
                'kept in every number below.')

    def resolution(self) -> str:
        """What size of effect this design could find (median over the tested rows)."""
        ses = [r['comp'].se for r in self.rows.values()]
        if not ses:
            return ''
        m = max(1, self.family_size())
        se = float(np.median(ses))
        return (f'Resolution: the median standard error of a contrast (seeds × videos bootstrap) is '
                f'{se:.1f} points; the minimal detectable difference (two-sided, 80% power) is '
                f'{minimal_detectable_difference(se, ALPHA):.1f} points at α = {ALPHA} and '
                f'{minimal_detectable_difference(se, ALPHA / m):.1f} points at Holm\'s strictest '
                f'level α/{m} (the paper\'s claims: {m} tests). A claim whose effect is smaller '
                'cannot be resolved by this replication either way.')

    # ------------------------------------------------------------ output
    def markdown(self) -> str:
        s, st = self.setup, self.state
        total = len(s['runs']) * len(s['seeds'])
        done = len(st['runs'])
        state = ('quick run' if s['quick'] else 'full run') + \
            ('' if done >= total else f', in progress: {done} of {total} runs')
        n = len(self.labels)
        lines = [f'# Replication results ({state})', '',
                 f"{len(s['runs'])} trainings × seeds {', '.join(map(str, s['seeds']))}; "
                 f"{s['num_classes']} classes (chance {100 / s['num_classes']:.1f}%), {n} test videos. "
                 f"Every run fine-tunes its seed's pretrained backbone for {s['epochs']} epochs "
                 f"(compute-matched arms: as many token-passes as Flux-Multi), the same data, batch, "
                 f"optimizer and schedule; every seed re-draws the initialisation and the data order. "
                 f"CPU: {st.get('cpu', 'not recorded')}. Wall time {st.get('seconds', 0) / 60:.1f} min.", '',
                 f"Budgets: {', '.join(self.fraction_text(f) for f in self.fractions)} tokens of the "
                 f"{s['base_grid']} grid. Kept tokens, read from the model: {self.kept_check()}. "
                 f"TO chooses its grid (frames {s['to_frames']} × sides {s['to_sides']}) on the val "
                 'split; grid reduction chooses, also on val, the best of the smaller grids (fewer '
                 'frames and a smaller side) that use more than half the budget; both report on '
                 f"test; random is the mean of {s['draws']} draws.", '',
                 'Statistics: Δ is the mean over seeds and videos; its 95% interval and p come from '
                 'a bootstrap that resamples seeds and videos independently (both sources of chance '
                 f"in one test). The paper's claims are one family declared in advance "
                 f'({self.family_size()} tests): their verdicts use Holm-corrected p (*supported* or '
                 f'*contradicted* when corrected p < {ALPHA}, on the side of Δ; else *not '
                 'resolvable*). Every other contrast shows a Benjamini-Hochberg q-value and no '
                 'verdict. MDD: the minimal detectable difference (80% power, α = 0.05) of that '
                 'row. The t-interval over seeds is shown for reference.', '',
                 self.resolution(), '', self.learning_check(), '',
                 '## Compute-matched: same token-passes, different training', '']
        lines += self.contrast_rows(COMPUTE_MATCHED)
        lines += ['', "## The paper's claims, one by one (Holm-corrected verdicts)", '']
        for text, items in PAPER_CLAIMS:
            contrasts = [self.contrasts[i] if isinstance(i, str) else i for i in items]
            table = self.contrast_rows(contrasts)
            lines += [f'### {text}', ''] + (table if len(table) > 2 else
                                             ['Not tested: its runs are not part of this replication.']) + ['']
        lines += ['## Other contrasts (Benjamini-Hochberg q-values)', ''] + self.contrast_rows(LIKE_FOR_LIKE)
        lines += ['', '## Convergence: validation top-1 (%) per epoch, mean over seeds', '']
        lines += self.curve_table()
        lines += ['', '## Top-1 (%) of every run (mean ± 95% t-interval over seeds)', ''] + self.results_table()
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
