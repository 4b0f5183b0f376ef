# The hermitry ratio (the hermitry paper): class Gaussians of the penultimate encodings,
# thresholds and controls; the inputs each method sends to the model, captured; the inputs of
# this project's own evaluations; summary, Table 4, Appendix B, Figure 3; recipes compared.


rule hermitry_reference:
    input:
        unpack(hermitry_foreign_input),
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(paths.hermitry_reference()),
    params:
        split=config["hermitry"]["split"],
        classes=config["hermitry"]["classes"],
        max_per_class=config["hermitry"]["max_per_class"],
        covariance=config["hermitry"]["covariance"],
        percentile=config["hermitry"]["percentile"],
        noise_images=config["hermitry"]["noise_images"],
        batch_size=config["hermitry"]["batch_size"],
        seed=config["seed"],
        device=config["device"],
    log:
        paths.log_file("hermitry_reference", "{dataset}/{model}/{recipe}/seed{seed}"),
    benchmark:
        paths.benchmark_file("hermitry_reference", "{dataset}/{model}/{recipe}/seed{seed}")
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(60, per_mb=0.5),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/hermitry_reference.py"


rule hermitry_capture:
    input:
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
        reference=paths.hermitry_reference(),
    output:
        store=directory(paths.hermitry_method_store()),
    params:
        entry=method_entry,
        max_queries_per_image=config["hermitry"]["max_queries_per_image"],
        target=config["attribution"]["target"],
        batch_size=config["attribution"]["batch_size"],
        seed=config["seed"],
        device=config["device"],
    log:
        paths.log_file("hermitry_capture", "{dataset}/{model}/{recipe}/seed{seed}/{method}"),
    benchmark:
        paths.benchmark_file("hermitry_capture", "{dataset}/{model}/{recipe}/seed{seed}/{method}")
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(120, per_mb=1),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/hermitry_capture.py"


rule hermitry_evaluations:
    input:
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
        reference=paths.hermitry_reference(),
        maps=hermitry_map_stores,
    output:
        store=directory(paths.hermitry_evaluations()),
    params:
        map_methods=hermitry_map_names,
        fractions=config["hermitry"]["fractions"] or config["roar"]["fractions"],
        roar_fill=config["roar"]["fill"],
        blur_sigma=config["roar"]["blur_sigma"],
        steps=config["hermitry"]["steps"],
        curves_fill=config["curves"]["fill"],
        square_side=config["robustness"]["infidelity"]["square_side"],
        noise_std=config["robustness"]["infidelity"]["noise_std"],
        baseline=config["robustness"]["baseline"],
        infidelity_samples=config["hermitry"]["infidelity_samples"],
        batch_size=config["hermitry"]["batch_size"],
        seed=config["seed"],
        device=config["device"],
    log:
        paths.log_file("hermitry_evaluations", "{dataset}/{model}/{recipe}/seed{seed}"),
    benchmark:
        paths.benchmark_file("hermitry_evaluations", "{dataset}/{model}/{recipe}/seed{seed}")
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(60, per_mb=0.5),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/hermitry_evaluations.py"


rule hermitry_summary:
    input:
        reference=paths.hermitry_reference(),
        methods=hermitry_method_stores,
        evaluations=paths.hermitry_evaluations(),
    output:
        summary=paths.hermitry_summary(),
    params:
        low_ratio=config["hermitry"]["low_ratio"],
        attrs=hermitry_summary_attrs,
    log:
        paths.log_file("hermitry_summary", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/hermitry_summary.py"


rule hermitry_report:
    input:
        summary=paths.hermitry_summary(),
    output:
        table=paths.hermitry_table(),
        thresholds=paths.hermitry_table(kind="hermitry_thresholds"),
        png=report(
            paths.hermitry_figure(suffix="png"),
            caption="../report/hermitry.rst",
            category="Hermitry ratio",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}"},
        ),
        pdf=paths.hermitry_figure(suffix="pdf"),
    log:
        paths.log_file("hermitry_report", "{dataset}/{model}/{recipe}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/hermitry_report.py"


rule hermitry_recipes:
    input:
        unpack(hermitry_summaries_by_recipe),
    output:
        table=paths.hermitry_recipes_table(),
        png=paths.hermitry_recipes_figure(suffix="png"),
        pdf=paths.hermitry_recipes_figure(suffix="pdf"),
    log:
        paths.log_file("hermitry_recipes", "{dataset}/{model}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/hermitry_recipes.py"


rule hermitry:
    input:
        hermitry_targets,
