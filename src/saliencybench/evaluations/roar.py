"""RemOve And Retrain (ROAR) and Keep And Retrain (KAR), Hooker et al. (2019).

1. :func:`masked_dataset` replaces, in every train and test image, the share ``t`` of pixels
   an attribution store ranks highest (ROAR) or lowest (KAR). The result is a dataset with
   the layout of a dataset store, so the trainer reads it unchanged.
2. :func:`retrain` trains the same architecture from scratch with the same recipe on a
   masked dataset, once per retraining seed, and records masked-test accuracy;
   :func:`retrain_fraction`, the job of the ``retrain`` rule, masks in memory and retrains
   for every mode of one (method, fraction). Masking takes a fraction of a second on the
   default data, less than writing and reading a store, and a separate job per masked
   dataset would pay the start-up of a Snakemake job as well.
3. :func:`materialize` writes the masked dataset as a store, for inspection or for training
   elsewhere (``roar.keep_masked``); it is the same function of the same inputs.
4. :func:`summarize` gathers every retraining result and the unmasked baseline (the models of
   the backbone ``train`` rule for the same seeds) into one xarray Dataset with dims
   ``(method, mode, fraction, seed)``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store
from saliencybench.masking import FILLS, MODES, mask_images
from saliencybench.paths import fraction_label

log = logging.getLogger("saliencybench")

ROAR_FORMAT = "saliencybench.roar/1"
SPLIT_SEED_OFFSET = {"train": 0, "test": 1}


def masked_dataset(
    data_path: str | Path,
    attribution_path: str | Path,
    *,
    mode: str,
    fraction: float,
    fill: str,
    blur_sigma: float,
    seed: int,
) -> store.DatasetStore:
    """The dataset of one (method, mode, fraction), masked in memory.

    Args:
        data_path: the dataset store the maps were computed on.
        attribution_path: an attribution store with maps of the train and the test split.
        mode: ``roar`` or ``kar``.
        fraction: share of pixels replaced per image, in (0, 1).
        fill: name in :data:`saliencybench.masking.FILLS`.
        seed: seeds tie-breaking and the noise fill; each split gets its own stream.

    Returns:
        A dataset with the attributes a dataset store has, plus ``masking``: method, mode,
        fraction, fill, seed, the share of pixels removed per split and the provenance of
        the data and the maps.
    """
    if mode not in MODES:
        raise ValueError(f"unknown ROAR mode {mode!r}; expected one of {', '.join(MODES)}")
    FILLS.get(fill)
    dataset = store.read_dataset(data_path)
    attributions = store.read_attributions(attribution_path)
    if attributions.attrs.get("data_hash") != dataset.content_hash:
        raise store.StoreError(
            f"{attribution_path}: maps were computed on other data than {data_path}; "
            "rerun the attribute rule"
        )
    missing = [split for split in store.SPLITS if split not in attributions.splits]
    if missing:
        raise store.StoreError(
            f"{attribution_path}: no maps of the {' and '.join(missing)} split; ROAR needs "
            "maps of train and test images (remove the method's 'splits' key)"
        )
    started = time.perf_counter()
    splits = {}
    removed_share = {}
    for split in store.SPLITS:
        data = dataset[split]
        masked, mask = mask_images(
            data.images,
            attributions[split].maps,
            fraction=fraction,
            mode=mode,
            fill=fill,
            mean=tuple(dataset.mean),
            std=tuple(dataset.std),
            seed=seed * 2 + SPLIT_SEED_OFFSET[split],
            blur_sigma=blur_sigma,
        )
        splits[split] = store.DatasetSplit(masked, data.labels, data.masks)
        removed_share[split] = float(mask.mean()) if mask.size else 0.0
    name = attributions.attrs.get("name", Path(attribution_path).stem)
    label = f"{name}:{mode}:{fraction_label(fraction)}"
    masked_data = store.make_dataset(
        splits,
        class_names=dataset.class_names,
        # The statistics of the unmasked training set: the mean fill then normalizes to 0.
        mean=dataset.mean,
        std=dataset.std,
        source=f"{dataset.attrs.get('source', '?')} masked by {name}",
        extra_attrs={
            "name": f"{dataset.attrs.get('name', Path(data_path).stem)}:{label}",
            "masking": {
                "method": name,
                "mode": mode,
                "fraction": float(fraction),
                "fill": fill,
                "blur_sigma": float(blur_sigma),
                "seed": seed,
                "removed_share": removed_share,
                "data_hash": dataset.content_hash,
                "checkpoint_sha256": attributions.attrs.get("checkpoint_sha256"),
            },
        },
        path=f"{data_path} masked ({label})",
    )
    log.info(
        "%s %s t=%s (fill %s): %d train and %d test images masked in %.1fs",
        name,
        mode,
        fraction_label(fraction),
        fill,
        len(splits["train"].labels),
        len(splits["test"].labels),
        time.perf_counter() - started,
    )
    return masked_data


def materialize(
    data_path: str | Path, attribution_path: str | Path, *, output: str | Path, **masking: Any
) -> str:
    """Write the masked dataset of :func:`masked_dataset` as a dataset store.

    Args:
        masking: ``mode``, ``fraction``, ``fill``, ``blur_sigma`` and ``seed``, as
            :func:`masked_dataset` takes them.

    Returns:
        The content hash of the masked store.
    """
    return store.save_dataset(output, masked_dataset(data_path, attribution_path, **masking))


def retrain(
    data: store.DatasetStore | str | Path,
    *,
    model_name: str,
    model_entry: dict[str, Any],
    recipe_name: str,
    recipe_entry: dict[str, Any],
    seeds: Sequence[int],
    device: str,
    output: str | Path,
) -> dict[str, Any]:
    """Train one fresh model per seed on a masked dataset and write their accuracies as JSON.

    Each model starts where the original training started (random initialization from the
    seed, or the model entry's ``weights``), never from the trained checkpoint, so that the
    unmasked model of the same seed is the 0 % point. Seeds run one after the other in the
    same process: on small models, the start-up a separate job pays for each seed costs as
    much as the training itself (``benchmarks/roar.py``).

    Args:
        data: a masked dataset (:func:`masked_dataset`) or the path of a masked store.

    Returns:
        The written record: the masking attributes and, per seed, accuracies and history.
    """
    from saliencybench.pipeline import fit, software_versions

    dataset = data if isinstance(data, store.DatasetStore) else store.read_dataset(data)
    masking = dataset.attrs.get("masking")
    if not masking:
        raise store.StoreError(
            f"{dataset.path}: not a masked dataset store (no 'masking' attribute)"
        )
    runs = []
    for seed in seeds:
        result = fit(
            dataset,
            model_name=model_name,
            model_entry=model_entry,
            recipe_name=recipe_name,
            recipe_entry=recipe_entry,
            seed=int(seed),
            device=device,
        )
        runs.append(
            {
                "seed": int(seed),
                "test_accuracy": result.test_accuracy,
                "train_accuracy": result.train_accuracy,
                "train_seconds": result.seconds,
                "history": result.history,
                "device": result.device,
            }
        )
    record = {
        "format": ROAR_FORMAT,
        "method": masking["method"],
        "mode": masking["mode"],
        "fraction": masking["fraction"],
        "fill": masking["fill"],
        "model": model_name,
        "architecture": model_entry["architecture"],
        "recipe": recipe_name,
        "data_hash": dataset.content_hash,
        "masking": masking,
        "runs": runs,
        "versions": software_versions(),
    }
    store.write_json(output, record)
    accuracies = [run["test_accuracy"] for run in runs]
    log.info(
        "%s %s t=%s: masked-test accuracy %.4f ± %.4f over %d seeds",
        masking["method"],
        masking["mode"],
        fraction_label(masking["fraction"]),
        float(np.mean(accuracies)),
        float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
        len(accuracies),
    )
    return record


def retrain_fraction(
    data_path: str | Path,
    attribution_path: str | Path,
    *,
    modes: Sequence[str],
    fraction: float,
    fill: str,
    blur_sigma: float,
    mask_seed: int,
    outputs: Sequence[str | Path],
    **training: Any,
) -> list[dict[str, Any]]:
    """ROAR and KAR of one method at one fraction: mask in memory, retrain every seed.

    One job covers the modes of a (method, fraction), so that the start-up of a job (about
    four seconds for Python, torch and Zarr) is paid once for ``2 x len(seeds)`` trainings;
    on the default digits models a training takes about two (``benchmarks/roar.py``).

    Args:
        modes: the modes to run, each written to the output at the same position.
        mask_seed: the seed of :func:`masked_dataset`.
        outputs: one JSON path per mode.
        training: the keyword arguments of :func:`retrain` other than ``output``.

    Returns:
        The written records, one per mode.
    """
    if len(modes) != len(outputs):
        raise ValueError(f"{len(modes)} modes but {len(outputs)} output paths")
    records = []
    for mode, output in zip(modes, outputs, strict=True):
        dataset = masked_dataset(
            data_path,
            attribution_path,
            mode=mode,
            fraction=fraction,
            fill=fill,
            blur_sigma=blur_sigma,
            seed=mask_seed,
        )
        records.append(retrain(dataset, output=output, **training))
    return records


def _read_json(path: str | Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise store.StoreError(
            f"{path}: unreadable {what} ({error}); delete it and rerun"
        ) from None


def summarize(
    results: Sequence[str | Path],
    baselines: Mapping[int, str | Path],
    *,
    attrs: Mapping[str, Any] | None = None,
):
    """Gather retraining results into one labeled Dataset.

    Args:
        results: JSON files written by :func:`retrain`.
        baselines: checkpoint sidecars of the unmasked models, by seed.
        attrs: provenance to attach (dataset, model, recipe, model seed, fill).

    Returns:
        ``xarray.Dataset`` with ``accuracy`` and ``train_accuracy`` over
        ``(method, mode, fraction, seed)`` and ``baseline_accuracy`` over ``(seed,)``.
        Missing combinations are NaN.
    """
    import xarray as xr

    records = [_read_json(path, "ROAR result") for path in results]
    for path, record in zip(results, records, strict=True):
        if record.get("format") != ROAR_FORMAT:
            raise store.StoreError(f"{path}: not a ROAR result; delete it and rerun")
    seeds = sorted({int(run["seed"]) for r in records for run in r["runs"]} | set(baselines))
    methods = order_methods({r["method"] for r in records})
    modes = [mode for mode in MODES if any(r["mode"] == mode for r in records)]
    fractions = sorted({float(r["fraction"]) for r in records})
    shape = (len(methods), len(modes), len(fractions), len(seeds))
    accuracy = np.full(shape, np.nan)
    train_accuracy = np.full(shape, np.nan)
    for record in records:
        i = methods.index(record["method"])
        j = modes.index(record["mode"])
        k = fractions.index(float(record["fraction"]))
        for run in record["runs"]:
            s = seeds.index(int(run["seed"]))
            accuracy[i, j, k, s] = run["test_accuracy"]
            train_accuracy[i, j, k, s] = run["train_accuracy"]
    baseline = np.full(len(seeds), np.nan)
    for seed, path in baselines.items():
        baseline[seeds.index(int(seed))] = _read_json(path, "checkpoint sidecar")["test_accuracy"]
    dims = ("method", "mode", "fraction", "seed")
    summary = xr.Dataset(
        {
            "accuracy": (dims, accuracy, {"long_name": "test accuracy after retraining"}),
            "train_accuracy": (dims, train_accuracy, {"long_name": "train accuracy"}),
            "baseline_accuracy": (
                ("seed",),
                baseline,
                {"long_name": "test accuracy of the unmasked model"},
            ),
        },
        coords={"method": methods, "mode": modes, "fraction": fractions, "seed": seeds},
        attrs=store.flat_attrs({"format": ROAR_FORMAT, **(attrs or {})}),
    )
    return summary


BASELINE_METHODS = ("random", "sobel")


def order_methods(names) -> list[str]:
    """Baselines first (``random``, ``sobel``), then the others alphabetically."""
    names = set(names)
    first = [name for name in BASELINE_METHODS if name in names]
    return first + sorted(names - set(first))


def read_summary(path: str | Path):
    """Open a ROAR summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, ROAR_FORMAT, "ROAR summary")
