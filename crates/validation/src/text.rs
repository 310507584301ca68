//! Text Herald's stores can keep. PostgreSQL's `text` refuses U+0000 (and MongoDB refuses it in
//! field names), so a NUL that got past the edge would make every write of it fail; it is
//! refused where it enters, with the field named, instead of being found by a consumer.

use crate::ValidationError;
use model::ErrorCode;
use serde_json::Value;

/// The character no store keeps.
const NUL: char = '\u{0}';

fn refused(field: &str) -> ValidationError {
    ValidationError::new(
        ErrorCode::InvalidText,
        field,
        format!("{field} holds the character U+0000, which cannot be stored; remove it"),
    )
}

/// Refuses `text` when a store cannot keep it; `field` names it in the error.
pub fn check_storable(field: &str, text: &str) -> Result<(), ValidationError> {
    if text.contains(NUL) { Err(refused(field)) } else { Ok(()) }
}

/// Refuses a JSON value with a key or string a store cannot keep; the error names the path
/// (`data.items[2].name`).
pub fn check_storable_json(field: &str, value: &Value) -> Result<(), ValidationError> {
    match value {
        Value::String(text) => check_storable(field, text),
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| check_storable_json(&format!("{field}[{i}]"), item))
        }
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            check_storable(&format!("{field} key {key:?}"), key)?;
            check_storable_json(&format!("{field}.{key}"), item)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_refused_wherever_it_hides_and_the_path_is_named() {
        assert!(check_storable("content", "漢字 and emoji 🎉, tabs\tand\nnewlines").is_ok());
        assert_eq!(check_storable("content", "a\u{0}b").unwrap_err().field.as_deref(), Some("content"));
        let nested = json!({"order": {"items": [1, "fine", "bad\u{0}"]}});
        let err = check_storable_json("data", &nested).unwrap_err();
        assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidText, Some("data.order.items[2]")));
        let key = json!({"k\u{0}": 1});
        assert!(check_storable_json("data", &key).unwrap_err().message.contains("U+0000"));
        assert!(check_storable_json("data", &json!({"ok": [null, true, 1.5]})).is_ok());
    }
}
