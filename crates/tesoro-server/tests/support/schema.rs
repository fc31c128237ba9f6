//! Checks a JSON value against the subset of JSON Schema the OpenAPI document uses: `type`
//! (one or a list, `null` included), `properties`, `required`, `items`, `enum` and `$ref`
//! into `#/components/schemas`. Anything else in a schema is a test failure, so the document
//! cannot drift into constructs this check would silently ignore.
#![allow(dead_code)]

use serde_json::Value;

/// Every mismatch of `value` against `schema`, as `path: problem`.
pub fn check(doc: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(doc, schema, value, path, &mut out);
    out
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn walk(doc: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        out.push(format!("{path}: schema is not an object"));
        return;
    };
    for k in s.keys() {
        if ![
            "type",
            "properties",
            "required",
            "items",
            "enum",
            "$ref",
            "description",
        ]
        .contains(&k.as_str())
        {
            out.push(format!("{path}: schema keyword {k} is not checked here"));
        }
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        match doc["components"]["schemas"].get(name) {
            Some(target) => walk(doc, target, v, path, out),
            None => out.push(format!("{path}: $ref {r} names no schema")),
        }
        return;
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| type_ok(t, v)) {
            out.push(format!("{path}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            out.push(format!("{path}: {v} is not one of {e:?}"));
        }
    }
    if let (Some(obj), Some(props)) = (
        v.as_object(),
        s.get("properties").and_then(Value::as_object),
    ) {
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap_or_default();
            if !obj.contains_key(req) {
                out.push(format!("{path}: required field {req} is missing"));
            }
        }
        for (k, sub) in props {
            if let Some(x) = obj.get(k) {
                walk(doc, sub, x, &format!("{path}.{k}"), out);
            }
        }
        for k in obj.keys() {
            if !props.contains_key(k) {
                out.push(format!("{path}: field {k} is not documented"));
            }
        }
    }
    if let (Some(arr), Some(items)) = (v.as_array(), s.get("items")) {
        for (i, x) in arr.iter().enumerate() {
            walk(doc, items, x, &format!("{path}[{i}]"), out);
        }
    }
}
