//! Reading the worker's environment through a lookup function, so that the parsing is tested
//! without changing the process's environment.

/// Looks a variable up: `None` when unset, empty or not UTF-8.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's own environment, as a [`Lookup`].
pub(super) fn process_var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The variable parsed, `None` when unset or unparsable.
pub(super) fn parse<T: std::str::FromStr>(lookup: Lookup<'_>, key: &str) -> Option<T> {
    lookup(key)?.trim().parse().ok()
}

#[cfg(test)]
pub(super) mod fake {
    //! A fixed environment for tests.

    use std::collections::HashMap;

    /// A lookup over `vars`, with the same empty-is-unset rule as the process's.
    pub(crate) fn vars(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |key| map.get(key).filter(|v| !v.is_empty()).cloned()
    }
}
