"""Adapter of rule fidelity_report: the fidelity table and the curve figures."""

from saliencybench.evaluations.curves import read_fidelity
from saliencybench.logs import job_log
from saliencybench.report import curves_figure, fidelity_table, lif_example_figure, write_csv

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summary = read_fidelity(snakemake.input.summary)
    output = snakemake.output
    title = f"{snakemake.wildcards.dataset} / {snakemake.wildcards.model}"
    write_csv(fidelity_table(summary), output.table)
    curves_figure(summary, [output.curves_png, output.curves_pdf], title=title)
    lif_example_figure(summary, [output.example_png, output.example_pdf], title=title)
