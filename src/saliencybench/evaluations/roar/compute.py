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

``summary`` gathers the records these jobs write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store
from saliencybench.evaluations.roar.spec import ROAR_FORMAT, UNRETRAINED_FORMAT
from saliencybench.masking import FILLS, MODES, mask_images
from saliencybench.paths import fraction_label

log = logging.getLogger("saliencybench")

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
        masked, mask = _mask_split(
            dataset, attributions, split, mode, fraction, fill, blur_sigma, seed
        )
        data = dataset[split]
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


def _mask_split(
    dataset: store.DatasetStore,
    attributions: store.AttributionStore,
    split: str,
    mode: str,
    fraction: float,
    fill: str,
    blur_sigma: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One split masked, and its mask: each split draws from its own stream of ``seed``, so
    the test images of :func:`masked_dataset` and of :func:`unretrained` are the same."""
    return mask_images(
        dataset[split].images,
        attributions[split].maps,
        fraction=fraction,
        mode=mode,
        fill=fill,
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
        seed=seed * 2 + SPLIT_SEED_OFFSET[split],
        blur_sigma=blur_sigma,
    )


# ----------------------------------------------------------------------- a control


def mask_dataset(
    dataset: store.DatasetStore,
    attributions: store.AttributionStore,
    *,
    mode: str,
    fraction: float,
    seed: int,
) -> store.DatasetStore:
    """The removal masks of ROAR's (mode, fraction) as one-channel images: 255 where a pixel
    is removed, 0 elsewhere; the same masks, tie-breaking included, as the retraining's.

    A control for ROAR: where a method puts its mass may depend on the class, and then the
    removed region's silhouette tells the class. A model trained on these masks alone (no
    pixel values, :func:`mask_only_accuracy`) is near chance for ``random`` and as accurate
    as the unmasked model where the mask gives the class away; a retrained accuracy near
    it measures that leak, not the importance of what was removed.
    """
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
    from saliencybench.jobkit import software_versions
    from saliencybench.pipeline import fit

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


def unretrained(
    data_path: str | Path,
    attribution_path: str | Path,
    checkpoint: str | Path,
    sidecar_path: str | Path,
    *,
    modes: Sequence[str],
    fractions: Sequence[float],
    fill: str,
    blur_sigma: float,
    mask_seed: int,
    device: str,
    output: str | Path,
) -> dict[str, Any]:
    """ROAR and KAR without retraining: the original model on the masked test images.

    The test images are masked exactly as for the retrained models (same fill, seed and
    stream), so the two accuracies differ only by the retraining. Without retraining, a
    drop in accuracy can come from the fill being foreign to the model rather than from the
    removed evidence (Hooker et al. 2019); a fill that imitates the image around the hole,
    such as ``road`` (Rong et al. 2022), is meant to make the two rank methods alike.

    Args:
        checkpoint, sidecar_path: the model the maps were computed on.
        modes, fractions: the ROAR grid, as the retrain jobs run it.
        mask_seed: the seed of :func:`masked_dataset`.

    Returns:
        The written record: accuracy per mode and fraction label, and the unmasked accuracy.
    """
    import torch

    from saliencybench.inference import accuracy, normalize
    from saliencybench.jobkit import load_run, read_maps, software_versions

    FILLS.get(fill)
    run = load_run(data_path, checkpoint, sidecar_path, device)
    attributions = read_maps(attribution_path, run, "test", "ROAR without retraining")
    labels = run.labels("test")
    name = attributions.attrs.get("name", Path(attribution_path).stem)
    results: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        unmasked = accuracy(run.model, run.inputs("test"), labels)
        for mode in modes:
            results[mode] = {}
            for fraction in fractions:
                masked, _ = _mask_split(
                    run.dataset, attributions, "test", mode, fraction, fill, blur_sigma, mask_seed
                )
                inputs = normalize(masked, run.dataset.mean, run.dataset.std, run.device)
                results[mode][fraction_label(fraction)] = accuracy(run.model, inputs, labels)
                log.info(
                    "%s %s t=%s (fill %s), not retrained: test accuracy %.4f",
                    name,
                    mode,
                    fraction_label(fraction),
                    fill,
                    results[mode][fraction_label(fraction)],
                )
    record = {
        "format": UNRETRAINED_FORMAT,
        "method": name,
        "fill": fill,
        "data_hash": run.dataset.content_hash,
        "checkpoint_sha256": run.sidecar.get("checkpoint_sha256"),
        "unmasked_accuracy": unmasked,
        "accuracy": results,
        "versions": software_versions(),
    }
    store.write_json(output, record)
    return record
