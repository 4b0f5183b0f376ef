"""Adapter of rule parameter_randomization: the randomization tests of one method."""

from saliencybench.evaluations.randomization.compute import compute
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    compute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        **snakemake.params.settings,
        # a gate, not a setting: from the config, so that changing it reruns no job
        chance_margin=snakemake.config["chance_margin"],
        permuted_checkpoint=snakemake.input.get("permuted_checkpoint"),
        permuted_sidecar=snakemake.input.get("permuted_sidecar"),
        output=snakemake.output.store,
    )
