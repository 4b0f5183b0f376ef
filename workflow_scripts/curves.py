"""Adapter of rule perturbation_curves: MIF/LIF curves and fidelity of one attribution store."""

from saliencybench.evaluations.curves import compute
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    settings = snakemake.params.curves
    compute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        snakemake.input.maps,
        split=settings["split"],
        steps=settings["steps"],
        fill_value=settings["fill"],
        batch_size=settings["batch_size"],
        max_images=settings["max_images"],
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        output=snakemake.output.store,
    )
