"""Dataset sources on tiny files in each real format, and the procedural shapes."""

import os
import pickle
import struct

import numpy as np
import pytest
from fakes import write_cifar, write_image, write_mnist

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
    assert set(SOURCES.names()) == {"digits", "shapes", "mnist", "cifar10", "image_folder"}


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, (50, 3, 5, 5), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=7)
    scaled = images / 255.0
    np.testing.assert_allclose(mean, scaled.mean((0, 2, 3)))
    np.testing.assert_allclose(std, scaled.std((0, 2, 3)))
