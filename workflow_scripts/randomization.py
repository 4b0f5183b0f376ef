"""Adapter of rule parameter_randomization: the randomization tests of one method."""

from saliencybench.evaluations.randomization import compute
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    params = snakemake.params
    compute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        method_name=snakemake.wildcards.method,
        method_entry=params.entry,
        permuted_checkpoint=snakemake.input.get("permuted_checkpoint"),
        permuted_sidecar=snakemake.input.get("permuted_sidecar"),
        split=params.split,
        max_images=params.max_images,
        layer_types=params.layer_types,
        examples=params.examples,
        target_rule=params.target,
        batch_size=params.batch_size,
        seed=params.seed,
        device=params.device,
        output=snakemake.output.store,
    )
