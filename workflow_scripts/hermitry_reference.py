"""Adapter of rule hermitry_reference: class Gaussians, thresholds and controls of one model."""

from saliencybench.evaluations.hermitry.compute import reference
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    reference(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        foreign_path=snakemake.input.get("foreign"),
        **snakemake.params.settings,
        # a gate, not a setting: from the config, so that changing it reruns no job
        chance_margin=snakemake.config["chance_margin"],
        output=snakemake.output.store,
    )
