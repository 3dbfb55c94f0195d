//! The workers table of `cluster status` (and `cluster top`), from the status JSON.

use serde_json::Value;

/// The column headings.
pub(crate) const HEADINGS: [&str; 13] = [
    "id",
    "pid",
    "gen",
    "state",
    "uptime",
    "restarts",
    "in-flight",
    "requests",
    "req/s",
    "errors",
    "p99",
    "cpu",
    "memory",
];

/// One row per worker, in slot order, as text cells.
pub(crate) fn rows(status: &Value) -> Vec<[String; 13]> {
    let mut workers: Vec<&Value> =
        status["workers"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    workers.sort_by_key(|w| (w["slot"].as_u64(), w["workerId"].as_u64()));
    let shared_socket = status["mode"].as_str() == Some("shared-socket");
    workers
        .iter()
        .map(|w| {
            let mut cells = row(w);
            if shared_socket {
                // No request crosses the primary: it has no per-request figures to show.
                for cell in &mut cells[PER_REQUEST] {
                    *cell = "-".into();
                }
            }
            cells
        })
        .collect()
}

/// The columns of per-request figures (in-flight to p99), which only the proxy measures.
const PER_REQUEST: std::ops::RangeInclusive<usize> = 6..=10;

fn row(w: &Value) -> [String; 13] {
    let num = |key: &str| w[key].as_u64().unwrap_or(0);
    let state = match (w["status"].as_str().unwrap_or("?"), w["rotation"].as_str()) {
        ("ready", Some("ejected")) => "ejected".to_owned(),
        (s, Some("leaving")) if s == "ready" || s == "starting" => "leaving".to_owned(),
        (s, _) => s.to_owned(),
    };
    [
        w["slot"].as_u64().map_or("-".into(), |s| s.to_string()),
        num("pid").to_string(),
        num("generation").to_string(),
        state,
        duration(num("uptime") / 1000),
        num("restarts").to_string(),
        num("connections").to_string(),
        num("requestsHandled").to_string(),
        format!("{:.1}", w["rates"]["requestsPerSec"].as_f64().unwrap_or(0.0)),
        num("errors").to_string(),
        w["latencyP99Ms"].as_f64().map_or("-".into(), |ms| format!("{ms:.1}ms")),
        w["cpuPercent"].as_f64().map_or("-".into(), |c| format!("{c:.0}%")),
        w["memoryUsage"].as_f64().map_or("-".into(), |m| format!("{m:.0}MB")),
    ]
}

/// The table: headings and rows in aligned columns.
pub(crate) fn render(status: &Value) -> String {
    let rows = rows(status);
    let mut widths: Vec<usize> = HEADINGS.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            // Numbers right-aligned, words left-aligned.
            if i == 3 {
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(&format!("{cell:>w$}"));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(HEADINGS.to_vec());
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The cluster line under the table: workers, rates, strategy, generation, operation. In
/// shared-socket mode no request crosses the primary, so it has no rates, errors or strategy
/// to show, and says so.
pub(crate) fn summary(status: &Value) -> String {
    let rates = &status["rates"];
    let balancing = if status["mode"].as_str() == Some("shared-socket") {
        "shared socket: the kernel balances connections; per-request metrics and strategies do \
         not apply"
            .to_owned()
    } else {
        format!(
            "{:.1} req/s · {:.2} % errors · {}",
            rates["requestsPerSec"].as_f64().unwrap_or(0.0),
            rates["errorRate"].as_f64().unwrap_or(0.0) * 100.0,
            status["strategy"].as_str().unwrap_or("?"),
        )
    };
    let mut line = format!(
        "{} of {} workers ready · {balancing} · generation {} · listening on {}",
        status["readyWorkers"].as_u64().unwrap_or(0),
        status["desiredWorkers"].as_u64().unwrap_or(0),
        status["generation"].as_u64().unwrap_or(0),
        status["listen"].as_str().unwrap_or("?"),
    );
    if let Some(op) = status["operation"].as_object() {
        line.push_str(&format!(
            " · {} #{} {}/{}",
            op["kind"].as_str().unwrap_or("?"),
            op["id"],
            op["done"],
            op["total"]
        ));
    }
    if status["shuttingDown"].as_bool() == Some(true) {
        line.push_str(" · shutting down");
    }
    // Lost access log lines are worth an operator's attention; written ones are not.
    if let Some(dropped) = status["accessLog"]["dropped"].as_u64().filter(|&n| n > 0) {
        line.push_str(&format!(" · {dropped} access log lines dropped"));
    }
    line
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub(crate) fn duration(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_row_per_worker_in_slot_order() {
        let status = json!({
            "workers": [
                {"slot": 1, "workerId": 4, "pid": 40, "generation": 2, "status": "ready", "rotation": "in",
                 "uptime": 125_000, "restarts": 1, "connections": 2, "requestsHandled": 900,
                 "rates": {"requestsPerSec": 12.34}, "errors": 3, "latencyP99Ms": 4.56,
                 "cpuPercent": 12.7, "memoryUsage": 48.2},
                {"slot": 0, "workerId": 3, "pid": 30, "generation": 2, "status": "starting", "rotation": "in",
                 "uptime": 500, "restarts": 0, "connections": 0, "requestsHandled": 0,
                 "rates": {}, "errors": 0, "latencyP99Ms": null, "cpuPercent": null, "memoryUsage": null}
            ]
        });
        let r = rows(&status);
        assert_eq!(r[0][0], "0");
        assert_eq!(r[0][3], "starting");
        assert_eq!(
            r[1][..],
            [
                "1", "40", "2", "ready", "2m 5s", "1", "2", "900", "12.3", "3", "4.6ms", "13%",
                "48MB"
            ]
        );
        let text = render(&status);
        assert!(text.starts_with("id  pid  gen  state"), "{text}");
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn the_summary_mentions_dropped_access_log_lines_only() {
        let mut status = json!({"readyWorkers": 2, "desiredWorkers": 2, "strategy": "round-robin",
                                "generation": 1, "listen": "127.0.0.1:3000", "rates": {},
                                "accessLog": null});
        assert!(!summary(&status).contains("access log"), "{}", summary(&status));
        status["accessLog"] = json!({"written": 10, "dropped": 0});
        assert!(!summary(&status).contains("access log"), "{}", summary(&status));
        status["accessLog"] = json!({"written": 10, "dropped": 3});
        assert!(
            summary(&status).ends_with(" · 3 access log lines dropped"),
            "{}",
            summary(&status)
        );
    }

    #[test]
    fn the_shared_socket_summary_says_what_does_not_apply() {
        let status = json!({"mode": "shared-socket", "readyWorkers": 2, "desiredWorkers": 3,
                            "strategy": "kernel", "generation": 4, "listen": "127.0.0.1:3000",
                            "rates": {}, "accessLog": null});
        let line = summary(&status);
        assert!(line.starts_with("2 of 3 workers ready · shared socket"), "{line}");
        let with_worker = json!({"mode": "shared-socket", "workers": [
            {"slot": 0, "pid": 7, "generation": 1, "status": "ready", "rotation": "in",
             "uptime": 1000, "restarts": 0, "connections": 0, "requestsHandled": 0,
             "rates": {}, "errors": 0, "latencyP99Ms": null, "cpuPercent": 3.0,
             "memoryUsage": 40.0}]});
        assert_eq!(
            rows(&with_worker)[0][..],
            ["0", "7", "1", "ready", "1s", "0", "-", "-", "-", "-", "-", "3%", "40MB"]
        );
        assert!(line.contains("per-request metrics and strategies do not apply"), "{line}");
        assert!(!line.contains("req/s"), "{line}");
    }
}
