# The hermitry ratio (the hermitry paper): class Gaussians of the penultimate encodings,
# thresholds and controls; the inputs each method sends to the model, captured; the inputs of
# this project's own evaluations; summary, Table 4, Appendix B, Figure 3; recipes compared.


rule hermitry_reference:
    input:
        unpack(of_config(hermitry_spec.foreign_input)),
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
    output:
        store=directory(hermitry_spec.reference_path()),
    params:
        settings=settings(hermitry_spec.hermitry_reference_settings),
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
        reference=hermitry_spec.reference_path(),
    output:
        store=directory(hermitry_spec.method_store()),
    params:
        settings=settings(hermitry_spec.hermitry_capture_settings),
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
        reference=hermitry_spec.reference_path(),
        maps=of_config(hermitry_spec.map_stores),
    output:
        store=directory(hermitry_spec.evaluations_path()),
    params:
        settings=settings(hermitry_spec.hermitry_evaluations_settings),
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
        reference=hermitry_spec.reference_path(),
        methods=of_config(hermitry_spec.method_stores),
        evaluations=hermitry_spec.evaluations_path(),
    output:
        summary=hermitry_spec.summary_path(),
    params:
        settings=settings(hermitry_spec.hermitry_summary_settings),
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
        summary=hermitry_spec.summary_path(),
    output:
        table=hermitry_spec.table(),
        thresholds=hermitry_spec.table(kind="hermitry_thresholds"),
        png=report(
            hermitry_spec.figure(suffix="png"),
            caption="../report/hermitry.rst",
            category="Hermitry ratio",
            subcategory="{dataset} / {model}",
            labels={"recipe": "{recipe}", "seed": "{seed}"},
        ),
        pdf=hermitry_spec.figure(suffix="pdf"),
    params:
        settings=settings(hermitry_spec.hermitry_report_settings),
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
        unpack(of_config(hermitry_spec.summaries_by_recipe)),
    output:
        table=hermitry_spec.recipes_table(),
        png=hermitry_spec.recipes_figure(suffix="png"),
        pdf=hermitry_spec.recipes_figure(suffix="pdf"),
    params:
        settings=settings(hermitry_spec.hermitry_recipes_settings),
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
        targets_of("hermitry"),
