rule train:
    input:
        data=paths.data_store(),
    output:
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    params:
        settings=settings(planning.train_settings),
    log:
        paths.log_file("train", "{dataset}/{model}/{recipe}/seed{seed}"),
    benchmark:
        paths.benchmark_file("train", "{dataset}/{model}/{recipe}/seed{seed}")
    threads: max(1, workflow.cores // 2)
    priority: 10
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(120, per_mb=1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/train.py"
