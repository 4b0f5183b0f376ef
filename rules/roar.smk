# RemOve And Retrain / Keep And Retrain (Hooker et al. 2019): retrain, summarize, report.
# A retrain job masks in memory and retrains every mode and seed of one (method, fraction);
# the mask rule writes the same masked datasets as stores, and runs only when
# roar.keep_masked asks for them.


rule mask:
    input:
        data=paths.data_store(),
        maps=paths.attribution_store(),
    output:
        store=directory(roar_spec.masked_store()),
    params:
        settings=settings(roar_spec.mask_settings),
    log:
        paths.log_file("mask", "{dataset}/{model}/{recipe}/seed{seed}/{method}/{mode}/t{frac}"),
    benchmark:
        paths.benchmark_file("mask", "{dataset}/{model}/{recipe}/seed{seed}/{method}/{mode}/t{frac}")
    threads: 1
    resources:
        mem_mb=scaled_by_data(2000, per_mb=8),
        runtime=scaled_by_data(30, per_mb=0.1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/mask.py"


rule retrain:
    input:
        data=paths.data_store(),
        maps=paths.attribution_store(),
    output:
        # every mode of one (method, fraction) in one job: a job's start-up costs about
        # two trainings of the default model (benchmarks/roar.py)
        results=[roar_spec.result(mode=mode) for mode in config["roar"]["modes"]],
    params:
        settings=settings(roar_spec.retrain_settings),
    log:
        paths.log_file("retrain", "{dataset}/{model}/{recipe}/seed{seed}/{method}/t{frac}"),
    benchmark:
        paths.benchmark_file("retrain", "{dataset}/{model}/{recipe}/seed{seed}/{method}/t{frac}")
    threads: max(1, workflow.cores // 2)
    priority: 5
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(240, per_mb=2),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/retrain.py"


# The original model on the masked test images of every mode and fraction: ROAR and KAR
# without retraining, one job per method (masking the test split only).
rule roar_unretrained:
    input:
        data=paths.data_store(),
        maps=paths.attribution_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        result=roar_spec.unretrained_result(),
    params:
        settings=settings(roar_spec.unretrained_settings),
    log:
        paths.log_file("roar_unretrained", "{dataset}/{model}/{recipe}/seed{seed}/{method}"),
    benchmark:
        paths.benchmark_file("roar_unretrained", "{dataset}/{model}/{recipe}/seed{seed}/{method}")
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(2000, per_mb=8),
        runtime=scaled_by_data(30, per_mb=0.2),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/roar_unretrained.py"


rule roar_summary:
    input:
        results=of_config(roar_spec.results),
        baselines=of_config(roar_spec.baselines),
        unretrained=of_config(roar_spec.unretrained_results),
    output:
        summary=roar_spec.summary_path(),
    params:
        settings=settings(roar_spec.roar_summary_settings),
    log:
        paths.log_file("roar_summary", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/roar_summary.py"


rule roar_report:
    input:
        summary=roar_spec.summary_path(),
    output:
        table=roar_spec.table(),
        png=report(
            roar_spec.figure(suffix="png"),
            caption="../report/roar.rst",
            category="ROAR and KAR",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}"},
        ),
        pdf=roar_spec.figure(suffix="pdf"),
    params:
        settings=settings(roar_spec.roar_report_settings),
    log:
        paths.log_file("roar_report", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/roar_report.py"


rule roar:
    input:
        targets_of("roar"),
