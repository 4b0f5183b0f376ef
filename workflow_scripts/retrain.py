"""Adapter of rule retrain: one method's masked dataset, and a fresh model per seed on it."""

from saliencybench.evaluations.roar import masked_dataset, retrain
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    dataset = masked_dataset(
        snakemake.input.data,
        snakemake.input.maps,
        mode=snakemake.wildcards.mode,
        fraction=float(snakemake.wildcards.frac),
        fill=snakemake.params.fill,
        blur_sigma=snakemake.params.blur_sigma,
        seed=snakemake.params.mask_seed,
    )
    retrain(
        dataset,
        model_name=snakemake.wildcards.model,
        model_entry=snakemake.params.model,
        recipe_name=snakemake.wildcards.recipe,
        recipe_entry=snakemake.params.recipe,
        seeds=snakemake.params.seeds,
        device=snakemake.params.device,
        output=snakemake.output.result,
    )
