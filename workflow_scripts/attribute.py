"""Adapter of rule attribute: one method's maps for a trained model, as a Zarr store."""

from saliencybench.logs import job_log
from saliencybench.pipeline import attribute

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    attribute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        method_name=snakemake.wildcards.method,
        method_entry=snakemake.params.entry,
        target_rule=snakemake.params.attribution["target"],
        splits=snakemake.params.attribution["splits"],
        batch_size=snakemake.params.attribution["batch_size"],
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        output=snakemake.output.store,
    )
