"""Grad-CAM: which parts of a painting pushed the model towards an artist.

Grad-CAM (Selvaraju et al., 2017) weights the feature maps of the last convolutional
layer by how much each one raises the chosen artist's score, sums them, and keeps the
positive part: a coarse map of the regions that speak *for* that artist.
"""

import io
import os
from pathlib import Path

import cv2
import numpy as np

from utils import runs
from utils.backend import keras, tf

# Layers whose 4-D output is a stack of learned feature maps; a nested Keras application
# (an ImageNet backbone) counts as one.
_FEATURE_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.BatchNormalization,
    keras.Model,
)


def last_feature_layer(model: keras.Model) -> str:
    """Name of the last layer that outputs convolutional feature maps (height x width x depth)."""
    for layer in reversed(model.layers):
        if isinstance(layer, _FEATURE_LAYERS) and len(_first(layer.output).shape) == 4:
            return layer.name
    raise ValueError(f"Model {model.name!r} has no convolutional feature layer for Grad-CAM.")


def _first(outputs: object) -> object:
    """``outputs`` itself, or the first of several: a backbone that also gives a middle
    block's maps (section 7's ``middle_block``) gives its last maps first."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _features_and_probabilities(model: keras.Model, feature_layer, batch, tape):
    """Run ``batch`` through ``model``, returning the watched feature maps and the output.

    A top-level layer's output is reachable through a probe model, whatever the graph.
    A nested backbone (a Keras application inside the model) only knows its own inputs, so
    the model's graph is run here step by step, as Keras runs it, and the backbone's first
    output (its last feature maps) is watched on the way.
    """
    if not isinstance(feature_layer, keras.Model):
        probe = keras.Model(model.inputs, [feature_layer.output, model.outputs[0]])
        return probe(batch, training=False)
    watched = []

    def inference(operation):
        def call(*args, **kwargs):
            if isinstance(operation, keras.layers.Layer):
                kwargs["training"] = False
            outputs = operation(*args, **kwargs)
            if operation is feature_layer:
                first = _first(outputs)
                tape.watch(first)
                watched.append(first)
            return outputs

        return call

    # Functional.call runs the graph this way; here each step also gets training=False.
    outputs = model._run_through_graph([batch], operation_fn=inference)
    return watched[0], keras.tree.flatten(outputs)[0]


def grad_cam(
    model: keras.Model, image: np.ndarray, class_index: int, layer_name: str | None = None
) -> np.ndarray:
    """A heatmap in [0, 1] of ``image``'s height and width for the class ``class_index``.

    ``image`` is one uint8 RGB array as the model takes it. The gradient is taken of the
    log-probability, which does not vanish when the softmax is saturated. The map is
    float32 whatever precision the model computes in.
    """
    feature_layer = model.get_layer(layer_name or last_feature_layer(model))
    batch = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        features, probabilities = _features_and_probabilities(model, feature_layer, batch, tape)
        score = tf.math.log(probabilities[:, class_index] + 1e-9)
    # Under a mixed-precision policy both are 16-bit; NumPy and OpenCV get float32.
    gradients = tf.cast(tape.gradient(score, features), tf.float32)
    features = tf.cast(features, tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0].numpy()
    if cam.max() > 0:
        cam = cam / cam.max()
    height, width = image.shape[:2]
    return np.clip(cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


# A Grad-CAM case as the notebook explains it: (true artist, predicted artist, probability
# of the prediction, the map for the prediction).
Case = tuple[str, str, float, np.ndarray]


def save_cases(path: str | os.PathLike[str], cases: list[Case]) -> None:
    """Keep the explained paintings' answers and maps (``.npz``, no pickles), so what is said
    about them can be checked against the maps themselves."""
    true, predicted, probability, maps = zip(*cases, strict=True) if cases else ([],) * 4
    buffer = io.BytesIO()
    np.savez(
        buffer,
        true=np.array(true, dtype=str),
        predicted=np.array(predicted, dtype=str),
        probability=np.array(probability, dtype=np.float32),
        maps=np.array(maps, dtype=np.float32),
    )
    runs.write_bytes(Path(path), buffer.getvalue())


def load_cases(path: str | os.PathLike[str]) -> list[Case]:
    """The cases ``save_cases`` kept, in their order."""
    with np.load(path, allow_pickle=False) as stored:
        return list(
            zip(
                stored["true"].tolist(),
                stored["predicted"].tolist(),
                stored["probability"],
                stored["maps"],
                strict=True,
            )
        )
