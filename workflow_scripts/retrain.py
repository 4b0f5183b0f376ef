"""Adapter of rule retrain: ROAR and KAR of one method at one fraction, every seed."""

from saliencybench.evaluations.roar.compute import retrain_fraction
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    retrain_fraction(
        snakemake.input.data,
        snakemake.input.maps,
        **snakemake.params.settings,
        outputs=snakemake.output.results,
    )
