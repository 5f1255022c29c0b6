"""Grad-CAM works for every model the project offers and returns a map in [0, 1]."""

import numpy as np
import pytest
from notebook_training import (
    build_like_the_notebook,
    compile_like_the_notebook,
    fit_like_the_notebook,
)

from utils import explain, models, training
from utils.backend import tf


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_grad_cam_shape_and_range(name):
    model = build_like_the_notebook(name, 32, 3, filters=4, weights=None)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    heatmap = explain.grad_cam(model, image, class_index=1)
    assert heatmap.shape == (32, 32)
    assert heatmap.dtype == np.float32
    assert heatmap.min() >= 0 and heatmap.max() <= 1


@pytest.fixture
def restore_float32():
    yield
    training.set_precision("float32")


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_grad_cam_is_float32_under_mixed_precision(name, precision, restore_float32):
    training.set_precision(precision)
    model = build_like_the_notebook(name, 32, 3, filters=4, weights=None)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    heatmap = explain.grad_cam(model, image, class_index=2)
    assert heatmap.dtype == np.float32
    assert heatmap.shape == (32, 32)
    assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 1


def test_feature_layer_is_the_last_convolutional_stage():
    assert explain.last_feature_layer(models.build_model("shallow", 16, 3)) == "relu"
    assert explain.last_feature_layer(models.build_model("cnn", 16, 3)) == "b3_relu2"
    assert explain.last_feature_layer(models.build_model("lenet", 16, 3)) == "conv2"


def test_grad_cam_points_at_the_evidence(tmp_path):
    """A model trained to spot a bright square must look at the square."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 60, (64, 24, 24, 3), dtype=np.uint8)
    y = np.arange(64) % 2
    for i in np.flatnonzero(y == 1):
        top, left = rng.integers(0, 16, 2)
        X[i, top : top + 8, left : left + 8] = 255
    training.set_seed(0)
    model = compile_like_the_notebook(models.build_model("cnn", 24, 2, filters=8), "adam", 0.01)
    fit_like_the_notebook(model, X, y, None, 8, 16, tmp_path)
    image = np.full((24, 24, 3), 30, dtype=np.uint8)
    image[2:10, 12:20] = 255
    heatmap = explain.grad_cam(model, image, class_index=1)
    inside = heatmap[2:10, 12:20].mean()
    outside = np.delete(
        heatmap.reshape(-1), np.ravel_multi_index(np.mgrid[2:10, 12:20].reshape(2, -1), (24, 24))
    ).mean()
    assert inside > outside


def test_model_without_feature_maps_is_refused():
    from utils.backend import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="no convolutional feature layer"):
        explain.last_feature_layer(model)


def test_feature_layer_skips_the_colour_branch():
    assert explain.last_feature_layer(models.build_model("brushwork", 32, 3)) == "b3_conv2_relu"


def test_saved_cases_come_back_as_they_were(tmp_path):
    maps = np.random.default_rng(0).random((2, 8, 8), dtype=np.float32)
    cases = [("Monet", "Monet", np.float32(0.9), maps[0]), ("Degas", "Renoir", 0.4, maps[1])]
    explain.save_cases(tmp_path / "grad_cam" / "cases.npz", cases)
    loaded = explain.load_cases(tmp_path / "grad_cam" / "cases.npz")
    assert [(t, p) for t, p, _, _ in loaded] == [("Monet", "Monet"), ("Degas", "Renoir")]
    assert [float(p) for _, _, p, _ in loaded] == [float(np.float32(0.9)), float(np.float32(0.4))]
    assert all(np.array_equal(m, maps[i]) for i, (_, _, _, m) in enumerate(loaded))


def test_no_cases_save_and_load(tmp_path):
    explain.save_cases(tmp_path / "cases.npz", [])
    assert explain.load_cases(tmp_path / "cases.npz") == []


def test_grad_cam_reads_the_last_maps_of_a_base_that_also_gives_a_middle_blocks():
    """Section 7 with ``middle_block``: the nested base has two outputs, the last maps first;
    Grad-CAM watches those, and runs the network exactly as Keras does."""
    network = build_like_the_notebook("efficientnet_lite0", 64, 3, middle_block=12)
    assert explain.last_feature_layer(network) == "efficientnet_lite0"
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with tf.GradientTape() as tape:
        maps, probabilities = explain._features_and_probabilities(
            network, network.get_layer("efficientnet_lite0"), tf.convert_to_tensor(images), tape
        )
    assert tuple(maps.shape) == (2, 2, 2, 1280)
    np.testing.assert_allclose(probabilities, network.predict(images, verbose=0), atol=1e-6)
    heatmap = explain.grad_cam(network, images[0], class_index=1)
    assert heatmap.shape == (64, 64) and heatmap.dtype == np.float32
    assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 1
