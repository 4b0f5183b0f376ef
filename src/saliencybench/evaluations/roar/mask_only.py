"""A control for ROAR: how much of the class the removal mask alone carries.

ROAR retrains on images whose top-ranked pixels are replaced; if where a method puts its
mass depends on the class, the replaced region itself (its silhouette) tells the class, and
the retrained accuracy measures that leak rather than the pixels' importance. This trains
the ROAR model on the mask alone (1 where removed, 0 elsewhere; no pixel values) with the
same recipe and seeds: near chance for ``random``, and as high as the unmasked model where
the mask gives the class away.

    python -m saliencybench.evaluations.roar.mask_only WORKDIR METHOD [--fractions ...]

reads a finished run's dataset and attribution stores (the default experiment's names, or
``--dataset/--model/--recipe/--seed``) and the recipe from WORKDIR's ``config.yaml`` (or
``--config``), and prints the mask-only accuracy per fraction.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import paths, store
from saliencybench.evaluations.roar.compute import _mask_split

log = logging.getLogger("saliencybench")


def mask_dataset(
    dataset: store.DatasetStore,
    attributions: store.AttributionStore,
    *,
    mode: str,
    fraction: float,
    seed: int,
) -> store.DatasetStore:
    """The removal masks of ROAR's (mode, fraction) as one-channel images: 255 where a pixel
    is removed, 0 elsewhere; the same masks, tie-breaking included, as the retraining's."""
    from saliencybench.data import channel_stats

    splits = {}
    for split in store.SPLITS:
        # the fill does not change which pixels are removed
        _, mask = _mask_split(dataset, attributions, split, mode, fraction, "mean", 0.0, seed)
        images = mask[:, None].astype(np.uint8) * 255
        splits[split] = store.DatasetSplit(images, dataset[split].labels, None)
    mean, std = channel_stats(splits["train"].images)
    return store.make_dataset(
        splits,
        class_names=dataset.class_names,
        mean=mean,
        std=std,
        source=f"ROAR removal masks ({mode}, {fraction})",
    )


def mask_only_accuracy(
    dataset: store.DatasetStore,
    attributions: store.AttributionStore,
    *,
    mode: str,
    fraction: float,
    model_entry: dict[str, Any],
    recipe_entry: dict[str, Any],
    seeds: Sequence[int],
    mask_seed: int = 0,
    device: str = "cpu",
) -> list[float]:
    """Test accuracy of a model trained on the removal masks alone, one per seed."""
    from saliencybench.pipeline import fit

    masks = mask_dataset(dataset, attributions, mode=mode, fraction=fraction, seed=mask_seed)
    return [
        fit(
            masks,
            model_name=model_entry["architecture"],
            model_entry=model_entry,
            recipe_name="mask-only",
            recipe_entry=recipe_entry,
            seed=int(seed),
            device=device,
        ).test_accuracy
        for seed in seeds
    ]


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
