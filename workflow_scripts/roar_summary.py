"""Adapter of rule roar_summary: every retraining result of one model as one NetCDF file."""

from saliencybench.evaluations.roar import summarize
from saliencybench.logs import job_log
from saliencybench.store import write_netcdf

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    baselines = dict(zip(snakemake.params.seeds, snakemake.input.baselines, strict=True))
    summary = summarize(snakemake.input.results, baselines, attrs=snakemake.params.attrs)
    write_netcdf(summary, snakemake.output.summary)
