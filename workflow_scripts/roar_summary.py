"""Adapter of rule roar_summary: every retraining result of one model as one NetCDF file."""

from saliencybench.evaluations.roar.summary import summarize_run
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summarize_run(
        snakemake.input.results,
        snakemake.input.baselines,
        unretrained=snakemake.input.unretrained,
        **snakemake.params.settings,
        output=snakemake.output.summary,
    )
