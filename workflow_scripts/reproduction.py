"""Adapter of rule reproduction: a paper's published numbers beside the run's, as a table."""

from saliencybench.logs import job_log
from saliencybench.reproduction import write_reproduction

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    write_reproduction(
        snakemake.input.reference,
        **snakemake.params.settings,
        output=snakemake.output.table,
    )
