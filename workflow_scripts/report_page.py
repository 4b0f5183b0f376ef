"""Adapter of rule report: results/report.html from the combined summaries."""

from saliencybench.html_report import write_page
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    write_page(**snakemake.params.settings, output=snakemake.output.page)
