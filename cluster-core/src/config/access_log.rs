//! Validation of the `accessLog` section: the line format, the destination and the queue.

use std::path::Path;

use super::raw::RawAccessLog;
use super::suggest::nearest;
use super::validate::Validator;
use super::{AccessLogFormat, AccessLogPath, AccessLogSpec};

/// Most lines `accessLog.queue` may hold: a line waiting in the queue holds its request's
/// method, target and two headers, so this bounds the memory a stalled destination can take.
pub(super) const MAX_QUEUE: i128 = 1 << 20;

impl Validator<'_> {
    /// The `accessLog` section; a relative `path` is resolved against `base`, as `logFile` is.
    pub(super) fn access_log(&mut self, raw: &RawAccessLog, base: &Path) -> AccessLogSpec {
        AccessLogSpec {
            format: self.access_log_format(&raw.format),
            path: self.access_log_path(&raw.path, base),
            queue: self.int("accessLog.queue", raw.queue, 1, MAX_QUEUE).unwrap_or(1),
        }
    }

    fn access_log_format(&mut self, name: &str) -> AccessLogFormat {
        let wanted = name.trim();
        if let Some(format) =
            AccessLogFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(wanted))
        {
            return format;
        }
        let names = AccessLogFormat::ALL.map(AccessLogFormat::name);
        let mut reason = r#"expected "combined" or "json""#.to_owned();
        if let Some(near) = nearest(wanted, names) {
            reason.push_str(&format!(r#"; did you mean "{near}"?"#));
        }
        self.invalid("accessLog.format", reason);
        AccessLogFormat::Combined
    }

    /// `"stdout"` or `"-"`, else a file that may not exist yet but must not be a directory.
    fn access_log_path(&mut self, text: &str, base: &Path) -> AccessLogPath {
        const KEY: &str = "accessLog.path";
        if matches!(text.trim(), "-" | "stdout") {
            return AccessLogPath::Stdout;
        }
        let file = self.path(KEY, text, base);
        if !text.trim().is_empty() && file.is_dir() {
            self.invalid(KEY, format!("{} is a directory", file.display()));
        }
        AccessLogPath::File(file)
    }
}
