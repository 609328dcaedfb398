//! `convshade bench --plot FILE.svg`: median time per case on a log scale, one bar per device
//! of this run and of each compared report.

use std::path::Path;

use convshade::bench::Report;
use convshade::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Only SVG is drawn (PNG would need a font library on the machine).
pub(crate) fn check_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(()),
        _ => Err(Error::Invalid {
            op: "bench",
            msg: format!("--plot draws SVG: give a .svg file, got {}", path.display()),
        }),
    }
}

/// One bar colour: an engine on a device, with its time per case.
struct Series {
    label: String,
    ms: Vec<Option<f64>>,
}

fn series(report: &Report, others: &[Report], cases: &[String]) -> Vec<Series> {
    let mut out = Vec::new();
    for rep in std::iter::once(report).chain(others) {
        for dev in ["cpu", "gpu"] {
            let ms: Vec<Option<f64>> =
                cases.iter().map(|c| rep.find(c, dev).map(|r| r.median_ms)).collect();
            if ms.iter().any(Option::is_some) {
                out.push(Series { label: format!("{} {dev}", rep.engine), ms });
            }
        }
    }
    out
}

pub(crate) fn draw(path: &Path, report: &Report, others: &[Report]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::Io {
        path: path.display().to_string(),
        msg: format!("drawing the chart: {e}"),
    };
    let mut cases: Vec<String> = Vec::new();
    for r in &report.results {
        if !cases.contains(&r.case) {
            cases.push(r.case.clone());
        }
    }
    let all = series(report, others, &cases);
    let values = all.iter().flat_map(|s| s.ms.iter().flatten().copied());
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if cases.is_empty() || lo > hi {
        return Err(err(&"no results to draw"));
    }
    let (lo, hi) = (lo / 2.0, hi * 2.0);
    let width = (160 + 70 * cases.len()) as u32;
    let root = SVGBackend::new(path, (width, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("median time per case (ms, log scale)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(150)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..cases.len() as f64, (lo..hi).log_scale())
        .map_err(|e| err(&e))?;
    chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc("ms").draw().map_err(|e| err(&e))?;
    let slot = 0.8 / all.len().max(1) as f64;
    for (j, s) in all.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let bars = s.ms.iter().enumerate().filter_map(|(i, v)| {
            let x0 = i as f64 + 0.1 + j as f64 * slot;
            v.map(|v| Rectangle::new([(x0, lo), (x0 + slot, v)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(&e))?
            .label(&s.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    // case names under their bars, written downwards
    let font = ("sans-serif", 13)
        .into_font()
        .transform(FontTransform::Rotate90)
        .into_text_style(&root)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, c) in cases.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
        root.draw(&Text::new(c.as_str(), (x, y + 8), font.clone())).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
