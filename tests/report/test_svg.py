"""Chart geometry against hand-computed coordinates, and escaping of every label."""

from __future__ import annotations

import math

import pytest

from tether.report.svg import (
    Bar,
    Bin,
    Line,
    Reference,
    Scale,
    bar_domain,
    bin_radius,
    downsample,
    interval_bars,
    line_chart,
    nice_step,
    nice_ticks,
    polyline,
    reliability_diagram,
    tick_label,
)

EVIL = "<b onmouseover=alert(1)>x</b>"


@pytest.mark.parametrize(
    ("span", "target", "step"),
    [(10, 5, 2), (0.93, 5, 0.2), (7, 5, 2), (100, 4, 50), (1, 4, 0.5), (0, 5, 1.0)],
)
def test_nice_step_is_one_two_or_five_times_a_power_of_ten(span: float, target: int, step: float) -> None:
    assert nice_step(span, target) == pytest.approx(step)


def test_nice_ticks_cover_the_range_with_round_values() -> None:
    assert nice_ticks(0, 0.93, 5) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert nice_ticks(-0.3, 0.12, 4) == (-0.4, -0.2, 0.0, 0.2)
    assert nice_ticks(1, 30, 6) == (0, 5, 10, 15, 20, 25, 30)


def test_nice_ticks_pad_a_constant_series() -> None:
    # 3 ± 10% → [2.7, 3.3], step 0.2, from 2.6 up to the first tick at or above 3.3.
    assert nice_ticks(3, 3) == (2.6, 2.8, 3.0, 3.2, 3.4)
    assert nice_ticks(0, 0) == (-1.0, -0.5, 0.0, 0.5, 1.0)


def test_tick_labels_carry_the_decimals_of_their_step() -> None:
    assert tick_label(0.4, 0.2) == "0.4"
    assert tick_label(200.0, 50) == "200"
    assert tick_label(0.05, 0.05) == "0.05"


def test_scale_maps_linearly_and_flips_for_the_y_axis() -> None:
    assert Scale(0, 10, 50, 150)(2.5) == 75
    assert Scale(0, 1, 200, 20)(0.25) == 155
    assert Scale(3, 3, 0, 100)(3) == 50  # an empty domain sits in the middle


def test_downsample_keeps_each_buckets_extremes_in_step_order() -> None:
    ys = [0, 5, 1, 9, 2, 3, -4, 0, 1, 2]
    points = [(float(i), float(y)) for i, y in enumerate(ys)]
    # 2 buckets of the 8 inner points: steps 1-4 keep (2, 1) and (3, 9); steps 5-8 keep (5, 3), (6, -4).
    assert downsample(points, 6) == [(0, 0), (2, 1), (3, 9), (5, 3), (6, -4), (9, 2)]
    assert downsample(points, 10) == points


def test_downsample_keeps_a_single_spike_of_a_long_series() -> None:
    points = [(float(i), 1.0) for i in range(5000)]
    points[2345] = (2345.0, 50.0)
    kept = downsample(points)
    assert len(kept) <= 300
    assert (2345.0, 50.0) in kept
    assert kept[0] == (0.0, 1.0) and kept[-1] == (4999.0, 1.0)
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)


def test_polyline_points() -> None:
    assert polyline([(0, 0), (10, 1)], Scale(0, 10, 50, 150), Scale(0, 1, 200, 20)) == "50.0,200.0 150.0,20.0"


def test_line_chart_places_series_and_reference_line() -> None:
    svg = line_chart([Line("kl", [(0, 0), (10, 1)])], title="KL", reference=Reference(0.5, "budget 0.5"))
    # x ticks 0..10 map onto 56..526 (540 − 14); y ticks 0, 0.5, 1 map onto 180 (210 − 30)..28.
    assert 'points="56.0,180.0 526.0,28.0"' in svg
    assert 'y1="104.0" y2="104.0"' in svg  # the budget, halfway up
    assert "budget 0.5" in svg and "<title>KL</title>" in svg


def test_line_chart_skips_nan_and_says_when_nothing_was_logged() -> None:
    svg = line_chart([Line("a", [(0, math.nan), (1, 2.0), (2, 4.0)])], title="A")
    assert "nan" not in svg.lower()
    assert svg.count("<polyline") == 1
    empty = line_chart([Line("a", [])], title="Gold")
    assert "Gold: no data logged" in empty and "<polyline" not in empty


def test_line_chart_draws_a_single_point_as_a_dot() -> None:
    svg = line_chart([Line("eval", [(10, 0.5)])], title="Eval")
    assert "<circle" in svg and "<polyline" not in svg


def test_interval_bars_geometry() -> None:
    svg = interval_bars([Bar("a", 0.5, 0.4, 0.6, marker=0.7, text="0.50")], title="acc", domain=(0, 1))
    # x maps [0, 1] onto [170, 470].
    assert '<rect x="170.0" y="6" width="150.0"' in svg
    assert 'x1="290.0" x2="350.0"' in svg  # whisker 0.4–0.6
    assert 'x1="380.0" x2="380.0"' in svg  # marker at 0.7


def test_negative_bars_grow_left_from_zero() -> None:
    bars = [Bar("x", -0.3, -0.35, 0.12)]
    assert bar_domain(bars) == (-0.4, 0.2)
    svg = interval_bars(bars, title="delta")
    # zero at 170 + 300·0.4/0.6 = 370; −0.3 at 170 + 300·0.1/0.6 = 220.
    assert '<rect x="220.0" y="6" width="150.0"' in svg
    assert 'x1="370.0" x2="370.0"' in svg


def test_reliability_points_and_radius() -> None:
    assert bin_radius(25, 100) == 5.0
    assert bin_radius(0, 0) == 2.0
    svg = reliability_diagram([Bin(0.25, 0.75, 100), Bin(0.5, 0.5, 0)])
    # x = 36 + 220·0.25; y = 8 + 220·(1 − 0.75); the empty bin is not drawn.
    assert 'cx="91.0" cy="63.0" r="8.0"' in svg
    assert svg.count("<circle") == 1


def test_every_label_is_escaped() -> None:
    charts = [
        line_chart([Line(EVIL, [(0, 1), (1, 2)])], title=EVIL, reference=Reference(1.5, EVIL)),
        interval_bars([Bar(EVIL, 0.5, text=EVIL)], title=EVIL),
        reliability_diagram([Bin(0.5, 0.5, 3)], title=EVIL),
    ]
    for svg in charts:
        assert "<b " not in svg
        assert "&lt;b onmouseover=alert(1)&gt;" in svg
