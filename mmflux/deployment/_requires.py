"""Optional imports of the deployment runtimes, with the install command in the error."""
import importlib

INSTALL_HINT = ("install the deployment extra: pip install -r requirements/deploy.txt "
                "(or pip install -e '.[deploy]'; tools/setup_env.sh does it)")


def require(module: str, purpose: str):
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f'{purpose} needs the Python package {module!r} ({err}); '
                          f'{INSTALL_HINT}.') from err
