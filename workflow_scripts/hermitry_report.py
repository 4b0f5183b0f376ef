"""Adapter of rule hermitry_report: Table 4, the thresholds and Figure 3 of one model."""

from saliencybench.evaluations.hermitry import read_summary
from saliencybench.logs import job_log
from saliencybench.report import (
    hermitry_figure,
    hermitry_table,
    hermitry_thresholds_table,
    write_csv,
)

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = read_summary(snakemake.input.summary)
    output = snakemake.output
    names = snakemake.wildcards
    write_csv(hermitry_table(summary, model=names.model), output.table)
    write_csv(hermitry_thresholds_table(summary), output.thresholds)
    title = f"{names.dataset} / {names.model} / {names.recipe} / seed {names.seed}"
    hermitry_figure(summary, [output.png, output.pdf], title=title)
