"""Adapter of rule fidelity_report: the fidelity table and the curve figures."""

from saliencybench.evaluations.curves.report import write_report
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    output = snakemake.output
    write_report(
        snakemake.input.summary,
        **snakemake.params.settings,
        table=output.table,
        curves=[output.curves_png, output.curves_pdf],
        lif_example=[output.example_png, output.example_pdf],
    )
