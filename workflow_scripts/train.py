"""Adapter of rule train: a dataset store to a checkpoint and its JSON sidecar."""

from saliencybench.logs import job_log
from saliencybench.pipeline import train

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    train(
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
