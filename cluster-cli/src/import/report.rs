//! What an import did with each PM2 key, for people: mapped as it is, approximated (mapped
//! with a note on what differs), or not carried over (with what to do instead).

use std::fmt::{self, Write as _};

/// One line of the report: the PM2 key (or a dotted path in the file) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key as the file spells it (`max_memory_restart`, `env.PORT`, `apps[1]`).
    pub(crate) key: String,
    /// What it became, or why it was not carried over.
    pub(crate) text: String,
}

/// The report of one import, in three lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Keys carried over with the same meaning.
    pub(crate) mapped: Vec<Entry>,
    /// Keys carried over with a difference the user should know about.
    pub(crate) approximated: Vec<Entry>,
    /// Keys with no equivalent, each with what to do instead.
    pub(crate) dropped: Vec<Entry>,
}

impl Report {
    /// Records `key` as mapped.
    pub(crate) fn mapped(&mut self, key: impl Into<String>, text: impl Into<String>) {
        self.mapped.push(Entry { key: key.into(), text: text.into() });
    }

    /// Records `key` as mapped with a note.
    pub(crate) fn approximated(&mut self, key: impl Into<String>, text: impl Into<String>) {
        self.approximated.push(Entry { key: key.into(), text: text.into() });
    }

    /// Records `key` as not carried over.
    pub(crate) fn dropped(&mut self, key: impl Into<String>, text: impl Into<String>) {
        self.dropped.push(Entry { key: key.into(), text: text.into() });
    }

    /// Every entry of `key` in any list (for tests and for checks that a key was handled).
    pub(crate) fn find(&self, key: &str) -> Vec<&Entry> {
        let lists = [&self.mapped, &self.approximated, &self.dropped];
        lists.into_iter().flatten().filter(|e| e.key == key).collect()
    }
}

impl fmt::Display for Report {
    /// The three lists under their headings, one `  key: text` line per entry; an empty list
    /// is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sections = [
            ("Mapped", &self.mapped),
            ("Approximated (mapped, but read the note)", &self.approximated),
            ("No equivalent (not carried over)", &self.dropped),
        ];
        let mut out = String::new();
        for (title, entries) in sections {
            if entries.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "{title}:");
            for e in entries.iter() {
                let _ = writeln!(out, "  {}: {}", e.key, e.text);
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_non_empty_sections() {
        let mut r = Report::default();
        r.mapped("cwd", "cwd: \"/srv\"");
        r.dropped("watch", "use `cluster dev`");
        let text = r.to_string();
        assert_eq!(
            text,
            "Mapped:\n  cwd: cwd: \"/srv\"\n\nNo equivalent (not carried over):\n  watch: use `cluster dev`\n"
        );
        assert_eq!(r.find("watch").len(), 1);
    }
}
