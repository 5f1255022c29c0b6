"""The sentences that interpret a run follow its numbers."""

import numpy as np

from utils import evaluation, interpret


def test_learning_names_overfitting_and_a_late_decline():
    history = {"accuracy": [0.5, 0.9, 0.99], "val_accuracy": [0.4, 0.6, 0.5]}
    text = interpret.learning(history)
    assert "99.0%" in text and "50.0%" in text
    assert "memorised" in text and "49.0 points" in text
    assert "peaked at 60.0% in epoch 2" in text


def test_learning_without_a_gap_says_so():
    text = interpret.learning({"accuracy": [0.5, 0.8], "val_accuracy": [0.5, 0.779]})
    assert "no sign of overfitting" in text and "peaked" not in text
    assert "The two lie 2.1 points apart, less than the 10.0 points" in text


def test_learning_explains_validation_above_training():
    text = interpret.learning({"accuracy": [0.5, 0.6], "val_accuracy": [0.6, 0.8]})
    assert "augmented" in text


def test_errors_name_the_best_worst_and_most_confused_artists():
    metrics = {
        "accuracy": 0.75,
        "chance_accuracy": 0.25,
        "f1_per_artist": {"Monet": 0.9, "Degas": 0.4, "Renoir": 0.7},
    }
    text = interpret.errors(metrics, [("Degas", "Renoir", 3, 1)], num_images=120)
    assert "Monet is recognised best (F1 0.90), Degas is worst (F1 0.40)" in text
    assert "3 Degas called Renoir, 1 Renoir called Degas" in text
    assert "0.8 points" in text


def test_errors_name_every_artist_tied_at_the_top_or_bottom():
    metrics = {
        "accuracy": 0.9,
        "chance_accuracy": 0.25,
        "f1_per_artist": {"Gauguin": 1.0, "Matisse": 1.0, "Monet": 0.8, "Degas": 0.6},
    }
    text = interpret.errors(metrics, [], num_images=40)
    assert "Gauguin and Matisse are recognised best (F1 1.00), Degas is worst (F1 0.60)" in text
    even = metrics | {"f1_per_artist": {"Gauguin": 1.0, "Matisse": 1.0}}
    assert "Every artist is recognised equally well (F1 1.00)" in interpret.errors(even, [], 40)


def test_calibration_tells_over_from_under_confidence():
    y = np.array([0, 0, 1, 1])
    sure_and_wrong = np.array([[0.95, 0.05], [0.05, 0.95], [0.95, 0.05], [0.05, 0.95]])
    text = interpret.calibration(evaluation.reliability(y, sure_and_wrong), accuracy=0.5)
    assert "over-confident" in text and "Of its 4 answers given with 90% or more, 50%" in text
    timid_and_right = np.array([[0.6, 0.4], [0.6, 0.4], [0.4, 0.6], [0.4, 0.6]])
    text = interpret.calibration(evaluation.reliability(y, timid_and_right), accuracy=1.0)
    assert "under-confident" in text and "90% or more" not in text
    before = evaluation.reliability(y, sure_and_wrong)
    after = evaluation.reliability(y, timid_and_right)
    text = interpret.calibration(after, accuracy=1.0, before=before)
    assert text.endswith(
        f"error is {after['expected_calibration_error']:.3f}, against "
        f"{before['expected_calibration_error']:.3f} before the temperature (fitted on paintings "
        "this run never scores; the answers themselves did not change)."
    )


def test_evidence_layout_measures_focus_border_and_place():
    spot = np.zeros((20, 20), np.float32)
    spot[1:3, 15:17] = 1.0  # 4 of 400 pixels, upper right; row 1 lies in the 2-pixel band
    layout = interpret.evidence_layout(spot)
    assert layout["focus"] == 2 / 400
    assert layout["where"] == "mostly in the upper right"
    assert layout["border"] == 0.5
    even = np.ones((10, 10), np.float32)
    layout = interpret.evidence_layout(even)
    assert layout["focus"] == 0.5 and layout["where"] == "spread across the painting"
    assert abs(layout["border"] - 0.36) < 1e-6


def test_evidence_at_the_top_and_the_bottom_is_not_placed_in_the_centre():
    top_and_bottom = np.zeros((12, 12), np.float32)
    top_and_bottom[0:2, 5:7] = 1.0
    top_and_bottom[10:12, 5:7] = 1.0
    layout = interpret.evidence_layout(top_and_bottom)
    assert layout["where"] == "mostly in the upper centre and the lower centre"
    sentence = interpret.grad_cam([("Cezanne", "Cezanne", 0.9, top_and_bottom)])
    assert "of the painting, mostly in the upper centre and the lower centre." in sentence


def test_evidence_layout_of_an_empty_map():
    assert interpret.evidence_layout(np.zeros((8, 8)))["where"] == ""


def test_grad_cam_sentences_follow_the_maps():
    frame = np.zeros((20, 20), np.float32)
    frame[0, :] = frame[-1, :] = 1.0
    centre = np.zeros((20, 20), np.float32)
    centre[9:11, 9:11] = 1.0
    text = interpret.grad_cam([("Monet", "Monet", 0.9, centre), ("Degas", "Renoir", 0.6, frame)])
    assert "The Monet was called Monet rightly at 90%" in text
    assert "of the painting, mostly in the centre." in text
    assert "called Renoir wrongly (it is a Degas) at 60%" in text
    assert "In the Degas most of the evidence sits in the outer 10%" in text
    assert "a few small regions decide" in text
    text = interpret.grad_cam([("Monet", "Monet", 0.9, centre)])
    assert "None of them leans on the outer 10%" in text
    assert "no region" in interpret.grad_cam([("Monet", "Degas", 0.4, np.zeros((4, 4)))])


def test_transfer_compares_with_the_network_trained_from_scratch():
    comparison = {
        "transfer": {"accuracy": 0.9, "loss": 0.3},
        "scratch": {"accuracy": 0.8, "loss": 0.6},
        "head_epochs": 2,
        "fine_tune_epochs": 2,
        "unfreeze_blocks": 5,
        "model": "cnn",
        "images_seen": {"transfer": 1916, "scratch": 7185},
        "seconds": {"transfer": 14.4, "scratch": 40.2},
    }
    curves = {"val_accuracy": [0.5, 0.6, 0.85, 0.9]}
    text = interpret.transfer(comparison, curves)
    assert "**60.0%**" in text and "after 2 epochs" in text
    assert "top 5 blocks for 2 more epochs" in text and "**90.0%**" in text
    assert "1,916 training images in 14 s" in text
    assert "`cnn`" in text and "**80.0%**" in text and "7,185 images in 40 s" in text
    assert "gained 10.0 points" in text

    def with_transfer_accuracy(accuracy: float) -> str:
        return interpret.transfer(comparison | {"transfer": {"accuracy": accuracy}}, curves)

    assert "behind" in with_transfer_accuracy(0.7)
    assert "level" in with_transfer_accuracy(0.805)
    head_only = interpret.transfer(comparison | {"fine_tune_epochs": 0}, {"val_accuracy": [0.5]})
    assert "trained for 2 epochs got **90.0%**" in head_only and "Fine-tuning" not in head_only


def test_attribution_maps_read_both_maps_and_name_their_roles():
    spot = np.zeros((12, 12), np.float32)
    spot[0:2, 10:12] = 1.0
    even = np.ones((12, 12), np.float32)
    text = interpret.attribution_maps([("Renoir", 0.9, spot), ("Monet", 0.05, even)], "Renoir")
    assert "The evidence for Renoir (90%, the top answer) lies mostly in the upper right" in text
    assert "The evidence for Monet (5%, the second choice) lies spread across the painting" in text
    claimed = interpret.attribution_maps([("Monet", 0.7, spot), ("Renoir", 0.2, even)], "Renoir")
    assert "Renoir (20%, the claimed painter)" in claimed
    nothing = interpret.attribution_maps([("Monet", 0.7, np.zeros((4, 4)))], "Renoir")
    assert "No region raised the score of Monet" in nothing
