//! The serde adapters against the JSON forms of WIRE-MAPPING.md, one wire form at a time
//! and composed.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeMap;
use std::time::Duration;

use ipcspec_runtime::serde_as::{
    self, As, Base64, Hyphenated, I64String, ListOf, MapOf, Millis, Nullable, Optional, Rfc3339,
};
use serde_json::{Value, json};

/// Deserializes `input` through `A` and serializes the result back.
fn roundtrip<T, A>(input: Value) -> Result<Value, String>
where
    A: serde_as::SerializeAs<T> + for<'de> serde_as::DeserializeAs<'de, T>,
{
    serde_as::json_roundtrip::<T, A>(input).map_err(|e| e.to_string())
}

#[test]
fn int64_strings_are_exact_and_canonical() {
    for text in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
        assert_eq!(roundtrip::<i64, I64String>(json!(text)), Ok(json!(text)));
    }
    assert_eq!(
        roundtrip::<u64, I64String>(json!("18446744073709551615")),
        Ok(json!("18446744073709551615"))
    );
    for bad in [
        json!(12),
        json!("+1"),
        json!("01"),
        json!(" 1"),
        json!("1.0"),
        json!("9223372036854775808"),
    ] {
        assert!(roundtrip::<i64, I64String>(bad.clone()).is_err(), "{bad}");
    }
    let err = roundtrip::<u64, I64String>(json!("-1")).unwrap_err();
    assert!(err.contains("unsigned"), "{err}");
}

#[test]
fn adapters_compose_through_lists_maps_and_options() {
    let value = json!([{"a": ["1", "-2"], "b": []}]);
    assert_eq!(
        roundtrip::<Vec<BTreeMap<String, Vec<i64>>>, ListOf<MapOf<ListOf<I64String>>>>(
            value.clone()
        ),
        Ok(value)
    );
    assert!(
        roundtrip::<Vec<BTreeMap<String, Vec<i64>>>, ListOf<MapOf<ListOf<I64String>>>>(
            json!([{"a": [1]}])
        )
        .is_err()
    );

    // Nullable: null <-> None; Optional<Nullable<_>> on Option<Option<_>>.
    assert_eq!(
        roundtrip::<Option<u64>, Nullable<I64String>>(json!(null)),
        Ok(json!(null))
    );
    assert_eq!(
        roundtrip::<Option<u64>, Nullable<I64String>>(json!("7")),
        Ok(json!("7"))
    );
    let present_null: Option<Option<u64>> =
        serde_as::from_json_str::<_, Optional<Nullable<I64String>>>("null").unwrap();
    assert_eq!(present_null, Some(None));
    // Optional alone: a present key must hold a value.
    assert!(serde_as::from_json_str::<Option<String>, Optional<serde_as::Same>>("null").is_err());
}

#[test]
fn arrays_of_any_length_need_exactly_their_length() {
    let long: Vec<u8> = (0..64).collect();
    let value = json!(long);
    assert_eq!(
        roundtrip::<[u8; 64], serde_as::ArrayOf<serde_as::Same>>(value),
        Ok(json!(long))
    );
    let short =
        roundtrip::<[u8; 64], serde_as::ArrayOf<serde_as::Same>>(json!([1, 2])).unwrap_err();
    assert!(short.contains("invalid length 2"), "{short}");
    let over =
        roundtrip::<[u8; 2], serde_as::ArrayOf<serde_as::Same>>(json!([1, 2, 3, 4])).unwrap_err();
    assert!(over.contains("invalid length 4"), "{over}");
}

#[test]
fn base64_is_padded_standard() {
    assert_eq!(
        roundtrip::<Vec<u8>, Base64>(json!("aGk=")),
        Ok(json!("aGk="))
    );
    assert_eq!(roundtrip::<Vec<u8>, Base64>(json!("")), Ok(json!("")));
    for bad in ["aGk", "aG k=", "aGl=", "_-8="] {
        assert!(roundtrip::<Vec<u8>, Base64>(json!(bad)).is_err(), "{bad}");
    }
}

#[test]
fn uuids_are_hyphenated_lower_case_out_either_case_in() {
    let upper = "67E55044-10B1-426F-9247-BB680E5FE0C8";
    assert_eq!(
        roundtrip::<uuid::Uuid, Hyphenated>(json!(upper)),
        Ok(json!(upper.to_lowercase()))
    );
    for bad in [
        "67e5504410b1426f9247bb680e5fe0c8",
        "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
    ] {
        assert!(
            roundtrip::<uuid::Uuid, Hyphenated>(json!(bad)).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn timestamps_are_rfc3339_with_at_most_nine_fraction_digits() {
    for text in [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.5+02:00",
        "1970-01-01T00:00:00.123456789Z",
    ] {
        assert_eq!(
            roundtrip::<time::OffsetDateTime, Rfc3339>(json!(text)),
            Ok(json!(text))
        );
    }
    assert!(
        roundtrip::<time::OffsetDateTime, Rfc3339>(json!("2024-05-01T12:00:00.1234567890Z"))
            .is_err()
    );
    assert!(roundtrip::<time::OffsetDateTime, Rfc3339>(json!("2024-05-01 12:00:00")).is_err());
}

#[test]
fn durations_are_whole_non_negative_milliseconds() {
    assert_eq!(roundtrip::<Duration, Millis>(json!(1500)), Ok(json!(1500)));
    assert!(roundtrip::<Duration, Millis>(json!(-1)).is_err());
    assert!(roundtrip::<Duration, Millis>(json!(1.5)).is_err());
    assert_eq!(
        serde_as::to_json_value::<Duration, Millis>(&Duration::from_micros(2_500)).unwrap(),
        json!(2)
    );
}

#[test]
fn field_attributes_work_through_as() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Record {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "As::<Optional<Nullable<I64String>>>"
        )]
        hint: Option<Option<u64>>,
        #[serde(with = "As::<Nullable<serde_as::Same>>")]
        parent: Option<String>,
    }

    let absent: Record = serde_json::from_value(json!({"parent": null})).unwrap();
    assert_eq!(
        absent,
        Record {
            hint: None,
            parent: None
        }
    );
    assert_eq!(
        serde_json::to_value(&absent).unwrap(),
        json!({"parent": null})
    );
    let null: Record = serde_json::from_value(json!({"hint": null, "parent": "p"})).unwrap();
    assert_eq!(null.hint, Some(None));
    assert_eq!(
        serde_json::to_value(&null).unwrap(),
        json!({"hint": null, "parent": "p"})
    );
    // A nullable key is still required.
    assert!(serde_json::from_value::<Record>(json!({})).is_err());
}
