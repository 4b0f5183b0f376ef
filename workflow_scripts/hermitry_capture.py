"""Adapter of rule hermitry_capture: the inputs one method sends to the model, measured."""

from saliencybench.evaluations.hermitry.compute import capture
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    capture(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        snakemake.input.reference,
        **snakemake.params.settings,
        # a gate, not a setting: from the config, so that changing it reruns no job
        chance_margin=snakemake.config["chance_margin"],
        output=snakemake.output.store,
    )
