# `snakemake verify`: every result under results/ checked against the array hashes and
# checksums written with it; the broken ones are listed with the rule that rebuilds each.
# It has no outputs, so it runs whenever it is named, and never as part of `all`.


localrules:
    verify,


rule verify:
    params:
        results=paths.RESULTS,
        output_patterns=lambda wildcards: output_patterns(exclude="verify"),
    log:
        paths.log_file("verify", "verify"),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/verify.py"
