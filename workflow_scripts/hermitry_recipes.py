"""Adapter of rule hermitry_recipes: H of every source compared across training recipes."""

from saliencybench.evaluations.hermitry import read_summary
from saliencybench.logs import job_log
from saliencybench.report import hermitry_recipes_figure, hermitry_recipes_table, write_csv

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    summaries = {recipe: read_summary(path) for recipe, path in snakemake.input.items()}
    names = snakemake.wildcards
    write_csv(hermitry_recipes_table(summaries), snakemake.output.table)
    title = f"{names.dataset} / {names.model} / seed {names.seed}: hermitry by recipe"
    hermitry_recipes_figure(summaries, [snakemake.output.png, snakemake.output.pdf], title=title)
