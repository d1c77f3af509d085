//! [Canonical JSON](https://spec.matrix.org/v1.16/appendices/#canonical-json): strict parsing
//! from bytes and the canonical encoding.
//!
//! Parsing walks `serde_json`'s value tree and converts it to ruma's [`CanonicalJsonValue`], so
//! that every way the input can fall outside canonical JSON is its own [`CoreError`].

use ruma::{CanonicalJsonObject, CanonicalJsonValue, Int};
use serde_json::Value;

use crate::CoreError;

/// The largest magnitude canonical JSON allows: `2^53 - 1`.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Parses bytes into a canonical JSON object.
///
/// Numbers that denote integers are accepted in any notation and normalised, as the spec's own
/// example shows (`{"a": -0, "b": 1e10}` becomes `{"a":0,"b":10000000000}`); numbers with a
/// fractional part are [`CoreError::Float`].
pub fn parse_object(bytes: &[u8]) -> Result<CanonicalJsonObject, CoreError> {
    match parse_value(bytes)? {
        CanonicalJsonValue::Object(object) => Ok(object),
        _ => Err(CoreError::NotAnObject),
    }
}

/// Parses bytes into any canonical JSON value.
pub fn parse_value(bytes: &[u8]) -> Result<CanonicalJsonValue, CoreError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| CoreError::InvalidUtf8 { valid_up_to: error.valid_up_to() })?;
    let value: Value = serde_json::from_str(text).map_err(classify_syntax_error)?;
    to_canonical(value)
}

/// Converts a `serde_json` value, rejecting what canonical JSON cannot hold.
pub fn to_canonical(value: Value) -> Result<CanonicalJsonValue, CoreError> {
    Ok(match value {
        Value::Null => CanonicalJsonValue::Null,
        Value::Bool(b) => CanonicalJsonValue::Bool(b),
        Value::String(s) => CanonicalJsonValue::String(s),
        Value::Number(n) => CanonicalJsonValue::Integer(canonical_integer(&n)?),
        Value::Array(items) => CanonicalJsonValue::Array(
            items.into_iter().map(to_canonical).collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => CanonicalJsonValue::Object(
            map.into_iter()
                .map(|(key, value)| Ok((key, to_canonical(value)?)))
                .collect::<Result<_, CoreError>>()?,
        ),
    })
}

/// Serialises any value to canonical JSON, with the same typed errors as parsing (a map with
/// integer keys is [`CoreError::NonStringKey`], an `f64` field [`CoreError::Float`]).
pub fn value_to_canonical<T: serde::Serialize>(value: &T) -> Result<CanonicalJsonValue, CoreError> {
    use ruma::canonical_json::CanonicalJsonError as E;
    ruma::canonical_json::to_canonical_value(value).map_err(|error| match error {
        E::IntegerOutOfRange => CoreError::IntegerOutOfRange,
        E::InvalidObjectKeyType(_) => CoreError::NonStringKey,
        E::InvalidType(ty) if matches!(ty.as_str(), "float" | "f32" | "f64") => CoreError::Float,
        other => CoreError::InvalidJson(other.to_string()),
    })
}

/// The canonical encoding: sorted keys, no insignificant whitespace, UTF-8 unescaped.
///
/// `serde_json` writes a [`CanonicalJsonValue`] exactly in canonical form: objects are
/// `BTreeMap`s, so keys come out sorted by code point, and strings escape only what the
/// grammar requires.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, CoreError> {
    serde_json::to_string(value).map_err(|error| CoreError::InvalidJson(error.to_string()))
}

fn canonical_integer(number: &serde_json::Number) -> Result<Int, CoreError> {
    let value = if let Some(i) = number.as_i64() {
        i
    } else if number.as_u64().is_some() {
        // Larger than i64::MAX, certainly out of range.
        return Err(CoreError::IntegerOutOfRange);
    } else {
        let f = number.as_f64().ok_or(CoreError::Float)?;
        if f.fract() != 0.0 || !f.is_finite() {
            return Err(CoreError::Float);
        }
        if f.abs() > MAX_SAFE_INTEGER as f64 {
            return Err(CoreError::IntegerOutOfRange);
        }
        // Exact: |f| ≤ 2^53 - 1 and integral.
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        i
    };
    if !(-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&value) {
        return Err(CoreError::IntegerOutOfRange);
    }
    Int::new(value).ok_or(CoreError::IntegerOutOfRange)
}

/// `serde_json` reports every malformed input as a syntax error; a non-string object key is the
/// one a caller may want to tell apart, and `serde_json` names it in a fixed message.
fn classify_syntax_error(error: serde_json::Error) -> CoreError {
    if error.to_string().starts_with("key must be a string") {
        CoreError::NonStringKey
    } else {
        CoreError::InvalidJson(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn serde_json_names_non_string_keys_as_we_expect() {
        assert_eq!(parse_value(br#"{1: 2}"#), Err(CoreError::NonStringKey));
    }

    #[test]
    fn limits_are_inclusive() {
        assert!(parse_value(b"9007199254740991").is_ok());
        assert!(parse_value(b"-9007199254740991").is_ok());
        assert_eq!(parse_value(b"9007199254740992"), Err(CoreError::IntegerOutOfRange));
        assert_eq!(parse_value(b"-9007199254740992"), Err(CoreError::IntegerOutOfRange));
        assert_eq!(parse_value(b"1e300"), Err(CoreError::IntegerOutOfRange));
    }
}
