# Parameter- and data-randomization sanity checks (Adebayo et al. 2018) and the extended
# IPR test (Sriram & Conati): train on permuted labels, randomize, summarize, report.


rule train_permuted_labels:
    input:
        data=paths.data_store(),
    output:
        checkpoint=randomization_spec.permuted_checkpoint(),
        sidecar=randomization_spec.permuted_sidecar(),
    params:
        settings=settings(randomization_spec.train_permuted_labels_settings),
    log:
        paths.log_file("train_permuted_labels", "{dataset}/{model}/{recipe}/seed{seed}"),
    benchmark:
        paths.benchmark_file("train_permuted_labels", "{dataset}/{model}/{recipe}/seed{seed}")
    threads: max(1, workflow.cores // 2)
    priority: 10
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(120, per_mb=1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/train_permuted_labels.py"


rule parameter_randomization:
    input:
        unpack(of_config(randomization_spec.permuted_model)),
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(randomization_spec.store_path()),
    params:
        settings=settings(randomization_spec.parameter_randomization_settings),
    log:
        paths.log_file(
            "parameter_randomization", "{dataset}/{model}/{recipe}/seed{seed}/{method}"
        ),
    benchmark:
        paths.benchmark_file(
            "parameter_randomization", "{dataset}/{model}/{recipe}/seed{seed}/{method}"
        )
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(8000, per_mb=8),
        runtime=scaled_by_data(240, per_mb=1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/randomization.py"


rule randomization_summary:
    input:
        stores=of_config(randomization_spec.stores),
    output:
        summary=randomization_spec.summary_path(),
    params:
        settings=settings(randomization_spec.randomization_summary_settings),
    log:
        paths.log_file("randomization_summary", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/randomization_summary.py"


rule randomization_report:
    input:
        summary=randomization_spec.summary_path(),
    output:
        table=randomization_spec.table(),
        layers_png=report(
            randomization_spec.figure(suffix="png", kind="layers"),
            caption="../report/randomization.rst",
            category="Parameter randomization",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}", "figure": "layers"},
        ),
        layers_pdf=randomization_spec.figure(suffix="pdf", kind="layers"),
        sensitivity_png=report(
            randomization_spec.figure(suffix="png", kind="sensitivity"),
            caption="../report/randomization.rst",
            category="Parameter randomization",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}", "figure": "sensitivity"},
        ),
        sensitivity_pdf=randomization_spec.figure(suffix="pdf", kind="sensitivity"),
        examples_png=report(
            randomization_spec.figure(suffix="png", kind="examples"),
            caption="../report/randomization.rst",
            category="Parameter randomization",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}", "figure": "examples"},
        ),
        examples_pdf=randomization_spec.figure(suffix="pdf", kind="examples"),
    params:
        settings=settings(randomization_spec.randomization_report_settings),
    log:
        paths.log_file("randomization_report", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/randomization_report.py"


rule randomization:
    input:
        targets_of("randomization"),
