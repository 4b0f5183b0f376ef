rule attribute:
    input:
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(paths.attribution_store()),
    params:
        entry=method_entry,
        attribution=config["attribution"],
        seed=config["seed"],
        device=config["device"],
    log:
        paths.log_file("attribute", "{dataset}/{model}/{recipe}/seed{seed}/{method}"),
    benchmark:
        paths.benchmark_file("attribute", "{dataset}/{model}/{recipe}/seed{seed}/{method}")
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/attribute.py"
