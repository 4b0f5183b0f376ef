"""Adapter of rule roar_unretrained: the original model on the masked test images."""

from saliencybench.evaluations.roar.compute import unretrained
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    unretrained(
        snakemake.input.data,
        snakemake.input.maps,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        **snakemake.params.settings,
        output=snakemake.output.result,
    )
