"""Adapter of rule train: a dataset store to a checkpoint and its JSON sidecar."""

from saliencybench.logs import job_log
from saliencybench.pipeline import train

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    train(
        snakemake.input.data,
        **snakemake.params.settings,
        checkpoint=snakemake.output.checkpoint,
        sidecar_path=snakemake.output.sidecar,
    )
