"""Adapter of rule hermitry_recipes: H of every source compared across training recipes."""

from saliencybench.evaluations.hermitry.report import write_recipes
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    output = snakemake.output
    write_recipes(
        dict(snakemake.input.items()),
        **snakemake.params.settings,
        table=output.table,
        figures=[output.png, output.pdf],
    )
