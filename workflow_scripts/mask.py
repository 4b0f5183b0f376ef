"""Adapter of rule mask: the dataset with a share of pixels removed by one method's maps."""

from saliencybench.evaluations.roar import materialize
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    materialize(
        snakemake.input.data,
        snakemake.input.maps,
        mode=snakemake.wildcards.mode,
        fraction=float(snakemake.wildcards.frac),
        fill=snakemake.params.fill,
        blur_sigma=snakemake.params.blur_sigma,
        seed=snakemake.params.seed,
        output=snakemake.output.store,
    )
