"""ROAR's mask-only control on a finished run: the ROAR model trained on the removal masks
alone (:func:`saliencybench.evaluations.roar.compute.mask_only_accuracy`), same recipe, seeds
and masks, its test accuracy per fraction.

    python -m saliencybench.roar_mask_only WORKDIR METHOD [--fractions ...]

reads a finished run's dataset and attribution stores (the default experiment's names, or
``--dataset/--model/--recipe/--seed``) and the recipe from WORKDIR's ``config.yaml`` (or
``--config``), and prints the mask-only accuracy per fraction.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench import paths, store
from saliencybench.evaluations.roar.compute import mask_only_accuracy


def main(argv: Sequence[str] | None = None) -> None:
    import yaml

    from saliencybench.config import validate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("method")
    parser.add_argument("--config", type=Path, help="default: WORKDIR/config.yaml")
    parser.add_argument("--dataset", default="mnist_sample")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--recipe", default="brief")
    parser.add_argument("--seed", type=int, default=0, help="the explained model's seed")
    parser.add_argument("--fractions", type=float, nargs="+", default=None)
    parser.add_argument("--mode", default="roar", choices=["roar", "kar"])
    args = parser.parse_args(argv)
    config = validate(yaml.safe_load((args.config or args.workdir / "config.yaml").read_text()))
    data = store.read_dataset(args.workdir / paths.data_store(args.dataset))
    maps = store.read_attributions(
        args.workdir
        / paths.attribution_store(args.dataset, args.model, args.recipe, args.seed, args.method)
    )
    seeds = config["roar"]["seeds"]
    for fraction in args.fractions or config["roar"]["fractions"]:
        accuracies = mask_only_accuracy(
            data,
            maps,
            mode=args.mode,
            fraction=fraction,
            model_entry=config["models"][args.model],
            recipe_entry=config["recipes"][args.recipe],
            seeds=seeds,
            mask_seed=config["seed"],
        )
        spread = np.std(accuracies, ddof=1) if len(accuracies) > 1 else 0.0
        print(
            f"{args.method} {args.mode} {fraction:.0%}: mask-only test accuracy "
            f"{100 * np.mean(accuracies):.1f} ± {100 * spread:.1f} % over {len(seeds)} seeds"
        )


if __name__ == "__main__":
    main()
