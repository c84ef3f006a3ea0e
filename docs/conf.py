"""Sphinx configuration of the skdeepfm documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (from the
repository root, with ``pip install -e ".[docs]"``).
"""

import os
import re
from pathlib import Path

import torch

import skdeepfm

HERE = Path(__file__).parent

project = "skdeepfm"
author = "the skdeepfm developers"
copyright = "the skdeepfm developers"
version = release = skdeepfm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_public_api.rst", "examples/README.txt", "auto_examples/*.ipynb"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
# benchmarks/RESULTS.md is included as written, starting at level-2 headings.
suppress_warnings = ["myst.header"]

# -- API reference -----------------------------------------------------------

# The public list is in an included file, which autosummary does not scan by itself.
autosummary_generate = ["api.rst", "_public_api.rst"]
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
templates_path = ["_templates"]


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document the methods skdeepfm defines, not those inherited from scikit-learn or torch."""
    if what != "class":
        return None
    if name.startswith("set_") and name.endswith("_request"):
        return True  # metadata-routing setters that scikit-learn generates
    if callable(obj) and not (getattr(obj, "__module__", None) or "").startswith("skdeepfm"):
        return True
    return None


_SHAPE_WITH_ATTRIBUTE = re.compile(r"\(([A-Za-z]\w*_),\)")


def _quote_attribute_shapes(app, what, name, obj, options, lines):
    """Write ``shape (n_features_in_,)`` as literal text: reST reads ``name_`` as a link target."""
    lines[:] = [_SHAPE_WITH_ATTRIBUTE.sub(r"(``\1``,)", line) for line in lines]


def setup(app):
    """Connect the hooks above."""
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # Before numpydoc (priority 500) turns the docstring into reST.
    app.connect("autodoc-process-docstring", _quote_attribute_shapes, priority=100)


def _write_public_api():
    """List ``skdeepfm.__all__`` for the API page, so that it follows the package."""
    public = [name for name in skdeepfm.__all__ if not name.startswith("_")]
    objects = [name for name in public if callable(getattr(skdeepfm, name))]
    constants = [name for name in public if name not in objects]
    lines = [".. currentmodule:: skdeepfm", "", ".. autosummary::", "   :toctree: generated", ""]
    lines += [f"   {name}" for name in objects]
    lines += ["", "Constants", "---------", ""]
    lines += [".. list-table::", "   :header-rows: 1", "", "   * - name", "     - value"]
    for name in constants:
        lines += [f"   * - ``skdeepfm.{name}``", f"     - ``{getattr(skdeepfm, name)!r}``"]
    (HERE / "_public_api.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


_write_public_api()

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
# The build must not need the network: intersphinx inventories are fetched
# only when SKDEEPFM_DOCS_INTERSPHINX=1.
if os.environ.get("SKDEEPFM_DOCS_INTERSPHINX") != "1":
    intersphinx_mapping = {}

# -- Gallery -----------------------------------------------------------------

# The examples fit small models: on a shared CPU, one torch thread is faster
# than several competing ones.
torch.set_num_threads(1)

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
}

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skdeepfm {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
