//! What changed between two JSON documents, member by member: each leaf named by its JSON
//! path (`$.rules[1].price.amount`), as the tariff editor names problems.

use serde_json::Value;

/// One difference between two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Only the newer document has this path.
    Added { path: String, new: String },
    /// Only the older document has it.
    Removed { path: String, old: String },
    /// Both have it, with different values.
    Changed {
        path: String,
        old: String,
        new: String,
    },
}

impl Change {
    /// The path the change is at.
    pub fn path(&self) -> &str {
        match self {
            Change::Added { path, .. } | Change::Removed { path, .. } => path,
            Change::Changed { path, .. } => path,
        }
    }
}

/// Every leaf of `value` (scalars, empty arrays and objects) with its path, in document
/// order.
pub fn leaves(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk("$".to_owned(), value, &mut out);
    out
}

fn walk(path: String, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, member) in map {
                walk(member_path(&path, key), member, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                walk(format!("{path}[{i}]"), item, out);
            }
        }
        leaf => out.push((path, leaf.to_string())),
    }
}

/// `$.name` for plain names, `$["odd key"]` for anything else.
fn member_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_owned()))
    }
}

/// The changes from `old` to `new`: removed and changed paths in the older document's
/// order, then added ones in the newer's.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let old_leaves = leaves(old);
    let new_leaves = leaves(new);
    let find = |leaves: &[(String, String)], path: &str| {
        leaves
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
    };
    let mut changes = Vec::new();
    for (path, old_value) in &old_leaves {
        match find(&new_leaves, path) {
            None => changes.push(Change::Removed {
                path: path.clone(),
                old: old_value.clone(),
            }),
            Some(new_value) if new_value != *old_value => changes.push(Change::Changed {
                path: path.clone(),
                old: old_value.clone(),
                new: new_value,
            }),
            Some(_) => {}
        }
    }
    for (path, new_value) in &new_leaves {
        if find(&old_leaves, path).is_none() {
            changes.push(Change::Added {
                path: path.clone(),
                new: new_value.clone(),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_change_by_its_path() {
        let old = json!({"currency": "CNY", "grace_minutes": 15,
            "rules": [{"name": "day", "price": {"flat": "5.00"}}, {"name": "night"}]});
        let new = json!({"currency": "CNY",
            "rules": [{"name": "day", "price": {"flat": "6.00"}}], "max stay": 60});
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                Change::Removed {
                    path: "$.grace_minutes".into(),
                    old: "15".into()
                },
                Change::Changed {
                    path: "$.rules[0].price.flat".into(),
                    old: "\"5.00\"".into(),
                    new: "\"6.00\"".into()
                },
                Change::Removed {
                    path: "$.rules[1].name".into(),
                    old: "\"night\"".into()
                },
                Change::Added {
                    path: "$[\"max stay\"]".into(),
                    new: "60".into()
                },
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
