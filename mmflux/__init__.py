"""mmflux: deployment-efficient video transformers for MMAction2.

Importing this package (``custom_imports = dict(imports=['mmflux'])`` in a config)
applies the upstream workarounds in :mod:`mmflux.compat` and registers every
mmflux component into MMAction2's registries.
"""
from . import compat

compat.apply_all()

import mmaction.datasets  # noqa: E402,F401  (registers MMAction2's components)
import mmaction.models  # noqa: E402,F401

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'compat', 'datasets', 'engine', 'evaluation', 'models']
