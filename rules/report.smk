# One page of every evaluation and the method scorecard; every evaluation's summaries in one
# tidy Dataset each (src/saliencybench/html_report.py has the registry of evaluations).
# Both only read small files: on a cluster they run where Snakemake runs, not as jobs.


localrules:
    evaluation_summary,
    report,


rule evaluation_summary:
    input:
        summaries=evaluation_summary_inputs,
    output:
        summary=paths.evaluation_summary(),
    params:
        runs=evaluation_summary_runs,
    wildcard_constraints:
        evaluation="|".join(html_report.EVALUATIONS.names()),
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
        config=canonical(config),
        summaries=report_summaries,
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
