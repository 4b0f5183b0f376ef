"""Adapter of rule hermitry_reference: class Gaussians, thresholds and controls of one model."""

from saliencybench.evaluations.hermitry import reference
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    params = snakemake.params
    reference(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        foreign_path=snakemake.input.get("foreign"),
        split=params.split,
        classes=params.classes,
        max_per_class=params.max_per_class,
        covariance=params.covariance,
        percentile=params.percentile,
        noise_images=params.noise_images,
        batch_size=params.batch_size,
        seed=params.seed,
        device=params.device,
        output=snakemake.output.store,
    )
