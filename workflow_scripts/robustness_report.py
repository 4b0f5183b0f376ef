"""Adapter of rule robustness_report: the table of Yeh et al. (2019) and the -SG figure."""

from saliencybench.evaluations.robustness import read_summary
from saliencybench.logs import job_log
from saliencybench.report import robustness_figure, robustness_table, write_csv

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = read_summary(snakemake.input.summary)
    write_csv(robustness_table(summary), snakemake.output.table)
    w = snakemake.wildcards
    title = f"{w.dataset} / {w.model} / {w.recipe} / seed {w.seed}: sensitivity and infidelity"
    robustness_figure(summary, [snakemake.output.png, snakemake.output.pdf], title=title)
