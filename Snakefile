# saliencybench: how far to trust a saliency method for an image classifier.
# Table of contents; rules live in rules/, logic in src/saliencybench/.

from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces the default experiment instead of extending
# it, so a preset in configs/ runs exactly what it lists.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# `snakemake --report report.html` lists the figures marked with report() and their captions.
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attribute.smk"
include: "rules/roar.smk"
include: "rules/curves.smk"
include: "rules/robustness.smk"
include: "rules/randomization.smk"
include: "rules/hermitry.smk"
include: "rules/report.smk"
include: "rules/verify.smk"


# Every attribution store, then the page of every evaluation the experiments list.
rule all:
    default_target: True
    input:
        all_targets(),
        paths.report_page(),
