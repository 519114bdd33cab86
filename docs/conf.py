"""Sphinx configuration for the indiseek documentation."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

project = "indiseek"
author = "indiseek developers"
copyright = "2026, indiseek developers"
release = "0.4.0.dev0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
templates_path = ["_templates"]
autodoc_typehints = "none"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
myst_enable_extensions = ["dollarmath", "colon_fence"]
# Notebooks are executed by the test suite (tests/test_tutorials.py); the site renders them as
# committed, so a docs build does not train every model a second time.
nb_execution_mode = "off"
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "generated/*.ipynb"]
html_theme = "sphinx_book_theme"
html_title = "indiseek"
suppress_warnings = ["mystnb.unknown_mime_type"]
nitpicky = False
