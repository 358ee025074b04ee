//! A hand-written SVG plot of latency by percentile, drawn like the HdrHistogram plotter: the
//! horizontal axis is `1/(1-percentile)` on a log scale (0 %, 90 %, 99 %, 99.9 % ... evenly
//! spaced), the vertical axis latency in milliseconds.

use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::hgrm::TICKS_PER_HALF_DISTANCE;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 78.0;
const BOTTOM: f64 = 70.0;
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// One curve: a histogram recorded in microseconds and its legend label.
pub struct Series<'a> {
    pub label: String,
    pub hist: &'a Histogram<u64>,
}

/// The plot as an SVG document. `target_ms` draws a dashed horizontal line (the p99 target).
pub fn latency_by_percentile(
    title: &str,
    subtitle: &str,
    series: &[Series<'_>],
    target_ms: Option<f64>,
) -> String {
    let curves: Vec<Vec<(f64, f64)>> = series.iter().map(|s| points(s.hist)).collect();
    let most = series.iter().map(|s| s.hist.len()).max().unwrap_or(0);
    // Enough decades for the data: 99.9 % needs 1000 samples to mean anything.
    let decades = ((most.max(1) as f64).log10().ceil() as u32).clamp(2, 6);
    let xmax = f64::from(decades);
    let highest = curves
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(target_ms)
        .fold(0.0f64, f64::max);
    let (ymax, ystep) = nice_axis(highest);

    let pw = WIDTH - LEFT - RIGHT;
    let ph = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x.clamp(0.0, xmax) / xmax * pw;
    let sy = |y: f64| TOP + ph - y.clamp(0.0, ymax) / ymax * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="30" text-anchor="middle" font-size="19" font-weight="bold" fill="#222">{}</text>"##,
        WIDTH / 2.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="52" text-anchor="middle" font-size="13" fill="#555">{}</text>"##,
        WIDTH / 2.0,
        esc(subtitle)
    );

    // Grid and ticks.
    let _ = writeln!(s, r##"<g stroke="#e3e3e3" stroke-width="1">"##);
    let mut y = 0.0;
    while y <= ymax + ystep * 1e-9 {
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
            LEFT,
            sy(y),
            LEFT + pw,
            sy(y)
        );
        y += ystep;
    }
    for d in 0..=decades {
        let x = sx(f64::from(d));
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{:.1}"/>"#,
            TOP + ph
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r##"<g font-size="12" fill="#333">"##);
    let decimals = decimals_for(ystep);
    let mut y = 0.0;
    while y <= ymax + ystep * 1e-9 {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{y:.decimals$}</text>"#,
            LEFT - 8.0,
            sy(y) + 4.0
        );
        y += ystep;
    }
    for d in 0..=decades {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            sx(f64::from(d)),
            TOP + ph + 20.0,
            percentile_label(d)
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444" stroke-width="1"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14" fill="#222">Percentile</text>"##,
        LEFT + pw / 2.0,
        HEIGHT - 22.0
    );
    let _ = writeln!(
        s,
        r##"<text x="24" y="{:.1}" text-anchor="middle" font-size="14" fill="#222" transform="rotate(-90 24 {:.1})">Latency (ms)</text>"##,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );

    if let Some(t) = target_ms {
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 4"/>"##,
            sy(t),
            LEFT + pw,
            sy(t)
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#d62728">p99 target {}</text>"##,
            LEFT + pw - 6.0,
            sy(t) - 6.0,
            esc(&crate::util::fmt_ms(t))
        );
    }

    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = curve
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        if !pts.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round" points="{}"/>"#,
                pts.join(" ")
            );
        }
    }

    // Legend, top left inside the plot (latency curves rise to the right).
    let _ = writeln!(s, r#"<g font-size="12">"#);
    let legend_w = series
        .iter()
        .map(|x| x.label.chars().count())
        .max()
        .unwrap_or(0) as f64
        * 6.6
        + 40.0;
    if !series.is_empty() {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{legend_w:.1}" height="{:.1}" fill="#ffffff" fill-opacity="0.85" stroke="#ccc"/>"##,
            LEFT + 12.0,
            TOP + 12.0,
            series.len() as f64 * 18.0 + 10.0
        );
    }
    for (i, ser) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let y = TOP + 30.0 + i as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/>"#,
            LEFT + 20.0,
            y - 4.0,
            LEFT + 40.0,
            y - 4.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{y:.1}" fill="#222">{}</text>"##,
            LEFT + 46.0,
            esc(&ser.label)
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, "</svg>");
    s
}

/// `(log10(1/(1-q)), ms)` points of the percentile distribution; the last point (100 %) is put
/// at the right edge so the maximum is visible.
fn points(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for v in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let q = v.quantile_iterated_to();
        let x = if q < 1.0 {
            (1.0 / (1.0 - q)).log10()
        } else {
            f64::INFINITY
        };
        out.push((x, v.value_iterated_to() as f64 / 1e3));
    }
    out
}

/// `0%`, `90%`, `99%`, `99.9%` ... for decade `d`.
fn percentile_label(d: u32) -> String {
    match d {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        _ => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

/// An axis top above `v` and a step of 1, 2, 2.5 or 5 times a power of ten (5 to 10 steps).
fn nice_axis(v: f64) -> (f64, f64) {
    let v = if v.is_finite() && v > 0.0 { v } else { 1.0 };
    let raw = v / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    } * mag;
    ((v / step).ceil().max(1.0) * step, step)
}

fn decimals_for(step: f64) -> usize {
    let mut d = 0;
    while d < 6
        && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-9
    {
        d += 1;
    }
    d
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
