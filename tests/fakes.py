"""Tiny dataset files in the real on-disk formats (MNIST IDX, CIFAR-10 pickles, image
folders), written by the tests that read them."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(folder, rng, compress):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 5, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    for name, array in arrays.items():
        payload = idx_bytes(array, 2051 if "images" in name else 2049)
        if compress:
            with gzip.open(folder / f"{name}.gz", "wb") as handle:
                handle.write(payload)
        else:
            (folder / name).write_bytes(payload)
    return arrays


def write_cifar(folder, rng):
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 4).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, handle)
    return batches


def write_image(path, size, color_box=None):
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    if color_box:
        top, left, bottom, right = color_box
        pixels[top:bottom, left:right] = (255, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_class_folders(root, layout, size=(12, 12)):
    """An ImageNet-style tree: ``layout`` maps split folder -> class -> image count; a
    class with 0 images becomes an empty folder (holding only a non-image file)."""
    for split, classes in layout.items():
        for label, count in classes.items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            if count == 0:
                (folder / "notes.txt").write_text("not an image\n")
            for i in range(count):
                write_image(folder / f"{i}.png", size)
    return root


def write_food101(root, train, test, classes=None, size=(12, 12)):
    """A Food-101 tree: ``train`` and ``test`` map class -> image count; ``classes``, when
    given, is written to meta/classes.txt."""
    (root / "meta").mkdir(parents=True, exist_ok=True)
    for split, counts in (("train", train), ("test", test)):
        lines = []
        for label, count in counts.items():
            for i in range(count):
                write_image(root / "images" / label / f"{split}{i}.jpg", size)
                lines.append(f"{label}/{split}{i}")
        (root / "meta" / f"{split}.txt").write_text("".join(line + "\n" for line in lines))
    if classes is not None:
        (root / "meta" / "classes.txt").write_text("".join(c + "\n" for c in classes))
    return root


def truncate(path, keep=0.5):
    """Cut a file to a fraction of its bytes, as an interrupted copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def write_state_dict(path: Path) -> Path:
    """A small plain state_dict file, as validation wants a weights file to be (whether its
    tensors fit the architecture is the train job's check)."""
    import torch

    torch.save({"weight": torch.zeros(1)}, path)
    return path
