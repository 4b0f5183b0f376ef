"""Benchmark of ROAR/KAR on the default config: retraining cost and overhead.

Builds the backbone first (untimed), then times `snakemake roar` in a scratch working
directory and prints:

- seconds per retraining (one seed on one masked dataset, from the retraining records; a
  job retrains every mode and seed of one method and fraction);
- the share of ROAR wall time spent outside training steps: 1 - (sum of training seconds) /
  (wall time x concurrent job slots), where slots = cores // threads of the retrain rule.
  Job start-up (imports), masking, data loading, summary and figure all count as outside;
  target under 20 %;
- retraining throughput in images/s of the package's training loop against a bare loop
  (same model, tensors, batch size, optimizer; no schedule, no augmentation hooks, no
  accounting) on the experiment's dataset; target at least 0.8.

Usage: python benchmarks/roar.py [--config config.yaml] [--cores N] [--keep DIR]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from saliencybench.testing import (  # noqa: E402
    benchmark_arguments,
    scratch_workdir,
    timed_snakemake,
)

OUTSIDE_TARGET = 0.20
THROUGHPUT_TARGET = 0.8


def bare_training_loop(model, images, labels, recipe) -> None:
    """The recipe's epochs, batch size and SGD settings and nothing else: no schedule, no
    augmentation, no accounting. The peer of ``training.train_model``."""
    import torch

    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(images), device=images.device)
        for start in range(0, len(images), recipe.batch_size):
            index = order[start : start + recipe.batch_size]
            loss = loss_fn(model(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def bare_loop_ratio(workdir: Path, dataset: str, recipe_entry: dict, repeats: int = 3) -> float:
    """images/s of ``training.train_model`` divided by images/s of a bare SGD loop."""
    import torch

    from saliencybench import paths, store
    from saliencybench.inference import normalize
    from saliencybench.models import build_model
    from saliencybench.training import Recipe, train_model

    torch.set_num_threads(1)
    data = store.read_dataset(workdir / paths.data_store(dataset))
    images = normalize(data["train"].images, data.mean, data.std, torch.device("cpu"))
    labels = torch.as_tensor(data["train"].labels)
    recipe = Recipe.from_config(recipe_entry)
    _, channels, height, _ = images.shape

    def fresh():
        torch.manual_seed(0)
        return build_model(
            "small_cnn", in_channels=channels, num_classes=len(data.class_names), image_size=height
        )

    def bare(model) -> None:
        bare_training_loop(model, images, labels, recipe)

    def timed(run) -> float:
        best = float("inf")
        for _ in range(repeats):
            model = fresh()
            started = time.perf_counter()
            run(model)
            best = min(best, time.perf_counter() - started)
        return best

    package = timed(lambda model: train_model(model, images, labels, recipe, seed=0))
    baseline = timed(bare)
    return baseline / package


def main() -> None:
    args = benchmark_arguments(__doc__.splitlines()[0])
    import yaml

    from saliencybench import store

    config = yaml.safe_load(args.config.read_text())
    with scratch_workdir(args.keep, "saliencybench-roar-") as workdir:
        timed_snakemake(workdir, args.config.resolve(), args.cores, "attributions")
        started = time.time()
        wall, _ = timed_snakemake(workdir, args.config.resolve(), args.cores, "roar")
        # only the records this run wrote: a kept folder may hold those of earlier runs
        records = [
            store.read_json(path, "ROAR result")
            for path in (workdir / "results/roar").rglob("t*.json")
            if path.stat().st_mtime >= started
        ]
        runs = [run for record in records for run in record["runs"]]
        if not runs:
            sys.exit("no retraining ran: does an experiment list 'roar' in its evaluations?")
        train_seconds = sum(run["train_seconds"] for run in runs)
        cores = os.cpu_count() if args.cores == "all" else int(args.cores)
        slots = max(1, cores // max(1, cores // 2))
        outside = 1.0 - train_seconds / (wall * slots)
        print(f"ROAR wall time (snakemake roar)  {wall:8.1f} s over {slots} job slots")
        jobs = len({(record["method"], record["fraction"]) for record in records})
        print(f"retrainings                      {len(runs):8d} in {jobs} jobs")
        print(f"seconds per retraining           {train_seconds / len(runs):8.2f} s")
        print(
            f"share outside training steps     {outside:8.1%}   "
            f"ratio to {OUTSIDE_TARGET:.0%} target: {outside / OUTSIDE_TARGET:.2f}"
        )
        experiment = next(e for e in config["experiments"] if "roar" in e.get("evaluations", []))
        recipe = config["recipes"][experiment.get("recipes", ["standard"])[0]]
        ratio = bare_loop_ratio(workdir, experiment["dataset"], recipe)
        print(
            f"training loop vs bare loop       {ratio:8.2f} of its images/s   "
            f"ratio to {THROUGHPUT_TARGET} target: {ratio / THROUGHPUT_TARGET:.2f}"
        )


if __name__ == "__main__":
    main()
