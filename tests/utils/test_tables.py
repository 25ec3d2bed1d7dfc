"""mmflux.utils.tables: the Markdown and plain-text tables every tool writes."""
from mmflux.utils.tables import markdown_table, text_table


def test_markdown_table():
    out = markdown_table(['model', 'GFLOP/s'], [['S', 306.9], ('B', '346.0')])
    assert out == ('| model | GFLOP/s |\n'
                   '|---|---|\n'
                   '| S | 306.9 |\n'
                   '| B | 346.0 |')


def test_markdown_table_escapes_pipes_and_takes_a_generator():
    out = markdown_table(('a', 'b'), ([i, f'x|{i}'] for i in range(2)))
    assert out.splitlines()[2:] == [r'| 0 | x\|0 |', r'| 1 | x\|1 |']


def test_markdown_table_without_rows():
    assert markdown_table(['a'], []) == '| a |\n|---|'


def test_text_table_aligns_names_left_and_numbers_right():
    out = text_table(['part', 'GMACs', 'note'], [['blocks', '1.5000', ''],
                                                 ['total', 12.25, 'all']])
    assert out.splitlines() == [
        'part     GMACs  note',
        '------  ------  ----',
        'blocks  1.5000      ',
        'total    12.25   all',
    ]


def test_text_table_left_columns():
    out = text_table(['model', 'impl', 's'], [['S', 'fluxvit', '1.083'], ['B', 'vit', '10.5']],
                     left=2)
    assert out.splitlines() == [
        'model  impl         s',
        '-----  -------  -----',
        'S      fluxvit  1.083',
        'B      vit       10.5',
    ]
