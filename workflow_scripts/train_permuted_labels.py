"""Adapter of rule train_permuted_labels: the model of the data randomization test."""

from saliencybench.evaluations.randomization import train_permuted_labels
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    train_permuted_labels(
        snakemake.input.data,
        model_name=snakemake.wildcards.model,
        model_entry=snakemake.params.model,
        recipe_name=snakemake.wildcards.recipe,
        recipe_entry=snakemake.params.recipe,
        seed=int(snakemake.wildcards.seed),
        device=snakemake.params.device,
        checkpoint=snakemake.output.checkpoint,
        sidecar_path=snakemake.output.sidecar,
    )
