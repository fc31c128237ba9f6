//! Canonical JSON: one byte sequence per document, so two implementations that build the
//! same statement produce the same bytes, the same hash and a signature either can check.
//!
//! The form is RFC 8785 (JCS) restricted to what statements contain:
//! - objects with keys sorted by their UTF-8 bytes (for ASCII keys this is JCS's UTF-16
//!   order too), no duplicate keys;
//! - no whitespace anywhere;
//! - strings as JSON strings with only `"` `\` and control characters escaped (`\b \f \n
//!   \r \t`, others as `\u00xx` in lower-case hex); non-ASCII text as raw UTF-8;
//! - numbers are integers only (sats, heights, times), written in plain decimal; anything
//!   with a fraction (prices, exchange rates) is carried as a decimal string instead, so no
//!   float formatting rule is ever needed;
//! - `true`, `false`, `null` as such.

use serde_json::Value;

/// A value that has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct CanonicalError {
    /// JSON path of the offending value, like `$.addresses[3].balance_sats`.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The canonical bytes of `value`.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(1024);
    write(value, "$", &mut out)?;
    Ok(out)
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn write(v: &Value, path: &str, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(CanonicalError {
                    path: path.to_string(),
                    reason: format!(
                        "{n} is not an integer: canonical statements carry fractions as decimal strings"
                    ),
                });
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, &format!("{path}[{i}]"), out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                if let Some(child) = map.get(k.as_str()) {
                    write(child, &format!("{path}.{k}"), out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Reads exactly `N` bytes written as lowercase hex, the one spelling tesoro writes, so two
/// files that differ in a byte never carry the same key or signature. The error says why in
/// words the caller puts after the field's name.
pub fn lower_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("is not lowercase hex (0-9, a-f)".into());
    }
    let v: Vec<u8> =
        bitcoin::hex::FromHex::from_hex(s).map_err(|_| "has an odd number of hex digits")?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| format!("has {} bytes, not {N}", v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_integers() {
        let v = json!({"b": [3, {"z": null, "a": true}], "a": "x\"y\n\u{01}é", "c": -5});
        let s = String::from_utf8(to_canonical(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\"a\":\"x\\\"y\\n\\u0001é\",\"b\":[3,{\"a\":true,\"z\":null}],\"c\":-5}"
        );
    }

    #[test]
    fn floats_are_refused_with_their_path() {
        let v = json!({"price": {"usd": 119501.66}});
        let e = to_canonical(&v).unwrap_err();
        assert_eq!(e.path, "$.price.usd");
    }

    #[test]
    fn key_order_of_the_input_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":{"q":2,"p":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y":{"p":3,"q":2},"x":1}"#).unwrap();
        assert_eq!(to_canonical(&a).unwrap(), to_canonical(&b).unwrap());
    }
}
