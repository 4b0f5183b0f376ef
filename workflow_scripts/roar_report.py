"""Adapter of rule roar_report: the ROAR/KAR table (CSV) and figure (PNG, PDF)."""

from saliencybench.evaluations.roar import read_summary
from saliencybench.logs import job_log
from saliencybench.report import roar_figure, roar_table, write_csv

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = read_summary(snakemake.input.summary)
    write_csv(roar_table(summary), snakemake.output.table)
    w = snakemake.wildcards
    title = f"{w.dataset} / {w.model} / {w.recipe} / seed {w.seed}: retrained accuracy"
    roar_figure(summary, [snakemake.output.png, snakemake.output.pdf], title=title)
