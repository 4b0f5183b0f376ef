"""Adapter of rule hermitry_summary: H per source and class of one model (NetCDF)."""

from saliencybench.evaluations.hermitry.summary import summarize
from saliencybench.logs import job_log
from saliencybench.store import write_netcdf

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = summarize(
        snakemake.input.reference,
        list(snakemake.input.methods),
        snakemake.input.evaluations,
        **snakemake.params.settings,
    )
    write_netcdf(summary, snakemake.output.summary)
