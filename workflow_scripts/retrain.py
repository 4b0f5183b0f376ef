"""Adapter of rule retrain: ROAR and KAR of one method at one fraction, every seed."""

from saliencybench.evaluations.roar import retrain_fraction
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    retrain_fraction(
        snakemake.input.data,
        snakemake.input.maps,
        modes=snakemake.params.modes,
        fraction=float(snakemake.wildcards.frac),
        fill=snakemake.params.fill,
        blur_sigma=snakemake.params.blur_sigma,
        mask_seed=snakemake.params.mask_seed,
        outputs=snakemake.output.results,
        model_name=snakemake.wildcards.model,
        model_entry=snakemake.params.model,
        recipe_name=snakemake.wildcards.recipe,
        recipe_entry=snakemake.params.recipe,
        seeds=snakemake.params.seeds,
        device=snakemake.params.device,
    )
