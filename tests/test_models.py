"""Every registered model builds, takes uint8 images and gives probabilities."""

import nbformat
import numpy as np
import pytest
from notebook_training import fit_like_the_notebook, notebook_cell, transfer_section

from utils import choices, models, pretrained, run_notebook
from utils.backend import keras, tf


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


def test_brushwork_is_the_benchmarked_recipe_network():
    model = models.build_model("brushwork", 128, 10, filters=32)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # (name, output side, filters): the stride-2 stem, one convolution at that scale,
    # then two blocks of two, each block after a halving.
    assert [(c.name, c.output.shape[1], c.filters) for c in convolutions] == [
        ("stem", 64, 32),
        ("b1_conv1", 64, 64),
        ("b2_conv1", 32, 128),
        ("b2_conv2", 32, 128),
        ("b3_conv1", 16, 256),
        ("b3_conv2", 16, 256),
    ]
    assert model.count_params() == 1_131_302
    assert model.get_layer("with_colour").output.shape[-1] == 256 + 6


def test_unknown_model_is_refused_with_choices():
    with pytest.raises(ValueError, match="shallow"):
        models.build_model("resnet9000", 32, 10)


def test_layer_table_lists_layers_and_total():
    model = models.build_model("shallow", 16, 3, filters=4)
    table = models.layer_table(model).splitlines()
    assert table[0].split() == ["Layer", "Type", "Output", "shape", "Params"]
    assert any(line.startswith("conv") and "(16, 16, 4)" in line for line in table)
    assert table[-1].split()[-1] == f"{model.count_params():,}"


@pytest.mark.parametrize("name", sorted(models.TRANSFER))
# Fine-tuning trains the whole downloaded-weights backbone (a minute for both): make test-all.
@pytest.mark.parametrize("fine_tune", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_transfer_models_build_and_train_a_step(name, fine_tune, tmp_path):
    from notebook_training import compile_like_the_notebook, fit_like_the_notebook

    model = models.build_model(name, 32, 3, weights=None, fine_tune=fine_tune)
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert base.trainable is fine_tune
    assert model.name == f"{name}_{'finetune' if fine_tune else 'frozen'}"
    before = [w.copy() for w in model.get_weights()]
    compile_like_the_notebook(model, "adam", 0.01)
    X = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    fit_like_the_notebook(model, X, np.array([0, 1, 2, 0]), None, 1, 4, tmp_path)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert changed[-1]  # the new head always learns
    assert (sum(changed) > 2) is fine_tune  # the backbone only learns when fine-tuning
    assert model.predict(X, verbose=0).shape == (4, 3)


def test_transfer_preprocessing_matches_each_backbone():
    mobilenet = models.build_model("mobilenetv2", 32, 3, weights=None)
    scaled = mobilenet.get_layer("preprocess")(np.array([[[[0, 127.5, 255]]]], dtype="float32"))
    np.testing.assert_allclose(np.asarray(scaled), [[[[-1, 0, 1]]]], atol=1e-6)
    efficientnet = models.build_model("efficientnetb0", 32, 3, weights=None)
    kept = efficientnet.get_layer("preprocess")(np.array([[[[0, 127.5, 255]]]], dtype="float32"))
    np.testing.assert_allclose(np.asarray(kept), [[[[0, 127.5, 255]]]])


def test_missing_imagenet_weights_name_the_file_and_the_folder(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(models.WeightsUnavailableError) as error:
        models.build_model("mobilenetv2", 128, 10, weights="imagenet")
    message = str(error.value)
    file_name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    assert file_name in message
    assert str(tmp_path / "keras-home" / "models" / file_name) in message
    assert "no network" in message
    assert "efficientnet_lite0" in message  # the choice that needs no download


def test_layer_table_columns_stay_aligned_with_long_layer_names():
    network = transfer_section(unfreeze_blocks=5)["transfer_network"]
    table = models.layer_table(network).split("\n")
    assert len({line.index("(") for line in table[1:-1]}) == 1
    assert table[2].split()[:2] == ["flip", "RandomFlip"]
    assert table[3].split()[:2] == ["efficientnet_lite0", "Functional"]


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_source_is_the_code_that_builds_the_network(name):
    """What models.source(name) shows a student, pasted with keras and layers imported,
    builds the same network as build_model: the same layers, shapes and weight count."""
    namespace = {"keras": keras, "layers": keras.layers}
    exec(models.source(name), namespace)
    pasted = namespace[models.BUILDERS[name].__name__](48, 10, 8)
    built = models.build_model(name, 48, 10, filters=8)
    assert models.layer_table(pasted) == models.layer_table(built)
    assert pasted.count_params() == built.count_params()


def test_efficientnet_lite0_is_built_by_the_chapter_not_by_utils():
    with pytest.raises(ValueError, match="section 7"):
        models.build_model("efficientnet_lite0", 32, 3)
    with pytest.raises(ValueError, match="section 7"):
        models.source("efficientnet_lite0")


def test_the_chapters_transfer_learning_trains_its_head_then_its_top_blocks(tmp_path):
    """Phase one moves only the new head; after the chapter's unfreezing loop, phase two
    moves the unfrozen top blocks too, while the lower blocks and every batch-normalisation
    statistic keep their ImageNet values."""
    section = transfer_section(unfreeze_blocks=2, weights="imagenet")
    model, base = section["transfer_network"], section["base"]
    assert not base.trainable
    imagenet = {w.path: w.numpy().copy() for w in base.weights}
    X, y = section["X_train"], section["y_train"]
    head_before = model.get_layer("artist").get_weights()[0].copy()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    fit_like_the_notebook(model, X, y, None, 1, 4, tmp_path)
    assert not np.array_equal(head_before, model.get_layer("artist").get_weights()[0])
    assert all(np.array_equal(w.numpy(), imagenet[w.path]) for w in base.weights)

    exec(notebook_cell("unfreeze"), section)
    (tmp_path / "fine-tune").mkdir()
    fit_like_the_notebook(model, X, y, None, 1, 4, tmp_path / "fine-tune")
    moved = {w.path for w in base.weights if not np.array_equal(w.numpy(), imagenet[w.path])}
    assert any(path.startswith("block15_") for path in moved)
    assert any(path.startswith("head_conv") for path in moved)
    assert not any(path.startswith(("block13_", "stem_")) for path in moved)
    assert not any("_bn" in path for path in moved)


@pytest.mark.parametrize(
    ("unfreeze_blocks", "learning"),
    [
        (0, ["head_conv"]),
        (
            2,
            [
                *("block14_expand_conv", "block14_dwconv", "block14_project_conv"),
                *("block15_expand_conv", "block15_dwconv", "block15_project_conv", "head_conv"),
            ],
        ),
        (16, 2 + 15 * 3 + 1),  # block 0 has no expansion convolution
    ],
)
@pytest.mark.parametrize("middle_block", [0, 12])
def test_the_chapters_unfreezing_loop_trains_the_top_blocks_and_no_batch_norm(
    unfreeze_blocks, learning, middle_block
):
    section = transfer_section(unfreeze_blocks, middle_block=middle_block)
    exec(notebook_cell("unfreeze"), section)
    base = section["base"]
    trainable = [layer.name for layer in base.layers if layer.trainable and layer.weights]
    assert trainable == learning if isinstance(learning, list) else len(trainable) == learning
    batch_norms = [
        layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert not any(layer.trainable for layer in batch_norms)


@pytest.mark.parametrize(("middle_block", "features"), [(0, 1280), (12, 1280 + 192)])
def test_a_head_on_frozen_features_is_the_networks_own_head(tmp_path, middle_block, features):
    """The chapter's quick recipe (``unfreeze_blocks`` 0) trains a head on features
    computed once: the head's layers are the network's, so the network on images equals the
    head on the features of those images, after training too; with ``middle_block`` the
    features hold that block's pooled maps after the last ones'."""
    namespace = transfer_section(unfreeze_blocks=0, middle_block=middle_block)
    namespace |= {"run_dir": tmp_path, "train_data": None, "validation_data": None}
    namespace["fine_tune_epochs"] = 0
    exec(notebook_cell("features"), namespace)
    head, network = namespace["learner"], namespace["transfer_network"]
    assert head.get_layer("artist") is network.get_layer("artist")
    assert head.input_shape == (None, features)
    features = namespace["train_features"]
    head.compile(optimizer="adam", loss="categorical_crossentropy")
    head.fit(features, np.eye(3)[namespace["y_train"]], epochs=2, verbose=0)
    np.testing.assert_allclose(
        head.predict(features, verbose=0),
        network.predict(namespace["X_train"], verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


def notebook_network_cell() -> str:
    """The source of the chapter's cell that writes out the ``cnn`` network in Keras."""
    chapter = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    marker = 'network = keras.Model(inputs, outputs, name="cnn")'
    (source,) = [c.source for c in chapter.cells if c.cell_type == "code" and marker in c.source]
    return source


def test_the_network_cell_of_the_chapter_builds_build_cnn_exactly():
    """The cell a student edits and build_cnn (which the tests and the results use) agree:
    the same layers with the same settings and, from the same seed, the same first weights."""
    namespace = {
        "keras": keras,
        "layers": keras.layers,
        "strategy": tf.distribute.get_strategy(),
        "crop_size": 0,
        "image_size": 48,
        "num_classes": 10,
        "filters": 16,
    }
    keras.utils.set_random_seed(3)
    exec(notebook_network_cell(), namespace)
    from_cell = namespace["network"]
    keras.utils.set_random_seed(3)
    from_utils = models.build_cnn(48, 10, filters=16)

    assert models.layer_table(from_cell) == models.layer_table(from_utils)
    assert [layer.get_config() for layer in from_cell.layers] == [
        layer.get_config() for layer in from_utils.layers
    ]
    for mine, theirs in zip(from_cell.get_weights(), from_utils.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_lists_of_choices_name_what_the_modules_build():
    """``utils/choices.py`` holds the parameters' choices without loading TensorFlow; they
    must name exactly what ``models`` and ``pretrained`` build."""
    from utils import choices

    assert tuple(models.BUILDERS) == choices.FROM_SCRATCH
    assert tuple(models.TRANSFER) == choices.DOWNLOADED
    assert pretrained.NUM_BLOCKS == choices.PRETRAINED_BLOCKS
    assert set(choices.MIN_INPUT_SIZE) == set(choices.MODEL_NAMES)


def test_the_middle_blocks_offered_are_lite0s_residual_sums():
    """``choices.MIDDLE_BLOCKS`` (which the runner checks without building a network) names
    exactly the blocks whose ``blockN_add`` section 7 can pool."""
    base = pretrained.build_efficientnet_lite0(32, weights=False)
    added = [int(layer.name[5:-4]) for layer in base.layers if layer.name.endswith("_add")]
    assert tuple(added) == choices.MIDDLE_BLOCKS
