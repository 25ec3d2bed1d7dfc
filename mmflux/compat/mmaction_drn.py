"""A placeholder for the DRN localizer missing from the mmaction2 1.2.0 wheel.

Upstream: the mmaction2 1.2.0 wheel on PyPI lacks ``mmaction/models/localizers/drn``
while ``mmaction/models/localizers/__init__.py`` imports it, so ``import
mmaction.models`` fails with ``No module named 'mmaction.models.localizers.drn'``
(open-mmlab/mmaction2 issue 2714; source installs are not affected).

Fix, process-wide but only where the import would fail: a placeholder module whose
``DRN`` raises a clear ImportError when built. Where the real module exists
(a source install, a fixed wheel), nothing is registered.
"""
import importlib.util
import os.path as osp
import sys
import types

MODULE = 'mmaction.models.localizers.drn'


def _drn_is_missing() -> bool:
    """Looks at mmaction's files, without importing mmaction (its import is what fails)."""
    if MODULE in sys.modules:
        return False
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:  # not installed: not ours to fix
        return False
    return not any(osp.exists(osp.join(root, 'models', 'localizers', 'drn'))
                   for root in spec.submodule_search_locations)


class DRN:
    """Stands in for MMAction2's DRN localizer, absent from the 1.2.0 wheel."""

    def __init__(self, *args, **kwargs):
        raise ImportError('DRN is not shipped in the mmaction2 1.2.0 wheel (open-mmlab/mmaction2 '
                          'issue 2714); install mmaction2 from source to use it.')


def register_missing_drn() -> bool:
    """Register the placeholder if the installed mmaction2 lacks DRN; True if it did."""
    if not _drn_is_missing():
        return False
    package = types.ModuleType(MODULE)
    package.__path__ = []  # a package, so that ``.drn.drn`` resolves
    module = types.ModuleType(MODULE + '.drn')
    module.DRN = DRN
    package.drn = module
    sys.modules[MODULE] = package
    sys.modules[MODULE + '.drn'] = module
    return True
