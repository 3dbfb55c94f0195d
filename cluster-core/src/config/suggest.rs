//! "Did you mean" suggestions for misspelt keys and names.

/// The candidate nearest to `input`, if it is close enough to be a likely typo.
///
/// Comparison ignores case, `_` and `-`, so `max_memory_usage` finds `maxMemoryUsage`; a
/// candidate is close enough when its edit distance is at most a third of the input's
/// length (and at least 1 is always allowed).
pub(crate) fn nearest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted = normalize(input);
    let allowed = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&wanted, &normalize(c)), c))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

fn normalize(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::nearest;

    const KEYS: &[&str] = &["workers", "port", "host", "maxMemoryUsage", "requestTimeout"];

    #[test]
    fn finds_typos() {
        assert_eq!(nearest("wokers", KEYS.iter().copied()), Some("workers"));
        assert_eq!(nearest("requestTimeot", KEYS.iter().copied()), Some("requestTimeout"));
        assert_eq!(nearest("max_memory_usage", KEYS.iter().copied()), Some("maxMemoryUsage"));
        assert_eq!(nearest("PORT", KEYS.iter().copied()), Some("port"));
    }

    #[test]
    fn ignores_unrelated_words() {
        assert_eq!(nearest("banana", KEYS.iter().copied()), None);
        assert_eq!(nearest("x", KEYS.iter().copied()), None);
    }
}
