"""Imports run downward only: utils is the leaf, models and datasets are siblings, evaluation
does not reach deployment. Read from the source (imports inside functions included), so a
lazy import cannot hide a dependency."""
import ast
import os.path as osp
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'mmflux'
#: layer -> the mmflux layers it must never import
FORBIDDEN = {
    'utils': {'models', 'datasets', 'evaluation', 'engine', 'deployment', 'apis'},
    'models': {'datasets', 'evaluation', 'engine', 'deployment', 'apis'},
    'datasets': {'models', 'evaluation', 'engine', 'deployment', 'apis'},
    'evaluation': {'engine', 'deployment', 'apis'},
}


def imported_layers(source: str, module: str):
    """(mmflux layer, line) of every import in the ``source`` of ``module`` (dotted),
    relative ones resolved."""
    package = module.split('.')[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            stem = '.'.join(base + ([node.module] if node.module else []))
            names = [stem] + ([f'{stem}.{a.name}' for a in node.names] if stem == 'mmflux' else [])
        else:
            continue
        for name in names:
            parts = name.split('.')
            if parts[0] == 'mmflux' and len(parts) > 1:
                yield parts[1], node.lineno


def module_name(path: Path) -> str:
    return '.'.join(path.relative_to(ROOT).with_suffix('').parts)


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_layer_imports_run_downward(layer):
    wrong = [f'{osp.relpath(path, ROOT)}:{line} imports mmflux.{target}'
             for path in sorted((PACKAGE / layer).rglob('*.py'))
             for target, line in imported_layers(path.read_text(), module_name(path))
             if target in FORBIDDEN[layer]]
    assert wrong == []


def test_the_check_sees_lazy_and_relative_imports():
    source = 'import mmflux.utils\ndef f():\n    from ..evaluation import grid_config\n'
    assert list(imported_layers(source, 'mmflux.models.probe')) == [('utils', 1), ('evaluation', 3)]
