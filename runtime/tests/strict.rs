//! `ipcspec_runtime::strict`: structs decode only from JSON objects, at every depth, while
//! everything else (lists, tuples, borrowed strings, raw values) decodes as serde_json does.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeMap;

use ipcspec_runtime::strict::{self, Strict};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

#[derive(Debug, PartialEq, Deserialize)]
struct Point {
    x: i32,
    #[serde(default)]
    y: i32,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    verbose: Option<bool>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Holder {
    list: Vec<Point>,
    #[serde(default)]
    map: BTreeMap<String, Point>,
    #[serde(default)]
    option: Option<Point>,
    #[serde(default)]
    newtype: Option<Wrapped>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Wrapped(Point);

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "by", deny_unknown_fields)]
enum Internal {
    #[serde(rename = "point")]
    Point(Point),
    #[serde(rename = "none")]
    Nothing {},
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "t", content = "c", deny_unknown_fields)]
enum Adjacent {
    #[serde(rename = "point")]
    Point(Point),
}

#[derive(Debug, PartialEq, Deserialize)]
enum External {
    Point(Point),
    Struct { x: i32 },
    Tuple(i32, i32),
}

/// Every strict entry point's verdict on `json`, which must agree.
fn verdict<T>(json: &str) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let from_str = strict::from_str::<T>(json).map_err(|e| e.to_string());
    let from_slice = strict::from_slice::<T>(json.as_bytes()).map_err(|e| e.to_string());
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let from_value = strict::from_value::<T>(value).map_err(|e| e.to_string());
    assert_eq!(from_str.is_ok(), from_slice.is_ok(), "{json}");
    assert_eq!(
        from_str.is_ok(),
        from_value.is_ok(),
        "{json}: {from_value:?}"
    );
    if let (Ok(a), Ok(b)) = (&from_str, &from_value) {
        assert_eq!(a, b);
    }
    from_str
}

fn rejected<T>(json: &str) -> String
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    match verdict::<T>(json) {
        Ok(value) => panic!("{json} decoded as {value:?}"),
        Err(error) => error,
    }
}

#[test]
fn serde_alone_reads_structs_from_arrays() {
    // The gap this module closes.
    assert_eq!(
        serde_json::from_str::<Point>("[1, 2]").unwrap(),
        Point { x: 1, y: 2 }
    );
    assert_eq!(
        serde_json::from_str::<Settings>("[]").unwrap(),
        Settings::default()
    );
}

#[test]
fn top_level_structs_only_from_objects() {
    let error = rejected::<Point>("[1, 2]");
    assert!(
        error.starts_with("invalid type: sequence, expected struct Point"),
        "{error}"
    );
    let error = rejected::<Settings>("[]");
    assert!(
        error.starts_with("invalid type: sequence, expected struct Settings"),
        "{error}"
    );
    assert_eq!(
        verdict::<Point>(r#"{"x": 1, "y": 2}"#).unwrap(),
        Point { x: 1, y: 2 }
    );
    assert_eq!(verdict::<Settings>("{}").unwrap(), Settings::default());
    // Other errors are unchanged.
    assert!(rejected::<Settings>(r#"{"other": 1}"#).contains("unknown field `other`"));
    assert!(
        strict::from_str::<Point>(r#"{"x": 1} x"#)
            .unwrap_err()
            .to_string()
            .contains("trailing characters")
    );
}

#[test]
fn nested_structs_only_from_objects() {
    let ok = verdict::<Holder>(
        r#"{"list": [{"x": 1}], "map": {"a": {"x": 2}}, "option": {"x": 3}, "newtype": {"x": 4}}"#,
    )
    .unwrap();
    assert_eq!(ok.list, [Point { x: 1, y: 0 }]);
    assert_eq!(ok.map["a"], Point { x: 2, y: 0 });
    assert_eq!(ok.option, Some(Point { x: 3, y: 0 }));
    assert_eq!(ok.newtype, Some(Wrapped(Point { x: 4, y: 0 })));
    // The holder itself, then a struct in a list, a map, an option and a newtype.
    for json in [
        r#"[[{"x": 1}]]"#,
        r#"{"list": [[1, 2]]}"#,
        r#"{"list": [{"x": 1}, [1]]}"#,
        r#"{"list": [], "map": {"a": [2]}}"#,
        r#"{"list": [], "option": [3]}"#,
        r#"{"list": [], "newtype": [4]}"#,
    ] {
        let error = rejected::<Holder>(json);
        assert!(
            error.starts_with("invalid type: sequence, expected struct"),
            "{json}: {error}"
        );
    }
    // Lists, tuples and tuple structs still come from arrays.
    assert_eq!(
        verdict::<Vec<(i32, String)>>(r#"[[1, "a"]]"#).unwrap(),
        [(1, "a".to_owned())]
    );
}

#[test]
fn internally_tagged_variants_only_from_objects() {
    assert_eq!(
        verdict::<Internal>(r#"{"by": "point", "x": 1}"#).unwrap(),
        Internal::Point(Point { x: 1, y: 0 })
    );
    assert_eq!(
        verdict::<Internal>(r#"{"by": "none"}"#).unwrap(),
        Internal::Nothing {}
    );
    // serde alone takes the first element as the tag and the rest positionally.
    assert_eq!(
        serde_json::from_str::<Internal>(r#"["point", 1, 2]"#).unwrap(),
        Internal::Point(Point { x: 1, y: 2 })
    );
    for json in [r#"["point", 1, 2]"#, r#"["none"]"#] {
        let error = rejected::<Internal>(json);
        assert!(
            error.starts_with("invalid type: sequence, expected internally tagged enum Internal"),
            "{error}"
        );
    }
    // In a list too.
    let error = rejected::<Vec<Internal>>(r#"[{"by": "none"}, ["point", 1]]"#);
    assert!(
        error.contains("expected internally tagged enum Internal"),
        "{error}"
    );
}

#[test]
fn adjacently_tagged_variants_only_from_objects() {
    assert_eq!(
        verdict::<Adjacent>(r#"{"t": "point", "c": {"x": 1}}"#).unwrap(),
        Adjacent::Point(Point { x: 1, y: 0 })
    );
    assert!(serde_json::from_str::<Adjacent>(r#"{"t": "point", "c": [1]}"#).is_ok());
    let error = rejected::<Adjacent>(r#"{"t": "point", "c": [1]}"#);
    assert!(
        error.starts_with("invalid type: sequence, expected struct Point"),
        "{error}"
    );
    let error = rejected::<Adjacent>(r#"["point", {"x": 1}]"#);
    assert!(
        error.starts_with("invalid type: sequence, expected adjacently tagged enum Adjacent"),
        "{error}"
    );
}

#[test]
fn externally_tagged_variants_only_from_objects() {
    assert_eq!(
        verdict::<External>(r#"{"Point": {"x": 1}}"#).unwrap(),
        External::Point(Point { x: 1, y: 0 })
    );
    assert_eq!(
        verdict::<External>(r#"{"Struct": {"x": 1}}"#).unwrap(),
        External::Struct { x: 1 }
    );
    assert_eq!(
        verdict::<External>(r#"{"Tuple": [1, 2]}"#).unwrap(),
        External::Tuple(1, 2)
    );
    let error = rejected::<External>(r#"{"Point": [1]}"#);
    assert!(
        error.starts_with("invalid type: sequence, expected struct Point"),
        "{error}"
    );
    let error = rejected::<External>(r#"{"Struct": [1]}"#);
    assert!(
        error.starts_with("invalid type: sequence, expected struct variant"),
        "{error}"
    );
}

#[test]
fn borrowing_still_works() {
    #[derive(Debug, Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        payload: &'a RawValue,
    }
    let json = r#"{"type": "PING", "payload": {"n": [1, 2]}}"#;
    let envelope: Envelope<'_> = strict::from_str(json).unwrap();
    assert_eq!(envelope.kind, "PING");
    assert_eq!(envelope.payload.get(), r#"{"n": [1, 2]}"#);
    let envelope: Envelope<'_> = strict::from_slice(json.as_bytes()).unwrap();
    assert_eq!(envelope.payload.get(), r#"{"n": [1, 2]}"#);
    let owned: Box<RawValue> = strict::from_str(r#"[1, {"a": 2}]"#).unwrap();
    assert_eq!(owned.get(), r#"[1, {"a": 2}]"#);
    assert!(strict::from_str::<Envelope<'_>>(r#"["PING", {}]"#).is_err());
    // Values accept anything.
    let value: serde_json::Value = strict::from_str(r#"[[], {"a": []}]"#).unwrap();
    assert_eq!(value, json!([[], {"a": []}]));
}

#[test]
fn the_wrapper_works_on_any_deserializer() {
    let mut de = serde_json::Deserializer::from_str("[1]");
    assert!(Point::deserialize(Strict::new(&mut de)).is_err());
    assert!(Point::deserialize(Strict::new(json!({"x": 1}))).is_ok());
}

#[test]
fn dispatch_helpers_are_strict() {
    use ipcspec_runtime::dispatch;
    let raw = RawValue::from_string("[1, 2]".to_owned()).unwrap();
    assert!(dispatch::decode_json::<Point>("POINT", &raw).is_err());
    let raw = RawValue::from_string("[]".to_owned()).unwrap();
    assert!(dispatch::decode_empty_json("EMPTY", &raw, false).is_err());
    assert!(dispatch::decode_empty_json("EMPTY", &raw, true).is_err());
    let raw = RawValue::from_string("{}".to_owned()).unwrap();
    assert!(dispatch::decode_empty_json("EMPTY", &raw, true).is_ok());
}
