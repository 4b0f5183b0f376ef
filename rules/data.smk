rule prepare_data:
    output:
        store=directory(paths.data_store()),
    params:
        settings=settings(planning.prepare_data_settings),
    log:
        paths.log_file("prepare_data", "{dataset}"),
    benchmark:
        paths.benchmark_file("prepare_data", "{dataset}")
    threads: 1
    resources:
        mem_mb=scaled_by_data(4000),
        runtime=scaled_by_data(30),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/prepare_data.py"
