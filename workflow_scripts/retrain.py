"""Adapter of rule retrain: fresh models trained on one masked dataset, one per seed."""

from saliencybench.evaluations.roar import retrain
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    retrain(
        snakemake.input.data,
        model_name=snakemake.wildcards.model,
        model_entry=snakemake.params.model,
        recipe_name=snakemake.wildcards.recipe,
        recipe_entry=snakemake.params.recipe,
        seeds=snakemake.params.seeds,
        device=snakemake.params.device,
        output=snakemake.output.result,
    )
