//! An SVG chart of incremental publish time against repository size, log-log, one line per
//! tool and format.

use std::fmt::Write as _;

use super::Row;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const MARGIN: f64 = 60.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

pub fn incremental(rows: &[Row]) -> String {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut add = |name: String, n: usize, secs: f64| {
        let point = ((n as f64).log10(), secs.max(1e-3).log10());
        match series.iter_mut().find(|(s, _)| *s == name) {
            Some((_, points)) => points.push(point),
            None => series.push((name, vec![point])),
        }
    };
    for row in rows.iter().filter(|r| r.scenario == "incremental publish") {
        add(
            format!("Packyard ({})", row.format),
            row.packages,
            row.packyard,
        );
        for (tool, secs) in &row.reference {
            add(format!("{tool} ({})", row.format), row.packages, *secs);
        }
    }
    let all = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let x0 = all().map(|p| p.0).fold(f64::MAX, f64::min).floor();
    let x1 = all()
        .map(|p| p.0)
        .fold(f64::MIN, f64::max)
        .ceil()
        .max(x0 + 1.0);
    let y0 = all().map(|p| p.1).fold(f64::MAX, f64::min).floor();
    let y1 = all()
        .map(|p| p.1)
        .fold(f64::MIN, f64::max)
        .ceil()
        .max(y0 + 1.0);
    let px = |x: f64| MARGIN + (x - x0) / (x1 - x0) * (WIDTH - 2.0 * MARGIN);
    let py = |y: f64| HEIGHT - MARGIN - (y - y0) / (y1 - y0) * (HEIGHT - 2.0 * MARGIN);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="24" font-size="15">Incremental publish: seconds (log) against packages in the repository (log)</text>"#
    );
    for decade in (y0 as i32)..=(y1 as i32) {
        let y = py(f64::from(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{MARGIN}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="8" y="{y:.1}">{} s</text>"##,
            WIDTH - MARGIN,
            10f64.powi(decade)
        );
    }
    for decade in (x0 as i32)..=(x1 as i32) {
        let x = px(f64::from(decade));
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            HEIGHT - MARGIN + 20.0,
            10u64.pow(decade as u32)
        );
    }
    for (index, (name, points)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                px(*x),
                py(*y)
            );
        }
        let label = name.replace('&', "&amp;").replace('<', "&lt;");
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{label}</text>"#,
            MARGIN + 10.0,
            MARGIN + 16.0 * index as f64
        );
    }
    svg.push_str("</svg>\n");
    svg
}
