"""Job resources: GPUs by device without torch, requests that grow with data and retries."""

import re
import subprocess
import sys

import pytest
import yaml
from support import ROOT

from saliencybench.resources import gpus_for_device, nvidia_gpu_visible, scaled, store_size_mb

# Every rule that runs a model; the others (data, masking, summaries, reports) need none.
GPU_RULES = {
    "train",
    "attribute",
    "retrain",
    "roar_unretrained",
    "perturbation_curves",
    "robustness_metrics",
    "train_permuted_labels",
    "parameter_randomization",
    "hermitry_reference",
    "hermitry_capture",
    "hermitry_evaluations",
}


@pytest.fixture
def driver_files(tmp_path):
    listing, node = tmp_path / "gpus", tmp_path / "nvidia0"
    return listing, node


@pytest.mark.parametrize(
    "device, visible, expected",
    [
        ("cpu", True, 0),
        ("cuda", False, 1),
        ("cuda:1", False, 1),
        ("auto", True, 1),
        ("auto", False, 0),
    ],
)
def test_gpus_follow_the_device(device, visible, expected):
    assert gpus_for_device(device, gpu_visible=visible) == expected


def test_unknown_device_is_an_error():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        gpus_for_device("gpu")


def test_gpu_visible_from_driver_files(driver_files):
    listing, node = driver_files
    assert not nvidia_gpu_visible(env={}, files=driver_files)
    listing.mkdir()
    assert not nvidia_gpu_visible(env={}, files=driver_files)
    (listing / "0000:01:00.0").mkdir()
    assert nvidia_gpu_visible(env={}, files=driver_files)
    assert not nvidia_gpu_visible(env={"CUDA_VISIBLE_DEVICES": ""}, files=driver_files)
    assert not nvidia_gpu_visible(env={"CUDA_VISIBLE_DEVICES": "-1"}, files=driver_files)
    assert nvidia_gpu_visible(env={"CUDA_VISIBLE_DEVICES": "0"}, files=driver_files)
    (listing / "0000:01:00.0").rmdir()
    node.touch()
    assert nvidia_gpu_visible(env={}, files=driver_files)


def test_store_size_counts_every_chunk(tmp_path):
    store = tmp_path / "data.zarr"
    assert store_size_mb(store) == 0
    (store / "train" / "images").mkdir(parents=True)
    (store / "zarr.json").write_bytes(b"x" * 2**19)
    (store / "train" / "images" / "c0").write_bytes(b"x" * 2**20)
    assert store_size_mb(store) == pytest.approx(1.5)
    assert store_size_mb(store / "zarr.json") == pytest.approx(0.5)


def test_requests_grow_with_data_and_attempt():
    assert scaled(4000, 8, 0) == 4000
    assert scaled(4000, 8, 100) == 4800
    assert scaled(4000, 8, 100, attempt=2) == 9600
    assert scaled(60, 0.5, 3, attempt=0) == 62


def _dry_run_resources(tmp_path, device):
    config = {
        "device": device,
        "datasets": {"digits": {"source": "digits"}},
        "models": {"small_cnn": {}},
        "recipes": {"standard": {"epochs": 1}},
        "methods": {"saliency": {}, "occlusion": {}},
        "experiments": [
            {
                "dataset": "digits",
                "model": "small_cnn",
                "evaluations": ["roar", "curves", "robustness", "randomization", "hermitry"],
            }
        ],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
        + ["--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
        + ["--cores", "2", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = {}
    for rule, resources in re.findall(
        r"rule (\w+):\n(?:    .*\n)*?    resources: (.*)", done.stdout
    ):
        found[rule] = dict(item.split("=", 1) for item in resources.split(", "))
    return found


@pytest.mark.parametrize("device, gpus", [("cpu", "0"), ("cuda", "1")])
def test_model_rules_ask_for_a_gpu_only_on_cuda(tmp_path, device, gpus):
    found = _dry_run_resources(tmp_path, device)
    assert GPU_RULES <= set(found)
    for rule, resources in found.items():
        assert resources.get("gpu") == (gpus if rule in GPU_RULES else None), rule
    assert found["train"]["mem_mb"] == "4000"
    assert found["prepare_data"]["runtime"] == "30"
