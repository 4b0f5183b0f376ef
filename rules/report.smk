# One page of every evaluation and the method scorecard; every evaluation's summaries in one
# tidy Dataset each (src/saliencybench/evaluations/ registers the evaluations).
# Both only read small files: on a cluster they run where Snakemake runs, not as jobs.


localrules:
    evaluation_summary,
    reproduction,
    report,


rule evaluation_summary:
    input:
        summaries=evaluation_summary_inputs,
    output:
        summary=paths.evaluation_summary(),
    params:
        settings=settings(planning.evaluation_summary_settings),
    wildcard_constraints:
        evaluation="|".join(EVALUATIONS.names()),
    log:
        paths.log_file("evaluation_summary", "{evaluation}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/evaluation_summary.py"


rule reproduction:
    input:
        unpack(reproduction_inputs),
    output:
        table=paths.reproduction_table(),
    params:
        settings=settings(planning.reproduction_settings),
    log:
        paths.log_file("reproduction", "{reference}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/reproduction.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        page=report(
            paths.report_page(),
            caption="../report/page.rst",
            category="Report page",
        ),
    params:
        settings=settings(planning.report_settings),
    log:
        paths.log_file("report", "page"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/saliencybench.yaml"
    script:
        "../workflow_scripts/report_page.py"
