rule train:
    input:
        data=paths.data_store(),
    output:
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    params:
        model=model_entry,
        recipe=recipe_entry,
        device=config["device"],
    log:
        paths.log_file("train", "{dataset}/{model}/{recipe}/seed{seed}"),
    benchmark:
        paths.benchmark_file("train", "{dataset}/{model}/{recipe}/seed{seed}")
    threads: max(1, workflow.cores // 2)
    priority: 10
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/train.py"
