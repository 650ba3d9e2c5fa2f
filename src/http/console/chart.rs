//! Charts drawn on the server as inline SVG: the fee preview's lines and the metrics' bars.
//! Geometry is integer arithmetic on the figures (minor units, counts, basis points); each
//! chart has a title and a description for screen readers, and the pages give the numbers
//! as a table beside it.

use maud::{Markup, html};

const WIDTH: i64 = 720;
const HEIGHT: i64 = 300;
const LEFT: i64 = 72;
const RIGHT: i64 = 16;
const TOP: i64 = 16;
const BOTTOM: i64 = 44;

/// One line of a line chart: `(x, y)` points, `None` where there is no value.
pub struct Series<'a> {
    pub name: &'a str,
    /// CSS class giving its colour and dash (`draft`, `current`).
    pub class: &'a str,
    pub points: Vec<(i64, Option<i64>)>,
}

fn plot_x(x: i64, max_x: i64) -> i64 {
    LEFT + x * (WIDTH - LEFT - RIGHT) / max_x.max(1)
}

fn plot_y(y: i64, max_y: i64) -> i64 {
    let span = i128::from(HEIGHT - TOP - BOTTOM);
    let scaled = i128::from(y) * span / i128::from(max_y.max(1));
    HEIGHT - BOTTOM - i64::try_from(scaled).unwrap_or(0)
}

/// A step chart of several series over `0..=max_x`, with x ticks every `x_tick` labelled by
/// `x_label` and y labelled by `y_label`; `marker` draws a dashed vertical line (a maximum
/// stay) with its label.
#[allow(clippy::too_many_arguments)]
pub fn steps(
    id: &str,
    title: &str,
    description: &str,
    series: &[Series<'_>],
    max_x: i64,
    x_tick: i64,
    x_label: impl Fn(i64) -> String,
    y_label: impl Fn(i64) -> String,
    marker: Option<(i64, &str)>,
) -> Markup {
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(_, y)| *y))
        .max()
        .unwrap_or(0)
        .max(1);
    let paths: Vec<(String, &Series<'_>)> = series
        .iter()
        .map(|s| {
            let mut d = String::new();
            let mut last: Option<i64> = None;
            for (x, y) in &s.points {
                match (y, last) {
                    (Some(y), None) => {
                        d.push_str(&format!("M{} {}", plot_x(*x, max_x), plot_y(*y, max_y)));
                    }
                    (Some(y), Some(_)) => {
                        d.push_str(&format!("H{}V{}", plot_x(*x, max_x), plot_y(*y, max_y)));
                    }
                    (None, _) => {}
                }
                last = *y;
            }
            (d, s)
        })
        .collect();
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg.chart #(id) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby={ (title_id) " " (desc_id) } xmlns="http://www.w3.org/2000/svg" {
            title #(title_id) { (title) }
            desc #(desc_id) { (description) }
            (axes(max_y, &y_label))
            @for x in (0..=max_x).step_by(usize::try_from(x_tick.max(1)).unwrap_or(1)) {
                line.grid x1=(plot_x(x, max_x)) x2=(plot_x(x, max_x)) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                text.tick x=(plot_x(x, max_x)) y=(HEIGHT - BOTTOM + 18) text-anchor="middle" { (x_label(x)) }
            }
            @if let Some((x, label)) = marker {
                line.marker x1=(plot_x(x, max_x)) x2=(plot_x(x, max_x)) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                text.tick x=(plot_x(x, max_x) - 4) y=(TOP + 12) text-anchor="end" { (label) }
            }
            @for (d, s) in &paths {
                path class={ "line " (s.class) } d=(d) {}
            }
            @for (i, s) in series.iter().enumerate() {
                @let y = HEIGHT - 8;
                @let x = LEFT + i64::try_from(i).unwrap_or(0) * 220;
                line class={ "line " (s.class) } x1=(x) x2=(x + 28) y1=(y - 4) y2=(y - 4) {}
                text.legend x=(x + 34) y=(y) { (s.name) }
            }
        }
    }
}

/// The y axis: a baseline, half and top, labelled.
fn axes(max_y: i64, y_label: &impl Fn(i64) -> String) -> Markup {
    html! {
        line.axis x1=(LEFT) x2=(WIDTH - RIGHT) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM) {}
        line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
        @for y in [0, max_y / 2, max_y] {
            line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(plot_y(y, max_y)) y2=(plot_y(y, max_y)) {}
            text.tick x=(LEFT - 6) y=(plot_y(y, max_y) + 4) text-anchor="end" { (y_label(y)) }
        }
    }
}

/// A bar chart: one bar per `(label, value)`, every `label_every`th bar labelled below.
pub fn bars(
    id: &str,
    title: &str,
    description: &str,
    bars: &[(String, i64)],
    label_every: usize,
    y_label: impl Fn(i64) -> String,
) -> Markup {
    let max_y = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let count = i64::try_from(bars.len().max(1)).unwrap_or(1);
    let slot = (WIDTH - LEFT - RIGHT) * 100 / count;
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg.chart #(id) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby={ (title_id) " " (desc_id) } xmlns="http://www.w3.org/2000/svg" {
            title #(title_id) { (title) }
            desc #(desc_id) { (description) }
            (axes(max_y, &y_label))
            @for (i, (label, value)) in bars.iter().enumerate() {
                @let i = i64::try_from(i).unwrap_or(0);
                @let x = LEFT + i * slot / 100;
                @let w = (slot * 8 / 1000).max(1);
                @let top = plot_y((*value).max(0), max_y);
                rect.bar x=(x + slot / 1000) y=(top) width=(w) height=(HEIGHT - BOTTOM - top) {
                    title { (label) ": " (y_label(*value)) }
                }
                @if label_every > 0 && usize::try_from(i).unwrap_or(0) % label_every == 0 {
                    text.tick x=(x + slot / 200) y=(HEIGHT - BOTTOM + 18) text-anchor="middle" { (label) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_draw_each_series_and_escape_text() {
        let svg = steps(
            "c",
            "Fee <preview>",
            "d",
            &[
                Series {
                    name: "draft",
                    class: "draft",
                    points: vec![(0, Some(0)), (60, Some(250)), (120, Some(500))],
                },
                Series {
                    name: "current",
                    class: "current",
                    points: vec![(0, None), (60, Some(100))],
                },
            ],
            120,
            60,
            |x| format!("{}h", x / 60),
            |y| y.to_string(),
            Some((90, "max")),
        )
        .into_string();
        assert!(svg.contains("Fee &lt;preview&gt;"));
        assert!(
            svg.contains("class=\"line draft\" d=\"M72 256H388V136H704V16\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"line current\" d=\"M388 208\""),
            "{svg}"
        );
    }

    #[test]
    fn bars_are_as_tall_as_their_share_of_the_largest() {
        let svg = bars("b", "t", "d", &[("a".into(), 1), ("b".into(), 2)], 1, |y| {
            y.to_string()
        })
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("height=\"120\""), "{svg}");
        assert!(svg.contains("height=\"240\""), "{svg}");
    }
}
