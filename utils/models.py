"""Model definitions, one builder per name, picked with ``build_model(name, ...)``.

Every model takes uint8 images straight from the loader and normalises them inside
the network, so the arrays in memory stay small (one byte per channel).
"""

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from utils import paths
from utils.backend import keras

# Re-exported: the notebook and its tests name them through models.
from utils.choices import MIN_INPUT_SIZE as MIN_INPUT_SIZE
from utils.choices import MODEL_NAMES as MODEL_NAMES
from utils.choices import PRETRAINED as PRETRAINED

layers = keras.layers


def _inputs(image_size: int) -> keras.KerasTensor:
    return keras.Input(shape=(image_size, image_size, 3), dtype="uint8", name="painting")


def _artist_head(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    # float32 even under a mixed-precision policy, so the softmax and the loss stay exact.
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="artist")(x)


def build_shallow(image_size: int, num_classes: int, filters: int = 32) -> keras.Model:
    """The reference solution: one 3x3 convolution, ReLU, Flatten, a softmax Dense layer."""
    inputs = _inputs(image_size)
    x = layers.Rescaling(1 / 255, name="to_unit_range")(inputs)
    x = layers.Conv2D(filters, 3, padding="same", name="conv")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _artist_head(x, num_classes)
    return keras.Model(inputs, outputs, name="shallow")


def build_lenet(image_size: int, num_classes: int, filters: int = 32) -> keras.Model:
    """The best student-style network: two conv blocks (filters, 2 x filters) and dropout."""
    inputs = _inputs(image_size)
    x = layers.Rescaling(1 / 255, name="to_unit_range")(inputs)
    for block, width in enumerate((filters, 2 * filters), start=1):
        x = layers.Conv2D(width, 5, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = _artist_head(x, num_classes)
    return keras.Model(inputs, outputs, name="lenet")


def build_cnn(image_size: int, num_classes: int, filters: int = 32) -> keras.Model:
    """A small modern CNN: flips, three batch-normalised conv blocks, global average pooling.

    Widths double per block (filters, 2x, 4x). Global average pooling replaces the huge
    Flatten-to-Dense layer of the reference, which is where that network overfits.
    """
    inputs = _inputs(image_size)
    x = layers.Rescaling(1 / 255, name="to_unit_range")(inputs)
    x = layers.RandomFlip("horizontal", name="flip")(x)
    for block, width in enumerate((filters, 2 * filters, 4 * filters), start=1):
        for step in (1, 2):
            x = layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"b{block}_conv{step}"
            )(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"b{block}_bn{step}")(x)
            x = layers.Activation("relu", name=f"b{block}_relu{step}")(x)
        x = layers.MaxPooling2D(2, name=f"b{block}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="average")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = _artist_head(x, num_classes)
    return keras.Model(inputs, outputs, name="cnn")


def _conv_bn_relu(x: keras.KerasTensor, width: int, name: str, strides: int = 1):
    x = layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_brushwork(image_size: int, num_classes: int, filters: int = 32) -> keras.Model:
    """The recipe for real paintings: larger inputs made affordable, plus colour statistics.

    A stride-2 stem halves the image at once, so 128 px crops cost about what 64 px
    images cost the plain CNN, while the first filters still see fine brushwork. One
    convolution (2x ``filters``) follows at that scale, then two batch-normalised blocks
    of two convolutions (4x, 8x ``filters``), each block ending in max pooling, and
    global average pooling. Beside them, the mean and the mean square of each colour
    channel over the whole input (a painter's palette, in six numbers) join the pooled
    features before the softmax layer. Train it on random crops (``crop_size``).
    """
    inputs = _inputs(image_size)
    pixels = layers.Rescaling(1 / 255, dtype="float32", name="to_unit_range")(inputs)
    # The colour statistics average thousands of pixels, so they stay in float32.
    colour_mean = layers.GlobalAveragePooling2D(dtype="float32", name="colour_mean")(pixels)
    squares = layers.Multiply(dtype="float32", name="squares")([pixels, pixels])
    colour_square = layers.GlobalAveragePooling2D(dtype="float32", name="colour_mean_square")(
        squares
    )
    x = layers.RandomFlip("horizontal", name="flip")(pixels)
    x = _conv_bn_relu(x, filters, "stem", strides=2)
    # A second convolution at this largest scale made training about 1.5 times as slow
    # and did no better on held-out paintings (docs/results.md, "Accuracy on real paintings").
    x = _conv_bn_relu(x, 2 * filters, "b1_conv1")
    x = layers.MaxPooling2D(2, name="b1_pool")(x)
    for block, width in enumerate((4 * filters, 8 * filters), start=2):
        x = _conv_bn_relu(x, width, f"b{block}_conv1")
        x = _conv_bn_relu(x, width, f"b{block}_conv2")
        x = layers.MaxPooling2D(2, name=f"b{block}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="average")(x)
    x = layers.Concatenate(name="with_colour")([x, colour_mean, colour_square])
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = _artist_head(x, num_classes)
    return keras.Model(inputs, outputs, name="brushwork")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "shallow": build_shallow,
    "lenet": build_lenet,
    "cnn": build_cnn,
    "brushwork": build_brushwork,
}


@dataclass(frozen=True)
class Backbone:
    """A Keras application used for transfer learning, and how it wants its input."""

    application: Callable[..., keras.Model]
    scale: float
    offset: float
    weights_file: Callable[[int], str]
    weights_url: str


# preprocess_input of each application, written as a Rescaling layer inside the model:
# MobileNetV2 maps [0, 255] to [-1, 1]; EfficientNet normalises internally and takes [0, 255].
TRANSFER: dict[str, Backbone] = {
    "mobilenetv2": Backbone(
        keras.applications.MobileNetV2,
        1 / 127.5,
        -1.0,
        lambda size: (
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_"
            f"{size if size in (96, 128, 160, 192, 224) else 224}_no_top.h5"
        ),
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    ),
    "efficientnetb0": Backbone(
        keras.applications.EfficientNetB0,
        1.0,
        0.0,
        lambda size: "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/",
    ),
}


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights are neither cached nor downloadable; the message says where to put them."""


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def build_transfer(
    name: str,
    image_size: int,
    num_classes: int,
    weights: str | None = "imagenet",
    fine_tune: bool = False,
) -> keras.Model:
    """An ImageNet network with a new softmax head.

    ``weights`` is ``"imagenet"`` (Keras's cache, downloaded if it can be), ``None`` or
    ``""`` for random initialisation (as the tests use), or the path of a weights file
    (relative paths start at the project root).
    With ``fine_tune`` False the backbone is frozen and only the head learns; with True
    every layer learns (use a small learning rate). Batch normalisation stays in
    inference mode either way, as Keras's transfer-learning guide advises.
    """
    backbone = TRANSFER[name]
    if weights and weights != "imagenet":
        weights = str(paths.resolve(weights))
    weights = weights or None
    try:
        base = backbone.application(
            include_top=False, weights=weights, input_shape=(image_size, image_size, 3)
        )
    except Exception as error:
        if weights != "imagenet":
            raise
        file_name = backbone.weights_file(image_size)
        raise WeightsUnavailableError(
            f"Could not load the ImageNet weights for {name} ({type(error).__name__}: {error}).\n"
            f"Without a network, download {backbone.weights_url}{file_name} elsewhere and put it "
            f"at {keras_cache_dir() / file_name}, or pass its path as the weights parameter; "
            "or choose model efficientnet_lite0, whose ImageNet weights come installed."
        ) from error
    base.trainable = fine_tune
    inputs = _inputs(image_size)
    x = layers.Rescaling(backbone.scale, offset=backbone.offset, name="preprocess")(inputs)
    x = layers.RandomFlip("horizontal", name="flip")(x)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="average")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = _artist_head(x, num_classes)
    return keras.Model(inputs, outputs, name=f"{name}_{'finetune' if fine_tune else 'frozen'}")


def build_model(
    name: str,
    image_size: int,
    num_classes: int,
    filters: int = 32,
    weights: str | None = "imagenet",
    fine_tune: bool = False,
) -> keras.Model:
    """Build the model registered under ``name`` for square RGB images of ``image_size``.

    ``filters`` applies to the networks trained from scratch; ``weights`` to the ImageNet
    ones, and ``fine_tune`` to those Keras downloads (``mobilenetv2``, ``efficientnetb0``).
    """
    if name in BUILDERS:
        return BUILDERS[name](image_size, num_classes, filters)
    if name in PRETRAINED:
        raise ValueError(
            f"{name} is built and trained in section 7 of the chapter (transfer learning)"
        )
    if name in TRANSFER:
        return build_transfer(name, image_size, num_classes, weights, fine_tune)
    raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


DESCRIPTIONS = {
    "shallow": (
        "The `shallow` network is the reference solution. One layer of 3x3 convolution "
        "filters with ReLU looks at small patches of the painting. `Flatten` turns every "
        "filter response at every pixel into one long vector, and a single `Dense` softmax "
        "layer maps it to one probability per artist. Almost all its weights sit in that "
        "last layer, which can memorise where the colours sit in each training painting "
        "instead of learning what a brush stroke looks like."
    ),
    "lenet": (
        "The `lenet` network is the best of the student solutions. Two blocks of a 5x5 "
        "convolution and max pooling, with `filters` and twice as many filters, find "
        "strokes and then larger patterns. `Flatten`, a `Dense` layer of 128 units and "
        "`Dropout` of half of them follow, and a `Dense` softmax layer gives one "
        "probability per artist. Like the reference, most of its weights sit after `Flatten`."
    ),
    "cnn": (
        "The `cnn` network is a small modern CNN. `Rescaling` maps the pixel values 0 to "
        "255 onto 0 to 1. `RandomFlip` shows the network mirrored paintings while training: "
        "a mirrored Monet is still a Monet. Three blocks follow. In each, two 3x3 "
        "convolutions slide small learned filters over the image; `BatchNormalization` "
        "keeps their outputs in a stable range, and ReLU keeps the positive responses. "
        "`MaxPooling` ends each block by halving the image, while the next block has twice "
        "as many filters: early layers see strokes, later ones larger patterns. "
        "`GlobalAveragePooling` averages each filter over the whole painting (how much of "
        "this texture is there?). `Dropout` silences 30% of those averages at random while "
        "training, so that no single feature is relied on. A `Dense` softmax layer gives "
        "one probability per artist."
    ),
    "brushwork": (
        "The `brushwork` network is this project's recipe for real paintings. It is built "
        "like `cnn`, but its first convolution moves in steps of two, halving the image at "
        "once, so it can afford larger inputs that keep more brushwork. One convolution "
        "works at that scale, then two blocks of two convolutions, each block ending in max "
        "pooling, then global average pooling. Beside them, the mean and the mean square of "
        "each colour channel (the palette, in six numbers) go straight to the last layer. "
        "`Dropout` and a `Dense` softmax layer give one probability per artist. It is meant "
        "to be trained on random crops (`crop_size`)."
    ),
    "efficientnet_lite0": (
        "The `efficientnet_lite0` network was first trained on ImageNet, 1.3 million "
        "photographs of 1,000 kinds of things, from cats to espresso cups. Its 16 blocks "
        "have learned edges, textures and shapes that help with paintings too. Those "
        "learned filters are kept as they are (frozen features) and a new `Dense` softmax "
        "layer for the artists goes on top: first only that layer learns, then the top "
        "`unfreeze_blocks` blocks adapt too, at the small `fine_tune_learning_rate`. Its "
        "batch normalisation keeps the statistics it learned on ImageNet throughout. The "
        "weights come installed with the project, so it works offline."
    ),
    **{
        name: (
            f"The `{name}` network was first trained on the ImageNet photographs. Its layers "
            "are kept, and a new `Dense` softmax layer for the artists goes on top. With "
            "`fine_tune = False` only that new layer learns; with `True` the pretrained "
            "layers adapt too. Its ImageNet weights are a file you supply "
            "(see docs/attribution.md)."
        )
        for name in TRANSFER
    },
}


def source(name: str) -> str:
    """The Python source that builds the network ``name``: its builder, after the module's
    private helpers that the builder calls. EfficientNet-Lite0 with its head is written
    out in the chapter itself (section 7)."""
    if name in PRETRAINED:
        raise ValueError(f"{name} is built in section 7 of the chapter, not in utils.models")
    builder = BUILDERS.get(name) or build_transfer
    text = inspect.getsource(builder)
    helpers = [
        function
        for helper, function in vars(sys.modules[__name__]).items()
        if helper.startswith("_") and inspect.isfunction(function) and f"{helper}(" in text
    ]
    return "\n\n".join(inspect.getsource(function) for function in [*helpers, builder])


def layer_table(model: keras.Model) -> str:
    """One line per layer: name, type, output shape and parameter count, then the total.

    Unlike ``model.summary()`` it has a fixed width, so notebook outputs compare exactly.
    """
    width = max(16, *(len(layer.name) + 2 for layer in model.layers))
    rows = [f"{'Layer':<{width}}{'Type':<24}{'Output shape':<22}{'Params':>10}"]
    for layer in model.layers:
        shape = str(tuple(layer.output.shape[1:]))
        rows.append(
            f"{layer.name:<{width}}{type(layer).__name__:<24}{shape:<22}{layer.count_params():>10,}"
        )
    rows.append(f"{'Total parameters':<{width + 46}}{model.count_params():>10,}")
    return "\n".join(rows)
