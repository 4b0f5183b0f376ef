"""Adapter of rule perturbation_curves: MIF/LIF curves and fidelity of one attribution store."""

from saliencybench.evaluations.curves.compute import compute
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    compute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        snakemake.input.maps,
        **snakemake.params.settings,
        # a gate, not a setting: from the config, so that changing it reruns no job
        chance_margin=snakemake.config["chance_margin"],
        output=snakemake.output.store,
    )
