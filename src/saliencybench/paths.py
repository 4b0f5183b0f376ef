"""Result paths of the backbone (data, models, attributions, the page), one function per
artifact; defaults are the Snakemake wildcard patterns. Each evaluation's own paths live in
its ``spec`` module, built from :func:`model_stem` and :func:`report_stem`.

Rules call these without arguments to get patterns; tests and later stages call them with
values. Nothing here imports torch, so the Snakefile stays quick to parse.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"
BENCHMARKS = "benchmarks/rules"


def data_store(dataset: str = "{dataset}") -> str:
    return f"{RESULTS}/data/{dataset}.zarr"


def model_stem(dataset: str, model: str, recipe: str, seed: str | int) -> str:
    return f"{dataset}/{model}/{recipe}/seed{seed}"


def report_stem(dataset, model, recipe, seed) -> str:
    """The stem of a run's tables and figures: ``{dataset}_{model}_{recipe}_seed{seed}``."""
    return f"{dataset}_{model}_{recipe}_seed{seed}"


def checkpoint(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/models/{model_stem(dataset, model, recipe, seed)}.pt"


def checkpoint_sidecar(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/models/{model_stem(dataset, model, recipe, seed)}.json"


def attribution_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    return f"{RESULTS}/attributions/{model_stem(dataset, model, recipe, seed)}/{method}.zarr"


def fraction_label(fraction: float) -> str:
    """The text of a fraction in paths and wildcards: ``0.1``, ``0.25``, ``0.9``."""
    return f"{float(fraction):g}"


def log_file(rule: str, stem: str) -> str:
    """``logs/{rule}/{stem}.log``; ``stem`` uses the same wildcards as the rule's output."""
    return f"{LOGS}/{rule}/{stem}.log"


def benchmark_file(rule: str, stem: str) -> str:
    return f"{BENCHMARKS}/{rule}/{stem}.tsv"


# ----------------------------------------------------------------------- report


def evaluation_summary(evaluation: str = "{evaluation}") -> str:
    """Every model's summary of one evaluation in one tidy Dataset, with dims dataset,
    model, recipe and seed."""
    return f"{RESULTS}/summary/{evaluation}.nc"


def reproduction_table(reference: str = "{reference}") -> str:
    """A paper's published numbers beside the run's (``saliencybench.reproduction``)."""
    return f"{RESULTS}/tables/reproduction_{reference}.csv"


def report_page() -> str:
    """The self-contained HTML page of every evaluation and the method scorecard."""
    return f"{RESULTS}/report.html"
