"""mmflux: deployment-efficient video transformers for MMAction2.

Importing this package (``custom_imports = dict(imports=['mmflux'])`` in a config)
registers every mmflux component into MMAction2's registries and applies the two
process-wide workarounds of :mod:`mmflux.compat` (the DRN placeholder where the
mmaction2 wheel lacks it, safe loading of local checkpoints); nothing else in the
host changes.
"""
from . import compat

compat.apply_process_wide()

import mmaction.datasets  # noqa: E402,F401  (registers MMAction2's components)
import mmaction.models  # noqa: E402,F401

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'compat', 'datasets', 'engine', 'evaluation', 'models']
