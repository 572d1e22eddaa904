//! The console's charts, drawn by the server as SVG so they read without JavaScript: a gate's
//! exposure over time as steps with its decisions marked, and per metric and cohort the
//! treatment against the baseline per window, with its interval, the zone thresholds as lines
//! and the zone as colour *and* shape (Okabe–Ito colours, which survive the common colour
//! blindnesses; the shape carries the zone for anyone who cannot tell them apart).
//!
//! Pure: plain figures in, markup out; no node, no clock, no proto.

use std::fmt::Write;

use maud::{html, Markup};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The zones in order of severity with their colour (Okabe–Ito) and marker's name.
const ZONES: [(&str, &str); 5] = [
    ("healthy", "#009E73"),
    ("watch", "#E69F00"),
    ("stop", "#D55E00"),
    ("kill", "#000000"),
    ("unreliable", "#999999"),
];

/// Threshold lines: zone, colour, dash pattern.
const THRESHOLDS: [(&str, &str, &str); 3] = [
    ("watch", "#E69F00", "6 3"),
    ("stop", "#D55E00", "3 3"),
    ("kill", "#000000", "9 3 2 3"),
];

/// The baseline's line colour (Okabe–Ito blue).
const BASELINE: &str = "#0072B2";

/// Cohort lines: colour and dash, in turn.
const COHORTS: [(&str, &str); 6] = [
    ("#0072B2", ""),
    ("#E69F00", "8 3"),
    ("#009E73", "2 2"),
    ("#CC79A7", "8 3 2 3"),
    ("#56B4E9", "4 4"),
    ("#D55E00", "1 3"),
];

/// A zone's colour; grey for one this console does not know.
pub fn zone_colour(zone: &str) -> &'static str {
    ZONES
        .iter()
        .find(|(z, _)| *z == zone)
        .map_or("#999999", |(_, c)| c)
}

fn known_zone(zone: &str) -> &'static str {
    ZONES
        .iter()
        .find(|(z, _)| *z == zone)
        .map_or("unreliable", |(z, _)| z)
}

/// The marker shapes, defined once per page; every chart's points `<use>` them. Each is
/// centred on (0, 0): circle healthy, triangle watch, square stop, cross kill, hollow diamond
/// unreliable.
pub fn markers() -> Markup {
    html! {
        svg.defs width="0" height="0" aria-hidden="true" {
            defs {
                circle #m-healthy r="3.5" fill="#009E73" {}
                path #m-watch d="M0 -4.5L4.2 3L-4.2 3Z" fill="#E69F00" {}
                path #m-stop d="M-3.5 -3.5h7v7h-7Z" fill="#D55E00" {}
                path #m-kill d="M-4 -4L4 4M4 -4L-4 4" stroke="#000000" stroke-width="2.2" {}
                path #m-unreliable d="M0 -4.5L4.5 0L0 4.5L-4.5 0Z" fill="white" stroke="#999999" stroke-width="1.5" {}
            }
        }
    }
}

/// A rectangle of the page mapped onto data coordinates.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, v: f64) -> f64 {
        let span = (self.x.1 - self.x.0).max(f64::MIN_POSITIVE);
        self.left + (v - self.x.0) / span * (self.w - self.left - self.right)
    }

    fn py(&self, v: f64) -> f64 {
        let span = (self.y.1 - self.y.0).max(f64::MIN_POSITIVE);
        self.h - self.bottom - (v - self.y.0) / span * (self.h - self.top - self.bottom)
    }

    /// The axes, grid and tick labels; `y_label` says the unit.
    fn axes(&self, y_ticks: &[(f64, String)], x_ticks: &[(f64, String)], y_label: &str) -> Markup {
        let (x0, x1) = (self.left, self.w - self.right);
        let (y0, y1) = (self.h - self.bottom, self.top);
        let mut grid = String::new();
        for (v, _) in y_ticks {
            let _ = write!(grid, "M{x0:.1} {:.1}H{x1:.1}", self.py(*v));
        }
        html! {
            path.grid d=(grid) fill="none" stroke="#e3e3e3" stroke-width="1" {}
            path.axis d=(format!("M{x0:.1} {y1:.1}V{y0:.1}H{x1:.1}")) fill="none" stroke="#555" stroke-width="1" {}
            @for (v, label) in y_ticks {
                text.tick x=(format!("{:.1}", x0 - 4.0)) y=(format!("{:.1}", self.py(*v) + 3.5)) text-anchor="end" { (label) }
            }
            @for (v, label) in x_ticks {
                // A label at the right edge ends there rather than being cut.
                @let x = self.px(*v);
                text.tick x=(format!("{x:.1}")) y=(format!("{:.1}", y0 + 13.0))
                    text-anchor=(if x > x1 - 3.0 * label.len() as f64 { "end" } else { "middle" }) { (label) }
            }
            text.label x=(format!("{:.1}", x1)) y=(format!("{:.1}", y0 + 26.0)) text-anchor="end" { "time (UTC)" }
            text.label x="4" y="11" { (y_label) }
        }
    }
}

/// Round tick values covering `lo..=hi`, about `n` of them, and the decimals they need.
pub fn ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, usize) {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return (vec![lo], 0);
    }
    let raw = (hi - lo) / n as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    // A step of 2.5 × 10^k needs one decimal more than its magnitude's.
    let quarter = i64::from((step / magnitude - 2.5).abs() < 1e-9);
    let decimals = usize::try_from(-(step.log10().floor() as i64) + quarter).unwrap_or(0);
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    let mut out = Vec::new();
    let mut k = first;
    while k <= last && out.len() <= 4 * n {
        out.push(k * step);
        k += 1.0;
    }
    (out, decimals)
}

/// Time ticks over `lo..=hi` at a round step, labelled in UTC (`HH:MM`; `HH:MM:SS` for steps
/// under a minute; with the date when the span passes a day).
pub fn time_ticks(lo: Millis, hi: Millis) -> Vec<(f64, String)> {
    const SECOND: i64 = 1_000;
    const MINUTE: i64 = 60 * SECOND;
    const STEPS: [i64; 18] = [
        SECOND,
        2 * SECOND,
        5 * SECOND,
        10 * SECOND,
        15 * SECOND,
        30 * SECOND,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        60 * MINUTE,
        180 * MINUTE,
        360 * MINUTE,
        720 * MINUTE,
        1440 * MINUTE,
        10080 * MINUTE,
    ];
    let span = (hi - lo).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 6)
        .unwrap_or(10080 * MINUTE);
    let with_date = span > 1440 * MINUTE || step >= 1440 * MINUTE;
    let pattern = if with_date {
        "%m-%d %H:%M"
    } else if step < MINUTE {
        "%H:%M:%S"
    } else {
        "%H:%M"
    };
    let mut t = lo.div_euclid(step) * step;
    if t < lo {
        t += step;
    }
    let mut out = Vec::new();
    while t <= hi && out.len() < 12 {
        let label = chrono::DateTime::from_timestamp_millis(t)
            .map_or_else(String::new, |d| d.format(pattern).to_string());
        out.push((t as f64, label));
        t += step;
    }
    out
}

/// A figure for people: about four significant digits, no exponent for everyday sizes.
pub fn figure(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    let decimals = if a == 0.0 || a >= 1000.0 {
        0
    } else {
        usize::try_from((3.0 - a.log10().floor()).clamp(0.0, 9.0) as i64).unwrap_or(0)
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// `-0`, `-0.00` as people write them: without the sign.
fn plain_zero(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_owned(),
        _ => s,
    }
}

/// How a metric's values read: rates as percentages, anything else in the unit it was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Share,
    AsSent,
}

impl Unit {
    /// `v` as a label in this unit.
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Share => format!("{}%", figure(v * 100.0)),
            Unit::AsSent => figure(v),
        }
    }

    fn tick(self, v: f64, decimals: usize) -> String {
        match self {
            Unit::Share => format!(
                "{}%",
                plain_zero(format!("{:.*}", decimals.saturating_sub(2), v * 100.0))
            ),
            Unit::AsSent => plain_zero(format!("{v:.decimals$}")),
        }
    }
}

/// One cohort's exposure: where it starts and each change after.
pub struct ExposureLine {
    pub cohort: String,
    /// (when, exposure in percent from then), in time order; the first is the start.
    pub steps: Vec<(Millis, f64)>,
}

/// A decision on the exposure chart.
pub struct DecisionMark {
    pub at: Millis,
    pub version: u64,
    pub action: String,
    /// Whether it changed an exposure, a status or the kill switch (drawn large, linked).
    pub changed: bool,
    pub href: String,
}

fn action_colour(action: &str) -> &'static str {
    match action {
        "rollback" | "kill" | "kill_switch" => "#D55E00",
        "expand" | "resume" | "approve" | "complete" => "#009E73",
        "hold" | "slow" | "manual_review" => "#E69F00",
        _ => "#0072B2",
    }
}

/// A gate's exposure per cohort over `span` as steps, with every decision marked: a triangle
/// (a link to the decision) for each that changed something, a tick for each that did not.
pub fn exposure(lines: &[ExposureLine], marks: &[DecisionMark], span: (Millis, Millis)) -> Markup {
    let f = Frame {
        w: 900.0,
        h: 250.0,
        left: 48.0,
        right: 12.0,
        top: 22.0,
        bottom: 34.0,
        x: (span.0 as f64, span.1.max(span.0 + 1) as f64),
        y: (0.0, 100.0),
    };
    let y_ticks: Vec<(f64, String)> = [0.0, 25.0, 50.0, 75.0, 100.0]
        .iter()
        .map(|v| (*v, format!("{v}%")))
        .collect();
    let x_ticks = time_ticks(span.0, span.1);
    let paths: Vec<(String, &str, &str, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let (colour, dash) = COHORTS[i % COHORTS.len()];
            let mut d = String::new();
            for (k, (at, e)) in line.steps.iter().enumerate() {
                let (x, y) = (f.px(*at as f64), f.py(*e));
                if k == 0 {
                    let _ = write!(d, "M{x:.1} {y:.1}");
                } else {
                    let _ = write!(d, "H{x:.1}V{y:.1}");
                }
            }
            let _ = write!(d, "H{:.1}", f.px(span.1 as f64));
            (d, colour, dash, line.cohort.as_str())
        })
        .collect();
    let mut quiet = String::new();
    let base = f.h - f.bottom;
    for m in marks.iter().filter(|m| !m.changed) {
        let _ = write!(quiet, "M{:.1} {base:.1}v-5", f.px(m.at as f64));
    }
    html! {
        figure.chart {
            svg.exposure width=(f.w) height=(f.h) viewBox=(format!("0 0 {} {}", f.w, f.h)) role="img" aria-label="exposure per cohort over time" {
                title { "Exposure per cohort over time, every decision marked" }
                (f.axes(&y_ticks, &x_ticks, "exposure (% of units)"))
                @for (d, colour, dash, cohort) in &paths {
                    path.step d=(d) fill="none" stroke=(colour) stroke-width="2.5" stroke-dasharray=(dash) { title { (cohort) } }
                }
                path.quiet d=(quiet) fill="none" stroke="#777" stroke-width="1.5" {}
                @for m in marks.iter().filter(|m| m.changed) {
                    a href=(m.href) {
                        path.mark transform=(format!("translate({:.1} {:.1})", f.px(m.at as f64), f.top - 4.0))
                            d="M0 6L-5 -3L5 -3Z" fill=(action_colour(&m.action)) {
                            title { "v" (m.version) " " (m.action) }
                        }
                    }
                }
            }
            figcaption.legend {
                @for (i, line) in lines.iter().enumerate() {
                    span.key {
                        svg width="28" height="10" aria-hidden="true" {
                            path d="M1 5H27" stroke=(COHORTS[i % COHORTS.len()].0)
                                stroke-dasharray=(COHORTS[i % COHORTS.len()].1) stroke-width="2.5" {}
                        }
                        (line.cohort)
                    }
                }
                span.key { svg width="12" height="10" aria-hidden="true" { path d="M6 9L1 1L11 1Z" fill="#0072B2" {} } "decision that changed something (click for its evidence)" }
                span.key { svg width="8" height="10" aria-hidden="true" { path d="M4 10V2" stroke="#777" stroke-width="1.5" {} } "decision without a change" }
            }
        }
    }
}

/// One judged window of one metric in one cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowPoint {
    pub start: Millis,
    pub end: Millis,
    pub treatment: Option<f64>,
    /// The treatment's decided interval.
    pub interval: Option<(f64, f64)>,
    pub baseline: Option<f64>,
    /// Where the watch, stop and kill rules start, against this window's baseline.
    pub thresholds: [Option<f64>; 3],
    pub zone: String,
}

/// The y range a window chart needs: every treatment, interval, baseline and threshold,
/// padded; a flat range is widened so it still has height.
fn value_range(points: &[WindowPoint]) -> (f64, f64) {
    let values = points.iter().flat_map(|p| {
        let (lo, hi) = p.interval.unzip();
        [p.treatment, lo, hi, p.baseline]
            .into_iter()
            .chain(p.thresholds)
            .flatten()
            .filter(|v| v.is_finite())
    });
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        lo.abs().max(1e-3) * 0.1
    };
    // Nothing drawn below zero is not padded below it.
    let padded = if lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    (padded, hi + pad)
}

/// Treatment against baseline per window for one metric in one cohort: the treatment as its
/// zone's marker with its interval, the baseline as a line, the watch / stop / kill thresholds
/// as dashed lines.
pub fn windows(title: &str, unit: Unit, points: &[WindowPoint]) -> Markup {
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a.start, b.end.max(a.start + 1)),
        _ => (0, 1),
    };
    let f = Frame {
        w: 440.0,
        h: 190.0,
        left: 54.0,
        right: 8.0,
        top: 20.0,
        bottom: 34.0,
        x: (span.0 as f64, span.1 as f64),
        y: value_range(points),
    };
    let (values, decimals) = ticks(f.y.0, f.y.1, 4);
    let y_ticks: Vec<(f64, String)> = values
        .iter()
        .map(|v| (*v, unit.tick(*v, decimals)))
        .collect();
    let x_ticks = time_ticks(span.0, span.1);
    let mid = |p: &WindowPoint| f.px((p.start + p.end) as f64 / 2.0);
    // A line through each window, broken where the window has no value.
    let line = |value: &dyn Fn(&WindowPoint) -> Option<f64>| {
        let mut d = String::new();
        let mut open = false;
        for p in points {
            match value(p) {
                Some(v) => {
                    let (x0, x1, y) = (f.px(p.start as f64), f.px(p.end as f64), f.py(v));
                    let _ = if open {
                        write!(d, "L{x0:.1} {y:.1}H{x1:.1}")
                    } else {
                        write!(d, "M{x0:.1} {y:.1}H{x1:.1}")
                    };
                    open = true;
                }
                None => open = false,
            }
        }
        d
    };
    let baseline = line(&|p| p.baseline);
    let thresholds: Vec<(String, &str, &str, &str)> = THRESHOLDS
        .iter()
        .enumerate()
        .map(|(z, (name, colour, dash))| (line(&|p| p.thresholds[z]), *name, *colour, *dash))
        .filter(|(d, ..)| !d.is_empty())
        .collect();
    let mut bars: Vec<(&str, String)> = ZONES.iter().map(|(z, _)| (*z, String::new())).collect();
    for p in points {
        if let Some((lo, hi)) = p.interval {
            let zone = known_zone(&p.zone);
            if let Some((_, d)) = bars.iter_mut().find(|(z, _)| *z == zone) {
                let _ = write!(d, "M{:.1} {:.1}V{:.1}", mid(p), f.py(lo), f.py(hi));
            }
        }
    }
    html! {
        figure.chart.small {
            svg.windows width=(f.w) height=(f.h) viewBox=(format!("0 0 {} {}", f.w, f.h)) role="img" aria-label=(title) {
                title { (title) ": treatment against baseline per window" }
                (f.axes(&y_ticks, &x_ticks, match unit { Unit::Share => "share of trials (%)", Unit::AsSent => "value (unit as sent)" }))
                text.title x=(format!("{:.1}", f.w - f.right)) y="11" text-anchor="end" { (title) }
                @for (d, name, colour, dash) in &thresholds {
                    path.threshold d=(d) fill="none" stroke=(colour) stroke-width="1.5" stroke-dasharray=(dash) { title { (name) " threshold" } }
                }
                @if !baseline.is_empty() {
                    path.baseline d=(baseline) fill="none" stroke=(BASELINE) stroke-width="2" {}
                }
                @for (zone, d) in &bars {
                    @if !d.is_empty() {
                        path.interval d=(d) fill="none" stroke=(zone_colour(zone)) stroke-width="2" stroke-opacity="0.75" {}
                    }
                }
                @for p in points {
                    @if let Some(v) = p.treatment {
                        use href=(format!("#m-{}", known_zone(&p.zone))) x=(format!("{:.1}", mid(p))) y=(format!("{:.1}", f.py(v))) {}
                    }
                }
            }
        }
    }
}

/// The key to every window chart of a page.
pub fn windows_legend() -> Markup {
    html! {
        p.legend {
            @for (zone, _) in ZONES {
                span.key {
                    svg width="12" height="12" viewBox="-6 -6 12 12" aria-hidden="true" { use href=(format!("#m-{zone}")) {} }
                    (zone)
                }
            }
            span.key { svg width="10" height="14" aria-hidden="true" { path d="M5 1V13" stroke="#555" stroke-width="2" {} } "treatment's decided interval" }
            span.key { svg width="28" height="10" aria-hidden="true" { path d="M1 5H27" stroke=(BASELINE) stroke-width="2" {} } "baseline" }
            @for (name, colour, dash) in THRESHOLDS {
                span.key {
                    svg width="28" height="10" aria-hidden="true" { path d="M1 5H27" stroke=(colour) stroke-dasharray=(dash) stroke-width="2" {} }
                    (name) " threshold"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, d) = ticks(0.0113, 0.0291, 4);
        assert_eq!(d, 3);
        assert!(t.len() >= 3 && t.len() <= 6, "{t:?}");
        assert!(t.iter().all(|v| *v >= 0.0113 && *v <= 0.0291));
        assert!((t[0] - 0.015).abs() < 1e-12, "{t:?}");
        let (t, d) = ticks(0.0, 100.0, 4);
        assert_eq!((t, d), (vec![0.0, 25.0, 50.0, 75.0, 100.0], 0));
        assert_eq!(ticks(1.0, 1.0, 4).0, vec![1.0]);
    }

    #[test]
    fn time_ticks_fall_on_round_minutes() {
        let lo = 1_700_000_123_000;
        let t = time_ticks(lo, lo + 3 * 3_600_000);
        assert!(t.len() >= 3 && t.len() <= 7, "{t:?}");
        assert!(t.iter().all(|(v, _)| (*v as i64) % 1_800_000 == 0));
        assert!(t[0].1.len() == 5, "{t:?}");
        let seconds = time_ticks(lo, lo + 12_000);
        assert!(
            seconds.iter().all(|(v, _)| (*v as i64) % 2_000 == 0),
            "{seconds:?}"
        );
        assert_eq!(seconds[0].1.len(), 8, "HH:MM:SS: {seconds:?}");
        assert_eq!(Unit::Share.tick(-1e-12, 2), "0%");
        assert_eq!(Unit::AsSent.tick(-0.0001, 2), "0.00");
        let days = time_ticks(lo, lo + 3 * 86_400_000);
        assert!(days[0].1.contains('-'), "{days:?}");
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(figure(0.012345), "0.01235");
        assert_eq!(figure(12.5), "12.5");
        assert_eq!(figure(1234.4), "1234");
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(f64::NAN), "—");
        assert_eq!(Unit::Share.show(0.0125), "1.25%");
    }

    fn point(start: Millis, treatment: f64, zone: &str) -> WindowPoint {
        WindowPoint {
            start,
            end: start + 60_000,
            treatment: Some(treatment),
            interval: Some((treatment - 0.01, treatment + 0.01)),
            baseline: Some(0.02),
            thresholds: [Some(0.03), Some(0.04), None],
            zone: zone.into(),
        }
    }

    #[test]
    fn a_window_chart_draws_each_zone_its_marker_and_every_threshold_it_has() {
        let points = vec![point(0, 0.02, "healthy"), point(60_000, 0.05, "stop")];
        let svg = windows("error_rate · eu", Unit::Share, &points).into_string();
        assert!(svg.contains("href=\"#m-healthy\"") && svg.contains("href=\"#m-stop\""));
        assert_eq!(svg.matches("class=\"threshold\"").count(), 2, "{svg}");
        assert!(svg.contains("watch threshold") && svg.contains("stop threshold"));
        assert!(!svg.contains("kill threshold"));
        assert!(svg.contains("class=\"baseline\""));
        assert!(svg.contains("share of trials (%)"));
        // The kill line is missing, the range still holds every point and line.
        let (lo, hi) = value_range(&points);
        assert!(lo <= 0.01 && hi >= 0.06);
    }

    #[test]
    fn the_exposure_chart_links_each_change_and_ticks_each_quiet_decision() {
        let lines = vec![ExposureLine {
            cohort: "eu".into(),
            steps: vec![(0, 1.0), (60_000, 5.0), (120_000, 0.0)],
        }];
        let mark = |at, version, changed| DecisionMark {
            at,
            version,
            action: if changed { "rollback" } else { "stay" }.into(),
            changed,
            href: format!("/d/{version}"),
        };
        let marks = vec![
            mark(60_000, 2, true),
            mark(90_000, 3, false),
            mark(120_000, 4, true),
        ];
        let svg = exposure(&lines, &marks, (0, 180_000)).into_string();
        assert!(svg.contains("href=\"/d/2\"") && svg.contains("href=\"/d/4\""));
        assert!(!svg.contains("href=\"/d/3\""));
        assert_eq!(svg.matches("v-5").count(), 1);
        assert!(svg.contains(">eu<"), "the legend names the cohort");
    }
}
