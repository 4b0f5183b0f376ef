"""Adapter of rule randomization_summary: the extended IPR test of one model (NetCDF)."""

from saliencybench.evaluations.randomization import summarize
from saliencybench.logs import job_log
from saliencybench.store import write_netcdf

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], snakemake.threads):
    params = snakemake.params
    summary = summarize(
        list(snakemake.input.stores),
        ssim_threshold=params.ssim_threshold,
        pass_threshold=params.pass_threshold,
        confidence=params.confidence,
        bootstrap_samples=params.bootstrap_samples,
        seed=params.seed,
        attrs=params.attrs,
    )
    write_netcdf(summary, snakemake.output.summary)
