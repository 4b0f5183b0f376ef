"""Adapter of rule roar_report: the ROAR/KAR table (CSV) and figure (PNG, PDF)."""

from saliencybench.evaluations.roar.report import write_report
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    write_report(
        snakemake.input.summary,
        **snakemake.params.settings,
        table=snakemake.output.table,
        figures=[snakemake.output.png, snakemake.output.pdf],
    )
