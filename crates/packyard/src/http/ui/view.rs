//! How values read on a page: sizes in human units (with the exact bytes beside), times,
//! and the small SVG charts, all built here so templates only place strings.

use std::fmt::Write as _;

/// A block of text to copy: shell commands, a source file, a token.
pub struct Snippet {
    /// The element id (unique on the page) the copy button names.
    pub id: String,
    pub label: String,
    pub text: String,
}

impl Snippet {
    pub fn new(
        id: impl Into<String>,
        label: impl Into<String>,
        text: impl Into<String>,
    ) -> Snippet {
        Snippet {
            id: id.into(),
            label: label.into(),
            text: text.into(),
        }
    }
}

/// `15 kB`, `900 MB`, `2.0 GB`: decimal units, as `ls -lh --si` and package managers show.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `2026-12-04 09:30 UTC`.
pub fn datetime(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// `3 minutes ago`, `in 2 days`.
pub fn relative(secs: i64, now: i64) -> String {
    let delta = now - secs;
    let (n, unit) = match delta.unsigned_abs() {
        d if d < 60 => return "just now".into(),
        d if d < 3600 => (d / 60, "minute"),
        d if d < 86_400 => (d / 3600, "hour"),
        d => (d / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if delta >= 0 {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

/// Milliseconds as `850 ms` or `2.4 s`.
pub fn duration_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// A bar chart of daily counts as an SVG document (served as `<img>` data: the policy
/// forbids inline styles, not images), with its numbers in `<title>`s for screen readers
/// and hover.
pub fn bar_chart(days: &[(String, i64)], width: u32, height: u32) -> String {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let slot = f64::from(width) / days.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
    );
    for (i, (day, n)) in days.iter().enumerate() {
        let h = (*n as f64 / max as f64) * f64::from(height - 2);
        let x = i as f64 * slot;
        let _ = write!(
            svg,
            "<rect x='{x:.1}' y='{:.1}' width='{:.1}' height='{h:.1}' fill='#3b82f6'><title>{day}: {n}</title></rect>",
            f64::from(height) - h,
            (slot - 1.0).max(1.0),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// An SVG document as a `data:` URL for an `<img src>`.
pub fn svg_data_url(svg: &str) -> String {
    use base64::Engine as _;
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

/// The last `days` days (oldest first) with the counts of `times` (unix seconds and counts)
/// that fall in each.
pub fn daily(times: &[(i64, i64)], now: i64, days: i64) -> Vec<(String, i64)> {
    let today = now.div_euclid(86_400);
    let mut out: Vec<(String, i64)> = (0..days)
        .map(|i| {
            let day = today - (days - 1) + i;
            (datetime(day * 86_400)[..10].to_owned(), 0)
        })
        .collect();
    for (at, n) in times {
        let index = at.div_euclid(86_400) - (today - (days - 1));
        if let Some(slot) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) {
            slot.1 += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(15_000), "15 kB");
        assert_eq!(size(900_000_000), "900 MB");
        assert_eq!(size(2_000_000_000), "2.0 GB");
        assert_eq!(size(1_234), "1.2 kB");
    }

    #[test]
    fn counts_and_times() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(relative(100, 100 + 7200), "2 hours ago");
        assert_eq!(relative(100 + 86_400 * 3, 100), "in 3 days");
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn daily_counts_fall_on_their_days() {
        let now = 10 * 86_400 + 500;
        let days = daily(
            &[(now, 2), (now - 86_400, 5), (now - 40 * 86_400, 9)],
            now,
            3,
        );
        assert_eq!(days.iter().map(|d| d.1).collect::<Vec<_>>(), vec![0, 5, 2]);
        assert_eq!(days[2].0, "1970-01-11");
    }
}
