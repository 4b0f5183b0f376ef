"""Adapter of rule prepare_data: one dataset source to results/data/{dataset}.zarr."""

from saliencybench.logs import job_log
from saliencybench.pipeline import prepare_dataset

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    prepare_dataset(**snakemake.params.settings, output=snakemake.output.store)
