"""mobile_mote: MOTE-NAS estimates, searches and Pareto tools for mobile image classifiers."""
from pathlib import Path as _Path

__version__ = "0.1.0"

# search_spaces/ and train/ are top-level folders of the checkout that install inside this package
# (setup.py's package_dir). A checkout that is used without installing it (PYTHONPATH=<checkout>, as
# the GPU evidence run does) has them beside the package instead, so the package's path reaches there.
_here = _Path(__file__).resolve().parent
if not (_here / "search_spaces").is_dir() and (_here.parent / "search_spaces" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 (a package's own __path__)
del _Path, _here
