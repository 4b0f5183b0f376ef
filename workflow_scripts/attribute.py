"""Adapter of rule attribute: one method's maps for a trained model, as a Zarr store."""

from saliencybench.logs import job_log
from saliencybench.pipeline import attribute

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    attribute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        **snakemake.params.settings,
        # a gate, not a setting: from the config, so that changing it reruns no job
        chance_margin=snakemake.config["chance_margin"],
        output=snakemake.output.store,
    )
