# RemOve And Retrain / Keep And Retrain (Hooker et al. 2019): retrain, summarize, report.
# A retrain job masks in memory and retrains every mode and seed of one (method, fraction);
# the mask rule writes the same masked datasets as stores, and runs only when
# roar.keep_masked asks for them.


rule mask:
    input:
        data=paths.data_store(),
        maps=paths.attribution_store(),
    output:
        store=directory(paths.masked_store()),
    params:
        fill=config["roar"]["fill"],
        blur_sigma=config["roar"]["blur_sigma"],
        seed=config["seed"],
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
        results=[paths.roar_result(mode=mode) for mode in config["roar"]["modes"]],
    params:
        modes=config["roar"]["modes"],
        fill=config["roar"]["fill"],
        blur_sigma=config["roar"]["blur_sigma"],
        mask_seed=config["seed"],
        model=model_entry,
        recipe=recipe_entry,
        seeds=config["roar"]["seeds"],
        device=config["device"],
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


rule roar_summary:
    input:
        results=roar_results,
        baselines=roar_baselines,
    output:
        summary=paths.roar_summary(),
    params:
        attrs=roar_summary_attrs,
        seeds=config["roar"]["seeds"],
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
        summary=paths.roar_summary(),
    output:
        table=paths.roar_table(),
        png=report(
            paths.roar_figure(suffix="png"),
            caption="../report/roar.rst",
            category="ROAR and KAR",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}"},
        ),
        pdf=paths.roar_figure(suffix="pdf"),
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
        roar_targets,
