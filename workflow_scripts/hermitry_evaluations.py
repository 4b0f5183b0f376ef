"""Adapter of rule hermitry_evaluations: ROAR-masked, MIF/LIF and infidelity inputs."""

from saliencybench.evaluations.hermitry.compute import evaluations
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    evaluations(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        snakemake.input.reference,
        list(snakemake.input.maps),
        **snakemake.params.settings,
        # a gate, not a setting: from the config, so that changing it reruns no job
        chance_margin=snakemake.config["chance_margin"],
        output=snakemake.output.store,
    )
