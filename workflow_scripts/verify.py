"""Adapter of rule verify: check every result; list the broken ones with their rules."""

import sys

from saliencybench.logs import job_log
from saliencybench.verify import report

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    verdict, broken = report(snakemake.params.results, snakemake.params.output_patterns)
# The verdict is for the terminal as well as the log: it is what the user asked for.
print(verdict)
sys.exit(1 if broken else 0)
