"""Adapter of rule randomization_report: the randomization table and figures."""

from saliencybench.evaluations.randomization import read_summary
from saliencybench.logs import job_log
from saliencybench.report import (
    randomization_examples_figure,
    randomization_layers_figure,
    randomization_sensitivity_figure,
    randomization_table,
    write_csv,
)

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = read_summary(snakemake.input.summary)
    output = snakemake.output
    names = snakemake.wildcards
    title = f"{names.dataset} / {names.model} / {names.recipe} / seed {names.seed}"
    write_csv(randomization_table(summary), output.table)
    randomization_layers_figure(summary, [output.layers_png, output.layers_pdf], title=title)
    randomization_sensitivity_figure(
        summary, [output.sensitivity_png, output.sensitivity_pdf], title=title
    )
    randomization_examples_figure(summary, [output.examples_png, output.examples_pdf], title=title)
