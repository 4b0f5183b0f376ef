"""Adapter of rule randomization_report: the randomization table and figures."""

from saliencybench.evaluations.randomization.report import write_report
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    output = snakemake.output
    write_report(
        snakemake.input.summary,
        **snakemake.params.settings,
        table=output.table,
        layers=[output.layers_png, output.layers_pdf],
        sensitivity=[output.sensitivity_png, output.sensitivity_pdf],
        examples=[output.examples_png, output.examples_pdf],
    )
