"""Adapter of rule robustness_metrics: infidelity and max-sensitivity of one method."""

from saliencybench.evaluations.robustness import compute
from saliencybench.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    compute(
        snakemake.input.data,
        snakemake.input.checkpoint,
        snakemake.input.sidecar,
        method_name=snakemake.wildcards.method,
        method_entry=snakemake.params.entry,
        settings=snakemake.params.settings,
        targets_path=snakemake.input.get("maps"),
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        output=snakemake.output.store,
    )
