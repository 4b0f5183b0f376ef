# Infidelity and max-sensitivity, with SmoothGrad-smoothed variants (Yeh et al. 2019):
# one job per method and smoothing.


rule robustness_metrics:
    input:
        unpack(of_config(robustness_spec.explained_classes)),
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(robustness_spec.store_path()),
    params:
        settings=settings(robustness_spec.robustness_metrics_settings),
    log:
        paths.log_file(
            "robustness_metrics", "{dataset}/{model}/{recipe}/seed{seed}/{method}/{smoothing}"
        ),
    benchmark:
        paths.benchmark_file(
            "robustness_metrics", "{dataset}/{model}/{recipe}/seed{seed}/{method}/{smoothing}"
        )
    threads: 1
    # the smoothed jobs are the longest of a run: started first, they end with the others
    priority: 20
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(120, per_mb=1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/robustness_metrics.py"


rule robustness_summary:
    input:
        stores=of_config(robustness_spec.stores),
    output:
        summary=robustness_spec.summary_path(),
    params:
        settings=settings(robustness_spec.robustness_summary_settings),
    log:
        paths.log_file("robustness_summary", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/robustness_summary.py"


rule robustness_report:
    input:
        summary=robustness_spec.summary_path(),
    output:
        table=robustness_spec.table(),
        png=report(
            robustness_spec.figure(suffix="png"),
            caption="../report/robustness.rst",
            category="Infidelity and sensitivity",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}"},
        ),
        pdf=robustness_spec.figure(suffix="pdf"),
    params:
        settings=settings(robustness_spec.robustness_report_settings),
    log:
        paths.log_file("robustness_report", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/robustness_report.py"


rule robustness:
    input:
        targets_of("robustness"),
