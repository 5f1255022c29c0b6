"""The values the notebook's parameters may take, in a module that loads nothing heavy.

``parameters.validate`` checks a run's settings against these lists in the runner, in about
a second, before a kernel or TensorFlow starts. The modules that use each list (``models``,
``training``, ``images``, ``loading``, ``pretrained``) take it from here, so the two never
disagree.
"""

# Networks trained from scratch, in the order "Going further" shows them.
FROM_SCRATCH = ("shallow", "lenet", "cnn", "brushwork")
# Networks that train in two phases: the new head on the frozen base, then the top blocks.
PRETRAINED = ("efficientnet_lite0",)
# Keras applications whose ImageNet weights Keras downloads.
DOWNLOADED = ("mobilenetv2", "efficientnetb0")
MODEL_NAMES = (*FROM_SCRATCH, *PRETRAINED, *DOWNLOADED)
# The smallest input side each network takes: its poolings and strides must leave a pixel,
# and Keras builds its ImageNet applications from 32 px up.
MIN_INPUT_SIZE = {
    "shallow": 1,
    "lenet": 4,
    "cnn": 8,
    "brushwork": 16,
    "efficientnet_lite0": 8,
    "mobilenetv2": 32,
    "efficientnetb0": 32,
}
# The sides, in pixels, a painting may be resized to.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024
# Far beyond any sensible run, and small enough for every count computed from them.
MAX_EPOCHS, MAX_TRAINING_BUDGET, MAX_BATCH_SIZE = 100_000, 10**12, 65_536
# EfficientNet-Lite0's blocks of convolutions, which fine-tuning unfreezes from the top.
PRETRAINED_BLOCKS = 16
# The blocks whose output is a residual sum (blockN_add), which section 7 can also pool
# beside the last feature maps (middle_block).
MIDDLE_BLOCKS = (2, 4, 6, 7, 9, 10, 12, 13, 14)
OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
DISTRIBUTIONS = ("auto", "none", "mirrored")
RESIZE_MODES = ("squash", "crop")
DATA_MODES = ("auto", "memory", "disk")


def trains_on_features(unfreeze_blocks: int) -> bool:
    """Whether the chapter's transfer learning (section 7) never trains the pretrained base
    (``unfreeze_blocks`` 0), so that its features are computed once and only the head learns."""
    return unfreeze_blocks == 0


# The temperature that divides the log-probabilities (utils/calibration.py): 1 leaves them as
# the network gives them.
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
