# Parameter- and data-randomization sanity checks (Adebayo et al. 2018) and the extended
# IPR test (Sriram & Conati): train on permuted labels, randomize, summarize, report.


rule train_permuted_labels:
    input:
        data=paths.data_store(),
    output:
        checkpoint=paths.permuted_checkpoint(),
        sidecar=paths.permuted_sidecar(),
    params:
        model=model_entry,
        recipe=permuted_recipe_entry,
        device=config["device"],
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
        unpack(permuted_model),
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(paths.randomization_store()),
    params:
        entry=method_entry,
        split=config["randomization"]["split"],
        max_images=config["randomization"]["max_images"],
        layer_types=config["randomization"]["layer_types"],
        examples=config["randomization"]["examples"],
        target=config["attribution"]["target"],
        batch_size=config["attribution"]["batch_size"],
        seed=config["seed"],
        device=config["device"],
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
        stores=randomization_stores,
    output:
        summary=paths.randomization_summary(),
    params:
        ssim_threshold=config["randomization"]["ssim_threshold"],
        pass_threshold=config["randomization"]["pass_threshold"],
        confidence=config["randomization"]["confidence"],
        bootstrap_samples=config["randomization"]["bootstrap_samples"],
        seed=config["seed"],
        attrs=randomization_summary_attrs,
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
        summary=paths.randomization_summary(),
    output:
        table=paths.randomization_table(),
        layers_png=report(
            paths.randomization_figure(suffix="png", kind="layers"),
            caption="../report/randomization.rst",
            category="Parameter randomization",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}", "figure": "layers"},
        ),
        layers_pdf=paths.randomization_figure(suffix="pdf", kind="layers"),
        sensitivity_png=report(
            paths.randomization_figure(suffix="png", kind="sensitivity"),
            caption="../report/randomization.rst",
            category="Parameter randomization",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}", "figure": "sensitivity"},
        ),
        sensitivity_pdf=paths.randomization_figure(suffix="pdf", kind="sensitivity"),
        examples_png=report(
            paths.randomization_figure(suffix="png", kind="examples"),
            caption="../report/randomization.rst",
            category="Parameter randomization",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}", "figure": "examples"},
        ),
        examples_pdf=paths.randomization_figure(suffix="pdf", kind="examples"),
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
        randomization_targets,
