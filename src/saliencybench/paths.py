"""Result paths, one function per artifact; defaults are the Snakemake wildcard patterns.

Rules call these without arguments to get patterns; tests and later stages call them with
values. Nothing here imports torch, so the Snakefile stays quick to parse.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"
BENCHMARKS = "benchmarks/rules"


def data_store(dataset: str = "{dataset}") -> str:
    return f"{RESULTS}/data/{dataset}.zarr"


def _model_stem(dataset: str, model: str, recipe: str, seed: str | int) -> str:
    return f"{dataset}/{model}/{recipe}/seed{seed}"


def checkpoint(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/models/{_model_stem(dataset, model, recipe, seed)}.pt"


def checkpoint_sidecar(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/models/{_model_stem(dataset, model, recipe, seed)}.json"


def attribution_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    return f"{RESULTS}/attributions/{_model_stem(dataset, model, recipe, seed)}/{method}.zarr"


def log_file(rule: str, stem: str) -> str:
    """``logs/{rule}/{stem}.log``; ``stem`` uses the same wildcards as the rule's output."""
    return f"{LOGS}/{rule}/{stem}.log"


def benchmark_file(rule: str, stem: str) -> str:
    return f"{BENCHMARKS}/{rule}/{stem}.tsv"
