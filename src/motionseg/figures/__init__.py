"""Figures of the book: sequences, ground-truth layers, model states (Fig. 1, Fig. 2), curves, animations.

One module per topic; every public name (and the helpers the tests use) is re-exported here, so
``from motionseg import figures; figures.plot_states(...)`` works as before:

* :mod:`.common`: one image panel, the phase of a motion field, :func:`show` (a figure, compact);
* :mod:`.sequences`: frames, layers, velocities of the data set (chapter 03);
* :mod:`.theory`: the Kalman filter and motion in the frequency domain (chapters 01, 02);
* :mod:`.states`: the filter models' states and predictions (Fig. 1, Fig. 2a-d);
* :mod:`.curves`: errors per frame and learning curves;
* :mod:`.stress`: the stress tests (chapter 08);
* :mod:`.objects`: the multi-object model's layers (chapter 10);
* :mod:`.animations`: GIF animations of states and predictions.

Tables live below the figures, in :mod:`motionseg.tables`; ``style_table`` is re-exported here
for the chapters that still call ``figures.style_table``.
"""
from __future__ import annotations

from ..tables import style_table
# the private helpers stay reachable as figures._img, figures._panel, figures._row, figures._gif
from .animations import _gif, _panel, _row, animate_predictions, animate_states, show_animation
from .common import _img, motion_image, show
from .curves import plot_error_growth, plot_learning_curve, plot_learning_curves, plot_per_frame
from .objects import plot_object_layers
from .sequences import plot_alpha_profile, plot_first_frames, plot_layers, plot_sequence, plot_velocity_distribution
from .states import (plot_blend_weights, plot_cycle_diagram, plot_cycle_step, plot_first_estimates, plot_net_io,
                     plot_prediction_errors,
                     plot_predictions, plot_state_metrics, plot_states)
from .stress import path_crop, plot_cases, plot_correlation_peaks, plot_stress_heatmap, plot_velocity_trace
from .theory import (plot_correlation_surfaces, plot_kalman_gain_curves, plot_kalman_track, plot_motion_fields,
                     plot_shift_theorem, plot_wraparound)

__all__ = [
    "animate_predictions", "animate_states", "motion_image", "path_crop", "plot_alpha_profile",
    "plot_blend_weights", "plot_cases", "plot_correlation_peaks", "plot_correlation_surfaces", "plot_cycle_diagram",
    "plot_cycle_step", "plot_error_growth", "plot_first_frames", "plot_kalman_gain_curves", "plot_kalman_track",
    "plot_layers", "plot_learning_curve", "plot_object_layers", "plot_learning_curves", "plot_motion_fields", "plot_net_io",
    "plot_first_estimates",
    "plot_per_frame", "plot_prediction_errors", "plot_predictions", "plot_sequence", "plot_shift_theorem",
    "plot_state_metrics", "plot_states", "plot_stress_heatmap", "plot_velocity_distribution", "plot_velocity_trace",
    "plot_wraparound", "show", "show_animation", "style_table",
]
