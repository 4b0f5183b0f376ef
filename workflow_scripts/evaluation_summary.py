"""Adapter of rule evaluation_summary: every model's summary of one evaluation, combined."""

from saliencybench import store
from saliencybench.logs import job_log
from saliencybench.summaries import build_summary

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    combined = build_summary(**snakemake.params.settings)
    store.write_netcdf(combined, snakemake.output.summary)
