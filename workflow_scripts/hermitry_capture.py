"""Adapter of rule hermitry_capture: the inputs one method sends to the model, measured."""

from saliencybench.evaluations.hermitry import capture
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    params = snakemake.params
    capture(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        snakemake.input.reference,
        method_name=snakemake.wildcards.method,
        method_entry=params.entry,
        max_queries_per_image=params.max_queries_per_image,
        target_rule=params.target,
        batch_size=params.batch_size,
        seed=params.seed,
        device=params.device,
        output=snakemake.output.store,
    )
