"""Model definitions, one builder per name, picked with ``build_model(name, ...)``.

Every model takes uint8 images straight from the loader and normalises them inside
the network, so the arrays in memory stay small (one byte per channel).
"""

from collections.abc import Callable

from utils.backend import keras

layers = keras.layers


def _inputs(image_size: int) -> keras.KerasTensor:
    return keras.Input(shape=(image_size, image_size, 3), dtype="uint8", name="painting")


def build_shallow(image_size: int, num_classes: int, filters: int = 32) -> keras.Model:
    """The reference solution: one 3x3 convolution, ReLU, Flatten, a softmax Dense layer."""
    inputs = _inputs(image_size)
    x = layers.Rescaling(1 / 255, name="to_unit_range")(inputs)
    x = layers.Conv2D(filters, 3, padding="same", name="conv")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="artist")(x)
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
    outputs = layers.Dense(num_classes, activation="softmax", name="artist")(x)
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
    outputs = layers.Dense(num_classes, activation="softmax", name="artist")(x)
    return keras.Model(inputs, outputs, name="cnn")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "shallow": build_shallow,
    "lenet": build_lenet,
    "cnn": build_cnn,
}


def build_model(name: str, image_size: int, num_classes: int, filters: int = 32) -> keras.Model:
    """Build the model registered under ``name`` for square RGB images of ``image_size``."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(BUILDERS)}")
    return BUILDERS[name](image_size, num_classes, filters)


def layer_table(model: keras.Model) -> str:
    """One line per layer: name, type, output shape and parameter count, then the total.

    Unlike ``model.summary()`` it has a fixed width, so notebook outputs compare exactly.
    """
    rows = [f"{'Layer':<16}{'Type':<24}{'Output shape':<22}{'Params':>10}"]
    for layer in model.layers:
        shape = str(tuple(layer.output.shape[1:]))
        rows.append(
            f"{layer.name:<16}{type(layer).__name__:<24}{shape:<22}{layer.count_params():>10,}"
        )
    rows.append(f"{'Total parameters':<62}{model.count_params():>10,}")
    return "\n".join(rows)
