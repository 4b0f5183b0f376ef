"""Adapter of rule hermitry_evaluations: ROAR-masked, MIF/LIF and infidelity inputs."""

from saliencybench.evaluations.hermitry import evaluations
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    params = snakemake.params
    evaluations(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        snakemake.input.reference,
        dict(zip(params.map_methods, snakemake.input.maps, strict=True)),
        fractions=params.fractions,
        roar_fill=params.roar_fill,
        blur_sigma=params.blur_sigma,
        steps=params.steps,
        curves_fill=params.curves_fill,
        square_side=params.square_side,
        noise_std=params.noise_std,
        baseline=params.baseline,
        infidelity_samples=params.infidelity_samples,
        batch_size=params.batch_size,
        seed=params.seed,
        device=params.device,
        output=snakemake.output.store,
    )
