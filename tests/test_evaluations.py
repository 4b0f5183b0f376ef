"""The registry of evaluations and the cut of the package by evaluation.

Every evaluation has its folder with a torch-free spec, a model job module, a summary and a
report module; the Snakefile, the summary jobs and the page job load no torch.
"""

from __future__ import annotations

import importlib

import pytest
import yaml
from support import ROOT, fresh_python

from saliencybench import planning
from saliencybench.config import validate
from saliencybench.evaluations import EVALUATIONS, ORDER

PARTS = ("spec", "compute", "summary", "report")


def _default_config() -> dict:
    return validate(yaml.safe_load((ROOT / "config.yaml").read_text()))


@pytest.mark.parametrize("name", sorted(EVALUATIONS))
def test_every_evaluation_is_one_folder(name):
    folder = ROOT / "src" / "saliencybench" / "evaluations" / name
    assert sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__") == sorted(PARTS)
    spec = importlib.import_module(f"saliencybench.evaluations.{name}.spec")
    assert spec.EVALUATION is EVALUATIONS.get(name)
    assert spec.EVALUATION.name == name
    assert (ROOT / "rules" / f"{name}.smk").is_file()


def test_registry_order_names_every_evaluation():
    assert set(ORDER) == set(EVALUATIONS)


def test_every_evaluation_plans_the_default_experiment():
    config = _default_config()
    listed = planning.configured_evaluations(config)
    assert listed == [name for name in ORDER if name in listed]
    for name in listed:
        targets = EVALUATIONS.get(name).targets(config)
        assert targets and all(path.startswith("results/") for path in targets)
        assert planning.summary_inputs(config, name)


def test_snakefile_summaries_and_page_import_no_torch():
    """What the Snakefile imports, and every module the summary, table and page jobs
    import (including what the page imports lazily), in a fresh interpreter."""
    modules = [
        "saliencybench.planning",
        "saliencybench.paths",
        "saliencybench.config",
        "saliencybench.summaries",
        "saliencybench.html_report",
        "saliencybench.plotting",
    ] + [
        f"saliencybench.evaluations.{name}.{part}"
        for name in EVALUATIONS
        for part in ("spec", "summary", "report")
    ]
    code = (
        "import sys, importlib, yaml\n"
        f"for module in {modules!r}:\n"
        "    importlib.import_module(module)\n"
        "from saliencybench import html_report\n"
        "from saliencybench.config import validate\n"
        "config = validate(yaml.safe_load(open('config.yaml')))\n"
        "html_report.method_context(config)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'captum')))\n"
    )
    assert fresh_python(code).strip() == "[]"
