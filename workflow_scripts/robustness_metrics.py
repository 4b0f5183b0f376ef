"""Adapter of rule robustness_metrics: infidelity and max-sensitivity of one method."""

from saliencybench.evaluations.robustness.compute import compute
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
        targets_path=snakemake.input.get("maps"),
        output=snakemake.output.store,
    )
