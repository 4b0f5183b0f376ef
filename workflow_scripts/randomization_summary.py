"""Adapter of rule randomization_summary: the extended IPR test of one model (NetCDF)."""

from saliencybench.evaluations.randomization.summary import summarize
from saliencybench.logs import job_log
from saliencybench.store import write_netcdf

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = summarize(list(snakemake.input.stores), **snakemake.params.settings)
    write_netcdf(summary, snakemake.output.summary)
