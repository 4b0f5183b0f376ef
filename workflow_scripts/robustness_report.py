"""Adapter of rule robustness_report: the table of Yeh et al. (2019) and the -SG figure."""

from saliencybench.evaluations.robustness.report import write_report
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    write_report(
        snakemake.input.summary,
        **snakemake.params.settings,
        table=snakemake.output.table,
        figures=[snakemake.output.png, snakemake.output.pdf],
    )
