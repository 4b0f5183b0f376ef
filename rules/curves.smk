# Perturbation curves (MIF / LIF) and fidelity A (Brocki & Chung 2023).


rule perturbation_curves:
    input:
        data=paths.data_store(),
        checkpoint=paths.checkpoint(),
        sidecar=paths.checkpoint_sidecar(),
        maps=paths.attribution_store(),
    output:
        store=directory(curves_spec.store_path()),
    params:
        settings=settings(curves_spec.perturbation_curves_settings),
    log:
        paths.log_file(
            "perturbation_curves", "{dataset}/{model}/{recipe}/seed{seed}/{method}"
        ),
    benchmark:
        paths.benchmark_file(
            "perturbation_curves", "{dataset}/{model}/{recipe}/seed{seed}/{method}"
        )
    threads: 1
    resources:
        gpu=gpus_per_job(),
        mem_mb=scaled_by_data(4000, per_mb=8),
        runtime=scaled_by_data(60, per_mb=0.5),
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/curves.py"


rule fidelity_summary:
    input:
        stores=of_config(curves_spec.stores),
    output:
        summary=curves_spec.summary_path(),
    params:
        settings=settings(curves_spec.fidelity_summary_settings),
    log:
        paths.log_file("fidelity_summary", "{dataset}/{model}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/fidelity_summary.py"


rule fidelity_report:
    input:
        summary=curves_spec.summary_path(),
    output:
        table=curves_spec.table(),
        curves_png=report(
            curves_spec.figure(suffix="png"),
            caption="../report/curves.rst",
            category="Perturbation curves",
            subcategory="{dataset} / {model}",
            labels={"seed": "{seed}", "figure": "MIF and LIF curves"},
        ),
        curves_pdf=curves_spec.figure(suffix="pdf"),
        example_png=report(
            curves_spec.figure(suffix="png", kind="lif_example"),
            caption="../report/lif_example.rst",
            category="Perturbation curves",
            subcategory="{dataset} / {model}",
            labels={"seed": "{seed}", "figure": "one image's LIF curve"},
        ),
        example_pdf=curves_spec.figure(suffix="pdf", kind="lif_example"),
    params:
        settings=settings(curves_spec.fidelity_report_settings),
    log:
        paths.log_file("fidelity_report", "{dataset}/{model}/seed{seed}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/fidelity_report.py"


rule curves:
    input:
        targets_of("curves"),
