"""Every registered model builds, takes uint8 images and gives probabilities."""

import numpy as np
import pytest

from utils import models


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_model_takes_uint8_and_returns_probabilities(name):
    model = models.build_model(name, 32, 4, filters=8)
    batch = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    proba = np.asarray(model(batch, training=False))
    assert proba.shape == (3, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert model.inputs[0].dtype == "uint8"


def test_shallow_is_the_reference_architecture():
    model = models.build_model("shallow", 200, 10, filters=32)
    conv_params = 3 * 3 * 3 * 32 + 32
    dense_params = 200 * 200 * 32 * 10 + 10
    assert model.count_params() == conv_params + dense_params
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Rescaling",
        "Conv2D",
        "Activation",
        "Flatten",
        "Dense",
    ]


def test_cnn_is_small_and_pools_globally():
    model = models.build_model("cnn", 64, 10, filters=32)
    assert model.count_params() < 400_000
    assert "GlobalAveragePooling2D" in {type(layer).__name__ for layer in model.layers}


def test_unknown_model_is_refused_with_choices():
    with pytest.raises(ValueError, match="shallow"):
        models.build_model("resnet9000", 32, 10)


def test_layer_table_lists_layers_and_total():
    model = models.build_model("shallow", 16, 3, filters=4)
    table = models.layer_table(model).splitlines()
    assert table[0].split() == ["Layer", "Type", "Output", "shape", "Params"]
    assert any(line.startswith("conv") and "(16, 16, 4)" in line for line in table)
    assert table[-1].split()[-1] == f"{model.count_params():,}"
