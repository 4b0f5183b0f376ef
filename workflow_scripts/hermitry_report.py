"""Adapter of rule hermitry_report: Table 4, the thresholds and Figure 3 of one model."""

from saliencybench.evaluations.hermitry.report import write_report
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    output = snakemake.output
    write_report(
        snakemake.input.summary,
        **snakemake.params.settings,
        table=output.table,
        thresholds=output.thresholds,
        figures=[output.png, output.pdf],
    )
