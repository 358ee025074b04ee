//! HdrHistogram's percentile distribution text (`.hgrm`), as written by the Java
//! `Histogram.outputPercentileDistribution` and by `wrk2 --latency`, and read by the HdrHistogram
//! plotter (<https://hdrhistogram.github.io/HdrHistogram/plotFiles.html>).

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Percentile steps per half-distance to 100 %, as in the Java default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The distribution of `hist`, with values divided by `unit_ratio` (1000 turns the recorded
/// microseconds into milliseconds).
pub fn percentile_distribution(hist: &Histogram<u64>, unit_ratio: f64) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / unit_ratio;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        hist.mean() / unit_ratio,
        hist.stdev() / unit_ratio
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        hist.max() as f64 / unit_ratio,
        hist.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    );
    out
}

/// The sub-bucket count HdrHistogram derives from the significant digits (2048 for 3).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let single_unit = 2.0 * 10f64.powi(i32::from(sigfig));
    let magnitude = single_unit.log2().ceil();
    2f64.powf(magnitude) as u64
}
