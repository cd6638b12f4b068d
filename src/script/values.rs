//! Values as scripts get them, made directly rather than through serde, which costs an
//! evaluation more than a small rule does: each is the same value `rhai::serde::to_dynamic` makes.

use rhai::Dynamic;
use serde_json::Value;

/// A JSON tree as a script gets it.
pub fn from_json(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => rhai::INT::try_from(u)
                .map(Dynamic::from_int)
                .unwrap_or_else(|_| Dynamic::from_float(u as rhai::FLOAT)),
            (None, Some(i), _) => Dynamic::from_int(i),
            (None, None, f) => Dynamic::from_float(f.unwrap_or_default()),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => Dynamic::from_array(items.iter().map(from_json).collect()),
        Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_given_as_serde_would_give_it() {
        let facts = serde_json::json!({
            "null": null, "yes": true, "no": false, "int": 42, "negative": -7, "big": u64::MAX,
            "float": 2.5, "text": "é\u{0}x", "empty": {}, "list": [1, "two", [3.0], {"four": null}],
            "nested": {"case": {"attributes": {"patch": "north", "n": [1, 2]}}},
        });
        let ours = from_json(&facts);
        let serde: Dynamic = rhai::serde::to_dynamic(&facts).unwrap();
        assert_eq!(format!("{ours:?}"), format!("{serde:?}"));
        let back: Value = rhai::serde::from_dynamic(&ours).unwrap();
        let serde_back: Value = rhai::serde::from_dynamic(&serde).unwrap();
        assert_eq!(back, serde_back);
    }
}
