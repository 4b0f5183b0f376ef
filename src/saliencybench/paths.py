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


def _roar_stem(dataset, model, recipe, seed, method, mode, frac) -> str:
    return f"{_model_stem(dataset, model, recipe, seed)}/{method}/{mode}/t{frac}"


def masked_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
    mode: str = "{mode}",
    frac: str = "{frac}",
) -> str:
    """The dataset store with ``frac`` of its pixels removed by ``method`` (ROAR or KAR)."""
    stem = _roar_stem(dataset, model, recipe, seed, method, mode, frac)
    return f"{RESULTS}/masked/{stem}.zarr"


def roar_result(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
    mode: str = "{mode}",
    frac: str = "{frac}",
) -> str:
    """Accuracies of the models retrained on one masked store, all retraining seeds."""
    stem = _roar_stem(dataset, model, recipe, seed, method, mode, frac)
    return f"{RESULTS}/roar/{stem}.json"


def roar_summary(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/roar/{_model_stem(dataset, model, recipe, seed)}/accuracy.nc"


def _report_stem(dataset, model, recipe, seed) -> str:
    return f"{dataset}_{model}_{recipe}_seed{seed}"


def roar_table(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/tables/roar_{_report_stem(dataset, model, recipe, seed)}.csv"


def roar_figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
) -> str:
    return f"{RESULTS}/figures/roar_{_report_stem(dataset, model, recipe, seed)}.{suffix}"


def curves_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """MIF/LIF curves and per-image fidelity of one attribution store."""
    return f"{RESULTS}/curves/{_model_stem(dataset, model, recipe, seed)}/{method}.zarr"


def fidelity_summary(dataset: str = "{dataset}", model: str = "{model}", seed="{seed}") -> str:
    """Fidelity A and mean curves of every recipe and estimator of one model seed."""
    return f"{RESULTS}/curves/{dataset}/{model}/fidelity_seed{seed}.nc"


def fidelity_table(dataset: str = "{dataset}", model: str = "{model}", seed="{seed}") -> str:
    return f"{RESULTS}/tables/fidelity_{dataset}_{model}_seed{seed}.csv"


def curves_figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    seed="{seed}",
    suffix: str = "png",
    kind: str = "curves",
) -> str:
    """``kind`` ``curves``: MIF/LIF per estimator; ``lif_example``: one image's LIF curve."""
    return f"{RESULTS}/figures/{kind}_{dataset}_{model}_seed{seed}.{suffix}"


def fraction_label(fraction: float) -> str:
    """The text of a fraction in paths and wildcards: ``0.1``, ``0.25``, ``0.9``."""
    return f"{float(fraction):g}"


def log_file(rule: str, stem: str) -> str:
    """``logs/{rule}/{stem}.log``; ``stem`` uses the same wildcards as the rule's output."""
    return f"{LOGS}/{rule}/{stem}.log"


def benchmark_file(rule: str, stem: str) -> str:
    return f"{BENCHMARKS}/{rule}/{stem}.tsv"


# ----------------------------------------------------------------------- randomization


def permuted_checkpoint(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """The model of the data randomization test: trained on permuted labels, beside the
    original (``seed{s}-permuted-labels.pt``; the suffix keeps it out of the train rule)."""
    return f"{RESULTS}/models/{_model_stem(dataset, model, recipe, seed)}-permuted-labels.pt"


def permuted_sidecar(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/models/{_model_stem(dataset, model, recipe, seed)}-permuted-labels.json"


def randomization_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """Per-image similarities of one method under cascading, independent and data
    randomization."""
    return f"{RESULTS}/randomization/{_model_stem(dataset, model, recipe, seed)}/{method}.zarr"


def randomization_summary(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """S^I with its interval and the mean similarity curves of every method of one model."""
    return f"{RESULTS}/randomization/{_model_stem(dataset, model, recipe, seed)}/summary.nc"


def randomization_table(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/tables/randomization_{_report_stem(dataset, model, recipe, seed)}.csv"


RANDOMIZATION_FIGURES = ("layers", "sensitivity", "examples")


def randomization_figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
    kind: str = "layers",
) -> str:
    """``kind`` ``layers``: similarity per layer randomized; ``sensitivity``: S^I per method;
    ``examples``: maps of one image under cascading randomization."""
    stem = _report_stem(dataset, model, recipe, seed)
    return f"{RESULTS}/figures/randomization_{kind}_{stem}.{suffix}"


# ----------------------------------------------------------------------- robustness


def robustness_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """Per-image infidelity and max-sensitivity of one method and its smoothed variant."""
    return f"{RESULTS}/robustness/{_model_stem(dataset, model, recipe, seed)}/{method}.zarr"


def robustness_summary(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/robustness/{_model_stem(dataset, model, recipe, seed)}/summary.nc"


def robustness_table(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/tables/robustness_{_report_stem(dataset, model, recipe, seed)}.csv"


def robustness_figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
) -> str:
    """Each method beside its SmoothGrad variant: SENS_MAX and INFD per scope."""
    return f"{RESULTS}/figures/robustness_{_report_stem(dataset, model, recipe, seed)}.{suffix}"


# ----------------------------------------------------------------------- hermitry


def hermitry_reference(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """Class Gaussians of the training encodings, thresholds, validation images, controls."""
    return f"{RESULTS}/hermitry/{_model_stem(dataset, model, recipe, seed)}/reference.zarr"


def hermitry_method_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """Distances of the inputs one method sends to the model while explaining."""
    return f"{RESULTS}/hermitry/{_model_stem(dataset, model, recipe, seed)}/methods/{method}.zarr"


def hermitry_evaluations(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """Distances of the ROAR-masked, MIF/LIF and infidelity inputs."""
    return f"{RESULTS}/hermitry/{_model_stem(dataset, model, recipe, seed)}/evaluations.zarr"


def hermitry_summary(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{RESULTS}/hermitry/{_model_stem(dataset, model, recipe, seed)}/summary.nc"


def hermitry_table(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    kind: str = "hermitry",
) -> str:
    """``kind`` ``hermitry``: H per method and class (Table 4 of the hermitry paper);
    ``hermitry_thresholds``: T_c per class (its Appendix B)."""
    return f"{RESULTS}/tables/{kind}_{_report_stem(dataset, model, recipe, seed)}.csv"


def hermitry_figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
) -> str:
    """KDE of normalized distances per class and source (Figure 3 and Appendix C)."""
    return f"{RESULTS}/figures/hermitry_{_report_stem(dataset, model, recipe, seed)}.{suffix}"


def hermitry_recipes_table(
    dataset: str = "{dataset}", model: str = "{model}", seed="{seed}"
) -> str:
    """Mean H per source and level, a column per training recipe."""
    return f"{RESULTS}/tables/hermitry_recipes_{dataset}_{model}_seed{seed}.csv"


def hermitry_recipes_figure(
    dataset: str = "{dataset}", model: str = "{model}", seed="{seed}", suffix: str = "png"
) -> str:
    return f"{RESULTS}/figures/hermitry_recipes_{dataset}_{model}_seed{seed}.{suffix}"


# ----------------------------------------------------------------------- report


def evaluation_summary(evaluation: str = "{evaluation}") -> str:
    """Every model's summary of one evaluation in one tidy Dataset, with dims dataset,
    model, recipe and seed."""
    return f"{RESULTS}/summary/{evaluation}.nc"


def report_page() -> str:
    """The self-contained HTML page of every evaluation and the method scorecard."""
    return f"{RESULTS}/report.html"
