"""Adapter of rule fidelity_summary: fidelity A and mean curves of one model seed (NetCDF)."""

from saliencybench.evaluations.curves.summary import summarize
from saliencybench.logs import job_log
from saliencybench.store import write_netcdf

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    write_netcdf(summarize(**snakemake.params.settings), snakemake.output.summary)
