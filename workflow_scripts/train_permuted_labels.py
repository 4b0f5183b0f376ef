"""Adapter of rule train_permuted_labels: the model of the data randomization test."""

from saliencybench.evaluations.randomization.compute import train_permuted_labels
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    train_permuted_labels(
        snakemake.input.data,
        **snakemake.params.settings,
        checkpoint=snakemake.output.checkpoint,
        sidecar_path=snakemake.output.sidecar,
    )
