rule attribute:
    input:
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(paths.attribution_store()),
    params:
        settings=settings(planning.attribute_settings),
    log:
        paths.log_file("attribute", "{dataset}/{model}/{recipe}/seed{seed}/{method}"),
    benchmark:
        paths.benchmark_file("attribute", "{dataset}/{model}/{recipe}/seed{seed}/{method}")
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(120, per_mb=1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/attribute.py"


# The backbone alone: every dataset, model and attribution store the experiments name,
# without the evaluations (`snakemake attributions`).
rule attributions:
    input:
        all_targets(),
