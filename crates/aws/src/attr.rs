//! JSON <-> DynamoDB attribute values, and score-store items <-> DynamoDB items.
//!
//! numbers -> `N`, strings -> `S`, bools -> `BOOL`, null -> `NULL`, arrays -> `L`, objects -> `M`.
//! DynamoDB normalises numbers it stores (`3.0` comes back as `3`): read numbers with `as_f64()`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use marquee_pipeline::store::{Item, StoreError};
use serde_json::{Map, Number, Value};

/// A JSON value as a DynamoDB attribute value.
pub fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()),
    }
}

/// A DynamoDB attribute value as JSON. Sets become arrays; binary values are refused
/// (marquee never writes them).
pub fn from_attr(attr: &AttributeValue) -> Result<Value, String> {
    Ok(match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), from_attr(v)?))).collect::<Result<_, String>>()?)
        }
        AttributeValue::Ss(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(items) => {
            Value::Array(items.iter().map(|n| parse_number(n).map(Value::Number)).collect::<Result<_, _>>()?)
        }
        other => return Err(format!("unsupported attribute value {other:?}")),
    })
}

/// Integers stay integers; anything with a fraction or exponent is an f64.
fn parse_number(n: &str) -> Result<Number, String> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    n.parse::<f64>().ok().and_then(Number::from_f64).ok_or_else(|| format!("number `{n}` is not a finite f64"))
}

/// A score-store item as a DynamoDB item: `pk` and `sk` as strings plus every attribute
/// (attributes named `pk`/`sk` are overridden by the keys).
pub fn item_to_dynamo(item: &Item) -> HashMap<String, AttributeValue> {
    let mut out: HashMap<String, AttributeValue> = item.attrs.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect();
    out.insert("pk".into(), AttributeValue::S(item.pk.clone()));
    out.insert("sk".into(), AttributeValue::S(item.sk.clone()));
    out
}

/// A DynamoDB item as a score-store item.
pub fn item_from_dynamo(mut raw: HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let mut key = |name: &str| match raw.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        other => Err(other),
    };
    let (pk, sk) = match (key("pk"), key("sk")) {
        (Ok(pk), Ok(sk)) => (pk, sk),
        (pk, sk) => {
            return Err(StoreError::Backend {
                op: "decode item",
                key: format!("{pk:?}/{sk:?}"),
                message: "item without string pk and sk".into(),
            })
        }
    };
    let mut attrs = Map::new();
    for (name, value) in &raw {
        let value = from_attr(value).map_err(|message| StoreError::Backend {
            op: "decode item",
            key: format!("{pk}/{sk}.{name}"),
            message,
        })?;
        attrs.insert(name.clone(), value);
    }
    Ok(Item { pk, sk, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: Value) {
        let back = from_attr(&to_attr(&v)).expect("decodes");
        assert_eq!(back, v);
    }

    #[test]
    fn scalars_round_trip() {
        for v in
            [json!(null), json!(true), json!(false), json!(0), json!(-42), json!(u64::MAX), json!("text"), json!("")]
        {
            round_trip(v);
        }
    }

    #[test]
    fn floats_round_trip_exactly() {
        for f in [0.1, -2.5, 1.0 / 3.0, 1e-7, 6.02214076e23, 0.8123456789012345, 3.0] {
            round_trip(json!(f));
        }
        assert_eq!(to_attr(&json!(0.25)), AttributeValue::N("0.25".into()));
    }

    #[test]
    fn nested_lists_of_objects_round_trip() {
        round_trip(json!({
            "items": [{"title_id": "t1", "score": 4.75}, {"title_id": "t2", "score": 3.5, "tags": ["a", null, 1]}],
            "criteria": [{"kind": "technical", "passed": true, "nested": {"deeper": [[1, 2], []]}}],
            "empty": {}
        }));
    }

    #[test]
    fn numbers_dynamodb_normalised_still_read_as_numbers() {
        // DynamoDB returns "3" for a stored 3.0 and may use exponents.
        assert_eq!(from_attr(&AttributeValue::N("3".into())).unwrap(), json!(3));
        assert_eq!(from_attr(&AttributeValue::N("1E-7".into())).unwrap().as_f64(), Some(1e-7));
        assert!(from_attr(&AttributeValue::N("abc".into())).is_err());
    }

    #[test]
    fn sets_become_arrays() {
        assert_eq!(from_attr(&AttributeValue::Ss(vec!["a".into()])).unwrap(), json!(["a"]));
        assert_eq!(from_attr(&AttributeValue::Ns(vec!["1".into(), "2.5".into()])).unwrap(), json!([1, 2.5]));
    }

    #[test]
    fn items_round_trip_with_keys() {
        let item = Item::new(
            "CUSTOMER#c1",
            "RECS",
            json!({"model_version": "r1", "items": [{"title_id": "t9", "score": 0.5}]}),
        );
        let raw = item_to_dynamo(&item);
        assert_eq!(raw["pk"], AttributeValue::S("CUSTOMER#c1".into()));
        assert_eq!(raw["sk"], AttributeValue::S("RECS".into()));
        assert_eq!(item_from_dynamo(raw).unwrap(), item);
    }

    #[test]
    fn item_without_keys_is_an_error() {
        let mut raw = HashMap::new();
        raw.insert("pk".to_string(), AttributeValue::S("x".into()));
        assert!(item_from_dynamo(raw).is_err());
    }
}
