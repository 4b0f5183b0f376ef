# saliencybench: how far to trust a saliency method for an image classifier.
# Table of contents; rules live in rules/, logic in src/saliencybench/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attribute.smk"


rule all:
    default_target: True
    input:
        all_targets(),
