"""Grad-CAM: which parts of a painting pushed the model towards an artist.

Grad-CAM (Selvaraju et al., 2017) weights the feature maps of the last convolutional
layer by how much each one raises the chosen artist's score, sums them, and keeps the
positive part: a coarse map of the regions that speak *for* that artist.
"""

import cv2
import numpy as np

from utils.backend import keras, tf

_NOT_FEATURE_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Rescaling,
    keras.layers.RandomFlip,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
)


def last_feature_layer(model: keras.Model) -> str:
    """Name of the last layer with a spatial (height x width x channels) output of features."""
    for layer in reversed(model.layers):
        if len(layer.output.shape) == 4 and not isinstance(layer, _NOT_FEATURE_LAYERS):
            return layer.name
    raise ValueError(f"Model {model.name!r} has no convolutional feature layer for Grad-CAM.")


def grad_cam(
    model: keras.Model, image: np.ndarray, class_index: int, layer_name: str | None = None
) -> np.ndarray:
    """A heatmap in [0, 1] of ``image``'s height and width for the class ``class_index``.

    ``image`` is one uint8 RGB array as the model takes it. The gradient is taken of the
    log-probability, which does not vanish when the softmax is saturated.
    """
    layer = model.get_layer(layer_name or last_feature_layer(model))
    probe = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    batch = tf.convert_to_tensor(image[np.newaxis])
    with tf.GradientTape() as tape:
        features, probabilities = probe(batch, training=False)
        score = tf.math.log(probabilities[:, class_index] + 1e-9)
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0].numpy()
    if cam.max() > 0:
        cam = cam / cam.max()
    height, width = image.shape[:2]
    return np.clip(cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
