"""Adapter of rule mask: the dataset with a share of pixels removed by one method's maps."""

from saliencybench.evaluations.roar.compute import materialize
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    materialize(
        snakemake.input.data,
        snakemake.input.maps,
        **snakemake.params.settings,
        output=snakemake.output.store,
    )
