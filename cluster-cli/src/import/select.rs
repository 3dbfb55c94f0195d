//! Finding the app to import in an evaluated ecosystem file, as PM2 reads it: the `apps`
//! array of the exported object, or the exported array, or the exported object itself.

use serde_json::{Map, Value};

use super::pm2_values::kind;
use super::report::Report;

/// Why no app could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SelectError {
    /// The file exports nothing PM2 would start.
    #[error("the file defines no app (PM2 reads the `apps` array of the exported object)")]
    NoApps,
    /// An element of the apps is not an object.
    #[error("{at} is {what}, not an object with a `script`")]
    NotAnObject {
        /// Where it is (`apps[1]`).
        at: String,
        /// What it is (`a string`).
        what: &'static str,
    },
    /// Several apps and no `--app`.
    #[error("the file defines {} apps: choose one with --app NAME ({})", names.len(), names.join(", "))]
    Several {
        /// The apps' names.
        names: Vec<String>,
    },
    /// `--app` names no app.
    #[error("no app named {wanted:?} in the file; its apps are: {}", names.join(", "))]
    Unknown {
        /// The name asked for.
        wanted: String,
        /// The apps' names.
        names: Vec<String>,
    },
}

/// The chosen app.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selected {
    /// Its options.
    pub(crate) app: Map<String, Value>,
    /// Its name (PM2's: `name`, else the script's file name without its extension).
    pub(crate) name: String,
    /// Its path in the evaluated value (`["apps", 1]`), to match `evaluate.js`'s `nonJson`.
    pub(crate) path: Vec<Value>,
}

/// Picks the app named `wanted`, or the only one. Top-level keys other than `apps` (PM2's
/// `deploy`) are listed in `report` as not carried over.
pub(crate) fn select(
    value: &Value,
    wanted: Option<&str>,
    report: &mut Report,
) -> Result<Selected, SelectError> {
    let (apps, prefix): (Vec<&Value>, Vec<Value>) = match value {
        Value::Object(top) if top.contains_key("apps") => {
            for key in top.keys().filter(|k| *k != "apps") {
                report.dropped(key.as_str(), top_level_note(key));
            }
            match &top["apps"] {
                Value::Array(items) => (items.iter().collect(), vec!["apps".into()]),
                Value::Null => (Vec::new(), Vec::new()),
                one => (vec![one], vec!["apps".into()]),
            }
        }
        Value::Array(items) => (items.iter().collect(), Vec::new()),
        Value::Null => (Vec::new(), Vec::new()),
        one => (vec![one], Vec::new()),
    };
    if apps.is_empty() {
        return Err(SelectError::NoApps);
    }
    let in_array = !prefix.is_empty() || matches!(value, Value::Array(_));
    let mut named = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let at = match (in_array, prefix.is_empty()) {
            (true, false) => format!("apps[{i}]"),
            (true, true) => format!("the exported array's element {i}"),
            _ => "the exported value".to_owned(),
        };
        let Value::Object(app) = app else {
            return Err(SelectError::NotAnObject { at, what: kind(app) });
        };
        let mut path = prefix.clone();
        if in_array {
            path.push(i.into());
        }
        named.push(Selected { app: app.clone(), name: app_name(app), path });
    }
    let names: Vec<String> = named.iter().map(|s| s.name.clone()).collect();
    match wanted {
        Some(wanted) => named
            .into_iter()
            .find(|s| s.name == wanted)
            .ok_or_else(|| SelectError::Unknown { wanted: wanted.to_owned(), names }),
        None if named.len() == 1 => Ok(named.remove(0)),
        None => Err(SelectError::Several { names }),
    }
}

/// PM2's name for an app: `name`, else the file name of `script` without its extension.
fn app_name(app: &Map<String, Value>) -> String {
    if let Some(Value::String(name)) = app.get("name") {
        return name.clone();
    }
    let script = ["script", "exec", "cmd", "command"]
        .iter()
        .find_map(|k| app.get(*k).and_then(Value::as_str))
        .unwrap_or("");
    let file = script.rsplit('/').next().unwrap_or(script);
    match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => file.to_owned(),
    }
}

fn top_level_note(key: &str) -> &'static str {
    match key {
        "deploy" => {
            "PM2's deployment (`pm2 deploy`): cluster does not deploy; use your CI, rsync or \
             a container image, then `cluster reload`"
        }
        _ => "not an app option (PM2 reads only `apps` here)",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pick(value: Value, wanted: Option<&str>) -> Result<Selected, SelectError> {
        select(&value, wanted, &mut Report::default())
    }

    #[test]
    fn the_forms_pm2_reads() {
        let one = pick(json!({"apps": [{"name": "api", "script": "a.js"}]}), None).unwrap();
        assert_eq!((one.name.as_str(), one.path.clone()), ("api", vec![json!("apps"), json!(0)]));
        let bare = pick(json!({"script": "srv/main.js"}), None).unwrap();
        assert_eq!((bare.name.as_str(), bare.path.len()), ("main", 0));
        let array = pick(json!([{"script": "x.js"}]), None).unwrap();
        assert_eq!(array.path, vec![json!(0)]);
        let single = pick(json!({"apps": {"script": "y.js"}}), None).unwrap();
        assert_eq!(single.name, "y");
    }

    #[test]
    fn several_apps_need_a_name() {
        let file = json!({"apps": [{"name": "api", "script": "a.js"}, {"name": "jobs", "script": "j.js"}]});
        assert_eq!(
            pick(file.clone(), None).unwrap_err().to_string(),
            "the file defines 2 apps: choose one with --app NAME (api, jobs)"
        );
        assert_eq!(pick(file.clone(), Some("jobs")).unwrap().path, vec![json!("apps"), json!(1)]);
        assert_eq!(
            pick(file, Some("web")).unwrap_err().to_string(),
            "no app named \"web\" in the file; its apps are: api, jobs"
        );
    }

    #[test]
    fn no_apps_and_non_objects_are_errors() {
        assert_eq!(pick(json!({"apps": []}), None), Err(SelectError::NoApps));
        assert_eq!(pick(json!(null), None), Err(SelectError::NoApps));
        assert_eq!(
            pick(json!({"apps": [{"script": "a.js"}, "b.js"]}), None).unwrap_err().to_string(),
            "apps[1] is a string, not an object with a `script`"
        );
    }

    #[test]
    fn deploy_is_reported() {
        let mut report = Report::default();
        let file = json!({"apps": [{"script": "a.js"}], "deploy": {"production": {}}});
        select(&file, None, &mut report).unwrap();
        assert!(report.find("deploy")[0].text.contains("does not deploy"));
    }
}
