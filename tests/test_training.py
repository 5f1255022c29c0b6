"""Seeding makes training repeatable; batches, randomness and resuming depend only on the
seed and the epoch; precision, optimizers and divergence behave as documented."""

import errno
import json
import resource
from pathlib import Path

import numpy as np
import pytest
from notebook_training import compile_like_the_notebook, fit_like_the_notebook, make_optimizer

from utils import choices, models, training
from utils.backend import keras, tf


def tiny_problem():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    y = np.arange(24) % 3
    X[y == 1, :, :, 0] = 255  # a learnable signal: class 1 is red
    return X, y


def fit_once(seed, folder: Path):
    folder.mkdir(exist_ok=True)
    training.set_seed(seed)
    model = compile_like_the_notebook(models.build_model("cnn", 16, 3, filters=4), "adam", 0.01)
    X, y = tiny_problem()
    history, _ = fit_like_the_notebook(model, X, y, (X[:6], y[:6]), 2, 8, folder)
    return model, history


def test_same_seed_same_weights_and_history(tmp_path):
    first_model, first = fit_once(3, tmp_path / "first")
    second_model, second = fit_once(3, tmp_path / "second")
    assert first == second
    for a, b in zip(first_model.get_weights(), second_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_history_has_training_and_validation_metrics(tmp_path):
    _, history = fit_once(4, tmp_path)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in history.values())


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sgd", keras.optimizers.SGD),
        ("adam", keras.optimizers.Adam),
        ("adamw", keras.optimizers.AdamW),
    ],
)
def test_the_notebooks_optimizers_use_the_learning_rate(name, kind):
    """Every choice the parameters accept (utils.choices) is an optimizer of that name."""
    assert name in choices.OPTIMIZERS
    optimizer = make_optimizer(name, 0.05, 0)
    assert type(optimizer) is kind
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


def epoch_batches(X, y, seed, first_epoch=0):
    batches = training.training_batches(
        X,
        y,
        3,
        8,
        num_epochs=3,
        seed=seed,
        first_epoch=first_epoch,
        crop_size=12,
        colour_jitter=0.2,
    )
    return [(images.numpy(), labels.numpy()) for images, labels in batches]


def test_training_batches_crop_jitter_and_depend_only_on_seed_and_epoch():
    X, y = tiny_problem()
    batches = epoch_batches(X, y, seed=5)
    assert len(batches) == 3 * 3
    images, labels = batches[0]
    assert images.shape == (8, 12, 12, 3) and images.dtype == np.uint8
    assert labels.shape == (8, 3) and np.all(labels.sum(axis=1) == 1)
    for (a, la), (b, lb) in zip(batches, epoch_batches(X, y, seed=5), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    for (a, _), (b, _) in zip(batches[3:], epoch_batches(X, y, seed=5, first_epoch=1), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(batches[0][0], epoch_batches(X, y, seed=6)[0][0])
    assert not np.array_equal(batches[0][0], batches[3][0])


def test_each_epoch_visits_every_image_once():
    orders = [training.epoch_order(24, seed=1, epoch=epoch) for epoch in range(3)]
    for order in orders:
        assert sorted(order) == list(range(24))
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders[2], training.epoch_order(24, seed=1, epoch=2))


def test_augment_without_crop_or_jitter_leaves_images_alone():
    X, _ = tiny_problem()
    same = training.augment(X[:4], np.random.default_rng(0), crop_size=0, colour_jitter=0.0)
    np.testing.assert_array_equal(same, X[:4])


def test_random_states_are_the_layers_seed_generators():
    model = models.build_model("brushwork", 16, 3, filters=4)
    states = training.random_states(model)
    assert len(states) == 2  # RandomFlip and Dropout
    assert all("seed_generator" in state.path for state in states)


def test_training_on_crops_measures_centre_crops(tmp_path):
    X, y = tiny_problem()
    X = np.pad(X, ((0, 0), (2, 2), (2, 2), (0, 0)))
    training.set_seed(1)
    model = compile_like_the_notebook(
        models.build_model("brushwork", 16, 3, filters=4),
        "adamw",
        0.01,
        label_smoothing=0.1,
        decay_steps=6,
    )
    history, _ = fit_like_the_notebook(model, X, y, (X, y), 2, 8, tmp_path, crop_size=16)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    dataset = training.validation_data(X, y, 3, crop_size=16, batch_size=10)
    assert int(dataset.cardinality()) == 3
    batches = list(dataset)
    assert [tuple(images.shape) for images, _ in batches] == [(10, 16, 16, 3)] * 2 + [
        (4, 16, 16, 3)
    ]
    labels = np.concatenate([labels for _, labels in batches])
    np.testing.assert_array_equal(labels.argmax(axis=1), y)
    np.testing.assert_array_equal(batches[0][0], training.centre_crop(X[:10], 16))


def test_a_budget_in_images_caps_the_epochs_by_the_data_size():
    assert training.epochs_for_budget(90, 0, 971) == 90
    assert training.epochs_for_budget(90, 87_390, 971) == 90
    assert training.epochs_for_budget(90, 87_389, 971) == 89  # rounds down: never over budget
    assert training.epochs_for_budget(90, 87_390, 4_000) == 21
    assert training.epochs_for_budget(30, 18_449, 971) == 19
    assert training.epochs_for_budget(1, 87_000, 4_000) == 1


def test_section_7s_epochs_warn_when_the_budget_leaves_nothing_to_fine_tune(recwarn):
    assert training.transfer_epochs(2, 8, 15_000, 971) == (2, 10)
    assert training.transfer_epochs(2, 8, 15_000, 4_000) == (2, 3)
    assert training.transfer_epochs(30, 0, 0, 971) == (30, 30)  # nothing asked: no warning
    assert not recwarn.list
    with pytest.warns(UserWarning, match=r"allows 3 epoch\(s\) of 4,000 paintings, all of them"):
        assert training.transfer_epochs(5, 8, 15_000, 4_000) == (3, 3)
    assert training.epochs_for_budget(90, 10, 971) == 1


def test_centre_crop():
    X = np.arange(2 * 5 * 7 * 3).reshape(2, 5, 7, 3)
    cropped = training.centre_crop(X, 3)
    assert cropped.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(cropped, X[:, 1:4, 2:5])


def test_cosine_schedule_warms_up_then_decays():
    optimizer = make_optimizer("adamw", 0.1, 100)
    schedule = (
        optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    )
    rates = [float(schedule(step)) for step in (0, 5, 50, 100)]
    assert rates[0] == pytest.approx(0.0)
    assert rates[1] == pytest.approx(0.1)
    assert rates[1] > rates[2] > rates[3] == pytest.approx(0.001)


@pytest.fixture
def restore_float32():
    yield
    training.set_precision("float32")


def test_mixed_bfloat16_keeps_softmax_and_colour_statistics_in_float32(restore_float32, tmp_path):
    assert training.set_precision("mixed_bfloat16") == "mixed_bfloat16"
    model = models.build_model("brushwork", 32, 3, filters=4)
    assert model.get_layer("stem").compute_dtype == "bfloat16"
    assert model.get_layer("stem").variable_dtype == "float32"
    for name in ("colour_mean", "colour_mean_square", "artist"):
        assert model.get_layer(name).compute_dtype == "float32"
    X, y = tiny_problem()
    X = np.repeat(np.repeat(X, 2, axis=1), 2, axis=2)
    compile_like_the_notebook(model, "adamw", 0.01)
    history, _ = fit_like_the_notebook(model, X, y, None, 1, 8, tmp_path)
    assert np.isfinite(history["loss"]).all()
    probabilities = model.predict(X[:4], verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("flags", "gpus", "expected"),
    [
        ({"amx_bf16", "avx2"}, [], "mixed_bfloat16"),
        ({"avx512_bf16"}, [], "mixed_bfloat16"),
        ({"avx2"}, [], "float32"),
        ({"avx2"}, [(8, 0)], "mixed_bfloat16"),
        ({"avx2"}, [(9, 0), (8, 6)], "mixed_bfloat16"),
        ({"amx_bf16"}, [(7, 5)], "mixed_float16"),
        ({"avx2"}, [(8, 6), (7, 0)], "mixed_float16"),
    ],
)
def test_auto_precision_follows_the_processor_and_gpus(
    monkeypatch, restore_float32, flags, gpus, expected
):
    monkeypatch.setattr(training, "cpu_flags", lambda: flags)
    monkeypatch.setattr(training, "gpu_compute_capabilities", lambda: gpus)
    assert training.set_precision("auto") == expected
    assert training.keras.mixed_precision.global_policy().name == expected


def test_gpu_compute_capabilities_reads_the_device_details(monkeypatch):
    monkeypatch.setattr(training.tf.config, "list_physical_devices", lambda kind: ["gpu0", "gpu1"])
    details = {"gpu0": {"compute_capability": (8, 6)}, "gpu1": {"compute_capability": (7, 5)}}
    monkeypatch.setattr(training.tf.config.experimental, "get_device_details", details.get)
    assert training.gpu_compute_capabilities() == [(8, 6), (7, 5)]


def test_mixed_float16_trains_a_step_with_loss_scaling(restore_float32, tmp_path):
    assert training.set_precision("mixed_float16") == "mixed_float16"
    model = models.build_model("cnn", 16, 3, filters=4)
    assert model.get_layer("b1_conv1").compute_dtype == "float16"
    assert model.get_layer("artist").compute_dtype == "float32"
    compile_like_the_notebook(model, "adam", 0.001)
    assert isinstance(model.optimizer, training.keras.optimizers.LossScaleOptimizer)
    X, y = tiny_problem()
    history, _ = fit_like_the_notebook(model, X, y, None, 1, 8, tmp_path)
    assert np.isfinite(history["loss"]).all()
    assert model.predict(X[:2], verbose=0).dtype == np.float32


def test_distribution_strategies():
    assert training.distribution_strategy("none").num_replicas_in_sync == 1
    assert training.distribution_strategy("auto").num_replicas_in_sync == 1  # no GPUs here
    mirrored = training.distribution_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))
    with pytest.raises(ValueError, match="none, mirrored"):
        training.distribution_strategy("tpu")


def test_unknown_precision_is_refused_with_choices():
    with pytest.raises(ValueError, match="float32, mixed_bfloat16, mixed_float16"):
        training.set_precision("float8")


def test_a_diverging_run_stops_and_is_refused(restore_float32, tmp_path):
    X, y = tiny_problem()
    model = models.build_model("shallow", X.shape[1], 3, filters=2)
    compile_like_the_notebook(model, "sgd", 1e30)
    history, _ = fit_like_the_notebook(model, X, y, None, 5, 4, tmp_path)
    assert len(history["loss"]) < 5 or not np.isfinite(history["loss"][-1])
    with pytest.raises(training.NonFiniteTrainingError, match="learning_rate"):
        training.require_finite(history)
    training.require_finite({"loss": [2.0, 1.5], "val_loss": [2.1, 1.9], "accuracy": [0.1, 0.2]})


def test_cpu_flags_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_bf16\nbugs\t\t: none\n")
    assert training.cpu_flags(cpuinfo) == {"fpu", "sse2", "amx_bf16"}
    assert training.cpu_flags(tmp_path / "missing") == set()


class StopAfterEpoch(training.keras.callbacks.Callback):
    """Raise KeyboardInterrupt at the end of an epoch, as Ctrl-C would during the next."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_training_resumes_after_its_last_completed_epoch(tmp_path, monkeypatch):
    X, y = tiny_problem()
    training.set_seed(0)
    model = compile_like_the_notebook(models.build_model("cnn", 16, 3, filters=4), "adam", 0.01)
    real_fit = model.fit

    def fit_then_stop(*args, callbacks=(), **kwargs):
        return real_fit(*args, callbacks=[*callbacks, StopAfterEpoch(1)], **kwargs)

    monkeypatch.setattr(model, "fit", fit_then_stop)
    with pytest.raises(KeyboardInterrupt):
        fit_like_the_notebook(model, X, y, (X[:6], y[:6]), 4, 8, tmp_path)
    assert (tmp_path / "checkpoint").is_dir()
    assert len(training.read_history(tmp_path / training.TRAINING_LOG)["loss"]) == 2

    training.set_seed(0)
    fresh = compile_like_the_notebook(models.build_model("cnn", 16, 3, filters=4), "adam", 0.01)
    history, resumed_after = fit_like_the_notebook(
        fresh, X, y, (X[:6], y[:6]), 4, 8, tmp_path, resume=True
    )
    assert resumed_after == 2
    assert len(history["loss"]) == len(history["val_accuracy"]) == 4
    assert int(fresh.optimizer.iterations.numpy()) == 4 * 3
    assert (tmp_path / "checkpoint").is_dir()  # kept until the model and metrics are saved
    for folder in ("transfer/checkpoint", "transfer/checkpoint-fine-tune"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "transfer" / "training_log.csv").write_text("epoch,loss\n")
    training.remove_checkpoints(tmp_path)
    assert not (tmp_path / "checkpoint").exists()
    assert [p.name for p in (tmp_path / "transfer").iterdir()] == ["training_log.csv"]


def brushwork_training(run_dir, stop_after_epoch=None, resume=False):
    run_dir.mkdir(exist_ok=True)
    X, y = tiny_problem()
    X = np.pad(X, ((0, 0), (2, 2), (2, 2), (0, 0)))
    training.set_seed(7)
    model = compile_like_the_notebook(
        models.build_model("brushwork", 16, 3, filters=4), "adamw", 0.01, 0.1, decay_steps=12
    )
    if stop_after_epoch is not None:
        real_fit = model.fit

        def fit_then_stop(*args, callbacks=(), **kwargs):
            return real_fit(
                *args, callbacks=[*callbacks, StopAfterEpoch(stop_after_epoch)], **kwargs
            )

        model.fit = fit_then_stop
    return model, fit_like_the_notebook(
        model,
        X,
        y,
        (X[:6], y[:6]),
        4,
        8,
        run_dir,
        crop_size=16,
        colour_jitter=0.2,
        seed=7,
        resume=resume,
    )


def test_a_resumed_training_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    """Data order, crops, jitter, flips and dropout of epoch k depend on the seed and k."""
    whole_model, (whole, _) = brushwork_training(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        brushwork_training(tmp_path / "resumed", stop_after_epoch=1)
    resumed_model, (resumed, resumed_after) = brushwork_training(tmp_path / "resumed", resume=True)
    assert resumed_after == 2
    assert resumed == whole
    for a, b in zip(whole_model.get_weights(), resumed_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def tiny_dense() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


def write_checkpoint(folder, epoch):
    """A checkpoint of ``epoch`` completed epochs, as ``training.BackupAndRestore`` writes."""
    folder.mkdir(exist_ok=True)
    tiny_dense().save_weights(str(folder / f"epoch-{epoch}.weights.h5"))
    record = {"epoch": epoch, "weights": f"epoch-{epoch}.weights.h5"}
    (folder / training.CHECKPOINT_RECORD).write_text(json.dumps(record))


def test_resume_point_cuts_the_log_back_to_the_checkpointed_epochs(tmp_path):
    assert training.resume_point(tmp_path) == 0
    write_checkpoint(tmp_path / training.CHECKPOINT, 2)
    log = tmp_path / training.TRAINING_LOG
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    assert training.resume_point(tmp_path) == 2
    assert training.read_history(log) == {"loss": [2.0, 1.5]}


def test_resume_point_counts_the_fine_tuning_phase_from_the_start_of_training(tmp_path):
    for folder, epoch in ((training.CHECKPOINT, 3), (training.FINE_TUNE_CHECKPOINT, 5)):
        write_checkpoint(tmp_path / folder, epoch)
    log = tmp_path / training.TRAINING_LOG
    log.write_text("epoch,loss\n" + "".join(f"{e},1.0\n" for e in range(6)))
    assert training.resume_point(tmp_path) == 5
    assert len(training.read_history(log)["loss"]) == 5


def test_earlier_epochs_resume_from_the_checkpoint_or_start_afresh(tmp_path):
    log = tmp_path / training.TRAINING_LOG
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    assert training.earlier_epochs(tmp_path, resume=True) == (0, {})  # nothing checkpointed
    write_checkpoint(tmp_path / training.CHECKPOINT, 2)
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    assert training.earlier_epochs(tmp_path, resume=True) == (2, {"loss": [2.0, 1.5]})
    assert training.earlier_epochs(tmp_path, resume=False) == (0, {})
    assert not log.exists()


def test_phases_name_the_head_epochs_then_fine_tuning():
    assert training.phases(4, 1) == ["head", "fine-tune", "fine-tune", "fine-tune"]
    assert training.phases(2, 5) == ["head", "head"]


def test_read_history_drops_the_empty_validation_columns_of_csv_logger(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,NA,NA\n1,0.6,1.0,NA,0.9\n")
    history = training.read_history(log)
    assert list(history) == ["accuracy", "loss", "val_loss"]
    assert np.isnan(history["val_loss"][0]) and history["val_loss"][1] == 0.9


def test_a_restored_epoch_does_not_leak_into_the_next_fit(tmp_path):
    """After a resumed first phase, the second ``fit`` counts from its own ``initial_epoch``
    (Keras's own callback leaves the restored epoch on the model)."""

    def tiny() -> keras.Model:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        return model

    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    tiny().fit(
        X,
        y,
        epochs=1,
        verbose=0,
        callbacks=[training.BackupAndRestore(checkpoint)],
    )
    resumed = tiny()
    first = resumed.fit(
        X,
        y,
        epochs=3,
        verbose=0,
        callbacks=[training.BackupAndRestore(checkpoint, resume=True)],
    )
    assert len(first.history["loss"]) == 2  # epochs 2 and 3: epoch 1 was restored
    second = resumed.fit(X, y, epochs=5, initial_epoch=3, verbose=0)
    assert len(second.history["loss"]) == 2


def test_feature_batches_show_each_painting_once_mirrored_at_random():
    """An epoch of a head trained on frozen features: every painting once, as itself or its
    mirror image, chosen by the seed and the epoch alone, as a resumed run repeats it."""
    count, classes = 40, 4
    features = np.arange(count, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    mirrored = -features - 1  # tells which of the two an epoch showed
    y = np.arange(count) % classes

    def epochs(seed, first_epoch=0):
        stream = training.feature_batches(
            features,
            mirrored,
            y,
            classes,
            batch_size=16,
            num_epochs=3,
            seed=seed,
            first_epoch=first_epoch,
        )
        batches = [(f.numpy(), labels.numpy()) for f, labels in stream]
        return [batches[n : n + 3] for n in range(0, len(batches), 3)]

    shown = epochs(seed=3)
    assert len(shown) == 3
    for epoch in shown:
        rows = np.concatenate([f for f, _ in epoch])
        labels = np.concatenate([lab for _, lab in epoch]).argmax(axis=1)
        painting = np.where(rows[:, 0] >= 0, rows[:, 0], -rows[:, 0] - 1).astype(int)
        assert sorted(painting) == list(range(count))
        np.testing.assert_array_equal(labels, y[painting])
        assert 0 < np.sum(rows[:, 0] < 0) < count  # some mirrored, some not
    for a, b in zip(shown[1], epochs(seed=3, first_epoch=1)[0], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(shown[0][0][0], epochs(seed=4)[0][0][0])


def test_image_batches_give_every_image_in_order_or_mirrored_for_predict():
    """What section 7 computes the frozen features from: ``predict`` on ``ImageBatches``
    equals ``predict`` on the array, and on the flipped pixels when ``mirrored``."""
    inputs = keras.Input((8, 8, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    extractor = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pooled")(x))
    X = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    assert len(training.ImageBatches(X, batch_size=2)) == 3
    plain = extractor.predict(training.ImageBatches(X, batch_size=2), verbose=0)
    flipped = extractor.predict(training.ImageBatches(X, batch_size=2, mirrored=True), verbose=0)
    np.testing.assert_allclose(plain, extractor.predict(X, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(
        flipped, extractor.predict(X[:, :, ::-1].copy(), verbose=0), rtol=1e-6
    )
    assert not np.allclose(plain, flipped)


def test_the_py_dataset_gives_the_batches_of_training_batches_in_any_reading_order():
    """``TrainingBatches`` is what ``fit`` trains on; its batches are those of the stream
    the recorded results were trained with, whichever batches Keras reads first or again."""
    X, y = tiny_problem()
    stream = epoch_batches(X, y, seed=5)
    dataset = training.TrainingBatches(X, y, 3, 8, seed=5, crop_size=12, colour_jitter=0.2)
    assert len(dataset) == 3
    for epoch in (2, 0, 1):
        dataset.epoch = epoch
        for index in (1, 0, 2, 0):
            images, labels = dataset[index]
            np.testing.assert_array_equal(images, stream[3 * epoch + index][0])
            np.testing.assert_array_equal(labels, stream[3 * epoch + index][1])


def test_the_feature_py_dataset_gives_the_batches_of_feature_batches():
    count, classes = 40, 4
    features = np.random.default_rng(1).random((count, 3), dtype=np.float32)
    y = np.arange(count) % classes
    stream = training.feature_batches(features, -features, y, classes, 16, num_epochs=2, seed=3)
    expected = [(f.numpy(), labels.numpy()) for f, labels in stream]
    dataset = training.FeatureBatches(features, -features, y, classes, 16, seed=3)
    for epoch in (1, 0):
        dataset.epoch = epoch
        for index in range(3):
            np.testing.assert_array_equal(dataset[index][0], expected[3 * epoch + index][0])
            np.testing.assert_array_equal(dataset[index][1], expected[3 * epoch + index][1])


def test_fit_on_the_py_dataset_trains_exactly_as_on_the_stream(tmp_path):
    """Three epochs through ``fit`` with ``TrainingBatches`` and ``SetEpoch`` end with the
    weights and history of the same three epochs fed from ``training_batches``."""
    X, y = tiny_problem()
    X = X.repeat(2, axis=1).repeat(2, axis=2)  # 32 px, cropped to 24: brushwork's smallest

    def trained(use_py_dataset: bool):
        training.set_seed(2)
        model = compile_like_the_notebook(models.build_model("brushwork", 24, 3, filters=4))
        callbacks = [training.EpochRandomness(2)]
        if use_py_dataset:
            data = training.TrainingBatches(X, y, 3, 8, seed=2, crop_size=24, colour_jitter=0.2)
            callbacks.append(training.SetEpoch(data))
            history = model.fit(data, epochs=3, shuffle=False, callbacks=callbacks, verbose=0)
        else:
            data = training.training_batches(
                X, y, 3, 8, num_epochs=3, seed=2, crop_size=24, colour_jitter=0.2
            )
            history = model.fit(
                data, epochs=3, steps_per_epoch=3, shuffle=False, callbacks=callbacks, verbose=0
            )
        return model.get_weights(), history.history

    (new_weights, new_history), (old_weights, old_history) = trained(True), trained(False)
    assert new_history == old_history
    for a, b in zip(new_weights, old_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_fresh_fit_starts_a_new_log_and_a_resumed_one_keeps_the_earlier_epochs(tmp_path):
    log = tmp_path / training.TRAINING_LOG
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n")
    assert training.logged_history(tmp_path, 2) == {"loss": [2.0, 1.5]}
    assert log.exists()
    assert training.logged_history(tmp_path, 0) == {}
    assert not log.exists()


def test_histories_join_epoch_after_epoch_with_metrics_sorted_by_name():
    earlier = {"loss": [2.0], "accuracy": [0.1]}
    later = {"accuracy": [0.5, 0.6], "loss": [1.0, 0.9]}
    joined = training.join_histories(earlier, later)
    assert joined == {"accuracy": [0.1, 0.5, 0.6], "loss": [2.0, 1.0, 0.9]}
    assert list(joined) == ["accuracy", "loss"]


def test_a_checkpoint_cut_short_falls_back_to_the_one_before(tmp_path):
    """A full disk used to leave latest.weights.h5 cut short, and every resume then failed in
    h5py ("addr overflow"); the previous epoch's checkpoint is kept for that."""
    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    tiny_dense().fit(X, y, epochs=3, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)])
    assert sorted(p.name for p in checkpoint.glob("*.h5")) == [
        "epoch-2.weights.h5",
        "epoch-3.weights.h5",
    ]
    assert training.usable_checkpoint(checkpoint) == (3, checkpoint / "epoch-3.weights.h5")
    newest = checkpoint / "epoch-3.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    assert training.usable_checkpoint(checkpoint) == (2, checkpoint / "epoch-2.weights.h5")
    (tmp_path / training.TRAINING_LOG).write_text("epoch,loss\n0,1\n1,1\n2,1\n")
    assert training.resume_point(tmp_path) == 2
    resumed = tiny_dense().fit(
        X, y, epochs=4, verbose=0, callbacks=[training.BackupAndRestore(checkpoint, resume=True)]
    )
    assert len(resumed.history["loss"]) == 2  # epochs 3 and 4, after the restored 2


def test_a_full_disk_while_checkpointing_keeps_the_last_whole_checkpoint(tmp_path, monkeypatch):
    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    model = tiny_dense()
    model.fit(X, y, epochs=2, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)])

    def disk_fills_up(filepath, overwrite=True):
        Path(filepath).write_bytes(b"\x89HDF\r\n\x1a\n")  # the start of a file, then no room
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_weights", disk_fills_up)
    with pytest.raises(OSError, match="No space left"):
        model.fit(
            X,
            y,
            epochs=4,
            verbose=0,
            callbacks=[training.BackupAndRestore(checkpoint, resume=True)],
        )
    assert training.usable_checkpoint(checkpoint) == (2, checkpoint / "epoch-2.weights.h5")


def test_a_file_size_limit_while_checkpointing_keeps_the_last_whole_checkpoint(tmp_path):
    """The same, for real: past ``ulimit -f`` (RLIMIT_FSIZE) writes fail with EFBIG, as on
    a full disk with ENOSPC. Inside h5py such a failure crashed the process (segmentation
    fault); the checkpoint's room is now claimed first, which fails cleanly."""
    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    model = tiny_dense()
    model.fit(X, y, epochs=2, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)])
    whole = (checkpoint / "epoch-2.weights.h5").stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (whole // 2, hard))
    try:
        with pytest.raises(OSError, match="File too large"):
            model.fit(
                X,
                y,
                epochs=4,
                verbose=0,
                callbacks=[training.BackupAndRestore(checkpoint, resume=True)],
            )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert training.usable_checkpoint(checkpoint) == (2, checkpoint / "epoch-2.weights.h5")
    assert not list(checkpoint.glob("*.tmp*"))


def tiny_network(hidden: int = 0) -> keras.Model:
    """A small classifier of two inputs, with a hidden layer of ``hidden`` units if any."""
    hidden_layers = [keras.layers.Dense(hidden, activation="relu")] if hidden else []
    model = keras.Sequential(
        [keras.Input((2,)), *hidden_layers, keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


def test_a_fresh_fit_trains_a_changed_network_from_its_first_epoch(tmp_path):
    """A student adds a layer and re-runs: the last network's checkpoint used to be restored
    into the new one (an error, or 'resumed' with nothing trained). A fresh fit removes it."""
    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    tiny_network().fit(X, y, epochs=3, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)])
    assert training.usable_checkpoint(checkpoint)[0] == 3
    for changed in (tiny_network(hidden=4), tiny_network()):  # a new layer; the same layers
        history = changed.fit(
            X, y, epochs=3, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)]
        )
        assert len(history.history["loss"]) == 3


def test_a_resume_refuses_a_checkpoint_of_another_network_in_one_line(tmp_path):
    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    tiny_network().fit(X, y, epochs=2, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)])
    changed = tiny_network(hidden=4)
    with pytest.raises(training.CheckpointMismatchError) as refused:
        changed.fit(
            X, y, epochs=3, verbose=0, callbacks=[training.BackupAndRestore(checkpoint, True)]
        )
    assert "\n" not in str(refused.value) and "another network" in str(refused.value)
    same = tiny_network()
    history = same.fit(
        X, y, epochs=3, verbose=0, callbacks=[training.BackupAndRestore(checkpoint, True)]
    )
    assert len(history.history["loss"]) == 1  # epoch 3, after the 2 restored


class StopInFirstEpoch(keras.callbacks.Callback):
    """Ctrl-C during the first epoch, before any checkpoint of it."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        raise KeyboardInterrupt


def test_a_fresh_fit_stopped_in_its_first_epoch_resumes_from_the_start(tmp_path):
    """The record's previous file could name the last network's weights, so a fresh fit
    killed in its first epoch used to resume into the old network."""
    X, y = np.zeros((4, 2), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    checkpoint = tmp_path / training.CHECKPOINT
    tiny_network().fit(X, y, epochs=2, verbose=0, callbacks=[training.BackupAndRestore(checkpoint)])
    with pytest.raises(KeyboardInterrupt):
        tiny_network(hidden=4).fit(
            X,
            y,
            epochs=3,
            batch_size=2,
            verbose=0,
            callbacks=[training.BackupAndRestore(checkpoint), StopInFirstEpoch()],
        )
    assert training.usable_checkpoint(checkpoint) is None
    resumed = tiny_network(hidden=4).fit(
        X, y, epochs=3, verbose=0, callbacks=[training.BackupAndRestore(checkpoint, True)]
    )
    assert len(resumed.history["loss"]) == 3
