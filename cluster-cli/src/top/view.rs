//! What `cluster top` draws: the last status, the last events, and how fresh they are, laid
//! out on one screen. The figures and the table cells come from [`crate::table`], as for
//! `cluster status`; this module only places and colours them.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use serde_json::Value;

use super::feed::Update;
use crate::table;

/// Events kept for the events panel (more than any screen shows).
const KEPT_EVENTS: usize = 200;

/// Blanks between the table's columns, as in `cluster status`.
const SPACING: usize = 2;

/// How `top` ends, when the feed decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// The cluster is gone; why, for people.
    Stopped(String),
    /// A signal asked `top` to end.
    Terminated,
}

/// The screen's state.
#[derive(Debug)]
pub(super) struct View {
    /// Which cluster: its runtime directory, for the title.
    place: String,
    /// The last status (`null` until the first).
    status: Value,
    /// When it came.
    updated: Option<SystemTime>,
    /// Why the last status request failed, while the primary still runs.
    trouble: Option<String>,
    /// The last events, oldest first: when they came (`None` for the replayed ones) and the
    /// text.
    events: VecDeque<(Option<SystemTime>, String, bool)>,
    /// Why there are no events, when the stream is not available.
    no_events: Option<String>,
    /// Colours on (`NO_COLOR` unset or empty).
    color: bool,
}

impl View {
    /// An empty view of the cluster in `place`.
    pub(super) fn new(place: String, color: bool) -> Self {
        View {
            place,
            status: Value::Null,
            updated: None,
            trouble: None,
            events: VecDeque::new(),
            no_events: None,
            color,
        }
    }

    /// Takes in what the feed learnt at `now`; `Some` when `top` must end.
    pub(super) fn apply(&mut self, update: Update, now: SystemTime) -> Option<End> {
        match update {
            Update::Status(status) => {
                self.status = status;
                self.updated = Some(now);
                self.trouble = None;
            }
            Update::Trouble(why) => self.trouble = Some(why),
            Update::Event { name, data, live } => {
                if self.events.len() == KEPT_EVENTS {
                    self.events.pop_front();
                }
                let alarming = alarming(&name, &data);
                self.events.push_back((live.then_some(now), describe(&name, &data), alarming));
            }
            Update::NoEvents(why) => self.no_events = Some(why),
            Update::Gone(why) => return Some(End::Stopped(why)),
            Update::Terminated => return Some(End::Terminated),
        }
        None
    }

    /// Draws the whole screen as of `now`.
    pub(super) fn draw(&self, frame: &mut Frame<'_>, now: SystemTime) {
        let area = frame.area();
        let header = self.header(usize::from(area.width.saturating_sub(2)), now);
        let rows = table::rows(&self.status);
        let [head, workers, events, foot] = Layout::vertical([
            Constraint::Length(height(header.len() + 2)),
            Constraint::Length(height(rows.len() + 3)),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);

        let title = format!(" cluster top · {} ", self.place);
        let block = Block::bordered()
            .title(Line::from(title).style(self.style(Style::new().add_modifier(Modifier::BOLD))))
            .title_top(Line::from(format!(" {} ", clock(now))).right_aligned());
        frame.render_widget(Paragraph::new(header).block(block), head);
        let inner = usize::from(area.width.saturating_sub(2));
        frame.render_widget(self.workers(&rows, inner), workers);
        frame.render_widget(self.events(events.height.saturating_sub(2)), events);
        let keys = " q quit · refreshed every second · times in UTC, as in the log";
        frame.render_widget(
            Paragraph::new(keys).style(self.style(Style::new().fg(Color::DarkGray))),
            foot,
        );
    }

    /// The header lines: the `cluster status` summary and the cluster-wide figures, flowed to
    /// `width`, then what went wrong, if anything.
    fn header(&self, width: usize, now: SystemTime) -> Vec<Line<'static>> {
        if self.status.is_null() {
            return vec![Line::from("waiting for the first status...")];
        }
        let summary = table::summary(&self.status);
        let parts = summary.split(" · ").map(str::to_owned).chain(figures(&self.status));
        let bold = self.style(Style::new().add_modifier(Modifier::BOLD));
        let mut lines: Vec<Line<'static>> =
            flow(parts, width).into_iter().map(|l| Line::from(l).style(bold)).collect();
        if let Some(why) = &self.trouble {
            let age = self.updated.and_then(|t| now.duration_since(t).ok());
            let parts = [format!("the cluster does not answer: {why}")]
                .into_iter()
                .chain(age.map(|d| format!("figures from {} ago", table::duration(d.as_secs()))));
            let red = self.style(Style::new().fg(Color::Red));
            lines.extend(flow(parts, width).into_iter().map(|l| Line::from(l).style(red)));
        }
        lines
    }

    /// The workers table, with the columns of `cluster status`.
    /// On a screen narrower than the table, the columns on the right are left out rather than
    /// every column cut (a cut pid would be another pid).
    fn workers(&self, rows: &[[String; 13]], width: usize) -> Table<'static> {
        let state = table::HEADINGS.iter().position(|h| *h == "state").unwrap_or(usize::MAX);
        let mut widths: Vec<usize> = table::HEADINGS.iter().map(|h| h.len()).collect();
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut used = 0;
        let fit = widths
            .iter()
            .take_while(|w| {
                used += *w + if used == 0 { 0 } else { SPACING };
                used <= width
            })
            .count()
            .max(1);
        widths.truncate(fit);
        // Numbers right-aligned, words left-aligned, as `cluster status` prints them.
        let cell = |i: usize, text: &str| {
            let line = Line::from(text.to_owned());
            Cell::from(if i == state { line.left_aligned() } else { line.right_aligned() })
        };
        let header =
            Row::new(table::HEADINGS.iter().take(fit).enumerate().map(|(i, h)| cell(i, h)))
                .style(Style::new().add_modifier(Modifier::BOLD));
        let body: Vec<Row<'static>> = rows
            .iter()
            .map(|row| {
                Row::new(row.iter().take(fit).enumerate().map(|(i, text)| {
                    let c = cell(i, text);
                    if i == state { c.style(self.style(state_style(text))) } else { c }
                }))
            })
            .collect();
        let title = format!(" workers ({}) ", rows.len());
        Table::new(body, widths.into_iter().map(|w| Constraint::Length(height(w))))
            .header(header)
            .column_spacing(height(SPACING))
            .block(Block::bordered().title(title))
    }

    /// The last `lines` events, newest at the bottom.
    fn events(&self, lines: u16) -> Paragraph<'static> {
        let block = Block::bordered().title(" events ");
        if let Some(why) = &self.no_events {
            return Paragraph::new(format!("no events: {why}")).block(block);
        }
        if self.events.is_empty() {
            return Paragraph::new("no events yet").block(block);
        }
        let skip = self.events.len().saturating_sub(usize::from(lines));
        let text: Vec<Line<'static>> = self
            .events
            .iter()
            .skip(skip)
            .map(|(at, text, alarming)| {
                // Replayed events came before `top` started; the stream does not say when.
                let when = at.map_or("earlier ".to_owned(), |t| {
                    clock(t).trim_end_matches(" UTC").to_owned()
                });
                let style = if *alarming { Style::new().fg(Color::Red) } else { Style::new() };
                Line::from(vec![
                    Span::styled(when, self.style(Style::new().fg(Color::DarkGray))),
                    Span::raw("  "),
                    Span::styled(text.clone(), self.style(style)),
                ])
            })
            .collect();
        Paragraph::new(text).block(block)
    }

    /// `style`, or the plain style without colours.
    fn style(&self, style: Style) -> Style {
        if self.color { style } else { Style::new().add_modifier(style.add_modifier) }
    }
}

/// The cluster-wide figures `cluster status` has no place for: the worst p99, the memory and
/// CPU of all the workers.
fn figures(status: &Value) -> Vec<String> {
    let workers = status["workers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let worst = workers.iter().filter_map(|w| w["latencyP99Ms"].as_f64()).reduce(f64::max);
    let sampled = |key: &str| workers.iter().any(|w| w[key].is_number());
    let health = &status["health"];
    let total = |key: &str| health[key]["total"].as_f64().unwrap_or(0.0);
    vec![
        // Percentiles do not add up: the slowest worker's p99 bounds the cluster's.
        worst.map_or("p99 -".to_owned(), |ms| format!("p99 {ms:.1}ms (slowest worker)")),
        if sampled("memoryUsage") {
            format!("memory {:.0}MB", total("memoryUsage"))
        } else {
            "memory -".into()
        },
        if sampled("cpuPercent") {
            format!("cpu {:.0}%", total("cpuUsage"))
        } else {
            "cpu -".into()
        },
    ]
}

/// Joins `parts` with ` · ` into lines of at most `width` characters (a part longer than the
/// width gets a line of its own, cut by the screen).
fn flow(parts: impl IntoIterator<Item = String>, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for part in parts {
        if line.is_empty() {
            line = part;
        } else if line.chars().count() + 3 + part.chars().count() <= width {
            line.push_str(" · ");
            line.push_str(&part);
        } else {
            lines.push(std::mem::replace(&mut line, part));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// An event in one line: its name and its fields (`type` aside, nulls left out), the ones
/// that say which worker first.
fn describe(name: &str, data: &Value) -> String {
    const FIRST: [&str; 4] = ["slot", "pid", "workerId", "operation"];
    let mut text = name.to_owned();
    let Some(fields) = data.as_object() else { return text };
    let rest = fields.iter().filter(|(k, _)| !FIRST.contains(&k.as_str()));
    let first = FIRST.iter().filter_map(|k| fields.get_key_value(*k));
    for (key, value) in first.chain(rest).filter(|(k, v)| *k != "type" && !v.is_null()) {
        match value {
            Value::String(s) => text.push_str(&format!(" {key}={s}")),
            other => text.push_str(&format!(" {key}={other}")),
        }
    }
    text
}

/// Whether an event is bad news: a worker lost, a start or an operation that failed.
fn alarming(name: &str, data: &Value) -> bool {
    let lost = name == "workerExited" && data["expected"].as_bool() == Some(false);
    lost || name.ends_with("Failed")
        || name.ends_with("FailedStart")
        || name == "killed"
        || name == "crashLooping"
}

fn state_style(state: &str) -> Style {
    match state {
        "ready" => Style::new().fg(Color::Green),
        "starting" => Style::new().fg(Color::Yellow),
        "ejected" | "exited" => Style::new().fg(Color::Red),
        _ => Style::new().fg(Color::Magenta),
    }
}

/// `14:03:27 UTC`: the time of day in UTC, as the log's timestamps are.
pub(super) fn clock(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn height(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use serde_json::json;

    use super::*;

    fn status() -> Value {
        json!({
            "listen": "127.0.0.1:8080", "strategy": "round-robin", "desiredWorkers": 2,
            "readyWorkers": 1, "generation": 3,
            "operation": {"id": 7, "kind": "rolling-restart", "done": 1, "total": 2, "generation": 3},
            "health": {"memoryUsage": {"total": 96.4}, "cpuUsage": {"total": 12.2}},
            "workers": [
                {"slot": 1, "workerId": 9, "pid": 4242, "generation": 3, "status": "starting",
                 "uptime": 2_000, "rates": {}, "latencyP99Ms": null, "memoryUsage": 40.0,
                 "cpuPercent": 2.0},
                {"slot": 0, "workerId": 4, "pid": 4141, "generation": 2, "status": "ready",
                 "rotation": "in", "uptime": 65_000, "rates": {"requestsPerSec": 3.0},
                 "latencyP99Ms": 4.56, "memoryUsage": 56.4, "cpuPercent": 10.2}
            ]
        })
    }

    fn screen(view: &View, now: SystemTime, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| view.draw(frame, now)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_owned()).collect::<String>())
            .collect()
    }

    #[test]
    fn the_header_the_workers_and_the_events_on_one_screen() {
        let now = UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 3600 * 14 + 62);
        let mut view = View::new("/srv/app/.cluster".into(), false);
        assert_eq!(view.apply(Update::Status(status()), now), None);
        let started = json!({"type": "workerStarted", "workerId": 9, "slot": 1, "pid": 4242, "addr": "127.0.0.1:9", "generation": 3});
        view.apply(Update::Event { name: "workerStarted".into(), data: started, live: true }, now);
        let exited =
            json!({"type": "workerExited", "slot": 0, "pid": 1, "expected": false, "code": null});
        view.apply(Update::Event { name: "workerExited".into(), data: exited, live: false }, now);
        let lines = screen(&view, now, 100, 20);
        let text = lines.join("\n");
        assert!(
            lines[0].contains("cluster top · /srv/app/.cluster")
                && lines[0].contains("14:01:02 UTC"),
            "{text}"
        );
        assert!(text.contains("1 of 2 workers ready"), "{text}");
        assert!(text.contains("rolling-restart #7 1/2"), "{text}");
        for figure in ["p99 4.6ms (slowest worker)", "memory 96MB", "cpu 12%"] {
            assert!(text.contains(figure), "{figure}: {text}");
        }
        // Flowed to the width: no line of the header is cut.
        assert!(lines[1..4].iter().all(|l| l.ends_with(" │")), "{text}");
        // The table of `cluster status`, in slot order.
        let row = |pid: &str| lines.iter().position(|l| l.split_whitespace().any(|c| c == pid));
        assert!(row("4141").unwrap() < row("4242").unwrap(), "{text}");
        assert!(
            lines[row("4141").unwrap()].contains("ready")
                && lines[row("4141").unwrap()].contains("1m 5s"),
            "{text}"
        );
        assert!(
            text.contains(
                "14:01:02  workerStarted slot=1 pid=4242 workerId=9 addr=127.0.0.1:9 generation=3"
            ),
            "{text}"
        );
        assert!(text.contains("earlier   workerExited slot=0 pid=1 expected=false"), "{text}");
    }

    #[test]
    fn trouble_and_the_end_of_the_cluster() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let mut view = View::new("rt".into(), true);
        view.apply(Update::Status(status()), t0);
        view.apply(Update::Trouble("no answer within 3 s".into()), t0);
        let text = screen(&view, t0 + Duration::from_secs(5), 120, 20).join("\n");
        assert!(
            text.contains(
                "the cluster does not answer: no answer within 3 s · figures from 5s ago"
            ),
            "{text}"
        );
        view.apply(Update::Status(status()), t0);
        assert!(!screen(&view, t0, 120, 20).join("\n").contains("does not answer"));
        let gone = view.apply(Update::Gone("the cluster stopped".into()), t0);
        assert_eq!(gone, Some(End::Stopped("the cluster stopped".into())));
        assert_eq!(view.apply(Update::Terminated, t0), Some(End::Terminated));
    }

    #[test]
    fn a_narrow_screen_leaves_columns_out_instead_of_cutting_them() {
        let mut view = View::new("rt".into(), false);
        view.apply(Update::Status(status()), UNIX_EPOCH);
        let view_lines = screen(&view, UNIX_EPOCH, 40, 24);
        let text = view_lines.join("\n");
        let heading = view_lines.iter().find(|l| l.contains("pid")).expect("headings");
        assert!(heading.contains("id   pid  gen  state"), "{text}");
        assert!(!heading.contains("memory"), "{text}");
        assert!(view_lines.iter().any(|l| l.contains(" 0  4141    2  ready")), "{text}");
    }

    #[test]
    fn a_small_terminal_still_draws() {
        let mut view = View::new("rt".into(), true);
        screen(&view, UNIX_EPOCH, 10, 3);
        view.apply(Update::Status(status()), UNIX_EPOCH);
        screen(&view, UNIX_EPOCH, 20, 5);
        screen(&view, UNIX_EPOCH, 1, 1);
    }

    #[test]
    fn parts_flow_into_lines_that_fit() {
        let parts = ["aaaa", "bb", "cccccc", "d"].map(String::from);
        assert_eq!(flow(parts.clone(), 9), ["aaaa · bb", "cccccc", "d"]);
        assert_eq!(flow(parts.clone(), 100), ["aaaa · bb · cccccc · d"]);
        assert_eq!(flow(parts, 2), ["aaaa", "bb", "cccccc", "d"]);
    }
}
