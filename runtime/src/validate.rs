//! Constraint validation: what generated types call to check a decoded value against the
//! catalogue's `constraints` (`minimum`, `maximum`, `minLength`, `maxLength`, `pattern`,
//! `minItems`, `maxItems`) and the zero padding of C-layout structs.
//!
//! Serde decoding already enforces the shape of a value (keys, JSON types, integer widths,
//! enum members, union tags, the wire forms of `uuid`, `timestamp`, `bytes`...); what it
//! cannot see are the catalogue's constraints. Generated types implement [`Validate`], so
//! a decoded value is accepted by `decode + validate` exactly when the generated JSON
//! Schema accepts its JSON form (the `validation` test of `ipcspec-codegen` compares both
//! verdicts on valid, wrong and mutated documents).
//!
//! The semantics are JSON Schema's: bounds are inclusive, lengths count Unicode scalar
//! values (`chars()`), a pattern matches anywhere unless anchored, a constraint on an
//! optional or nullable field applies only to a present, non-null value.
//!
//! Checking allocates nothing while values are valid: the location of a value is a
//! [`Path`] on the stack, rendered to text only when a violation is reported.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// A type whose values can be checked against the catalogue's constraints.
pub trait Validate {
    /// Appends every violation of `self` and of the values it contains to `errors`, with
    /// paths below `at`. The default finds nothing (enums, and types without
    /// constraints).
    fn validate_at(&self, _at: &Path<'_>, _errors: &mut Vec<ValidationError>) {}

    /// Every violation, or `Ok` when there is none.
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.validate_at(&Path::Root, &mut errors);
        ValidationErrors::result(errors)
    }
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    fn validate_at(&self, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
        (**self).validate_at(at, errors);
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate_at(&self, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
        if let Some(value) = self {
            value.validate_at(at, errors);
        }
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate_at(&self, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
        self.as_slice().validate_at(at, errors);
    }
}

impl<T: Validate> Validate for [T] {
    fn validate_at(&self, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
        for (i, item) in self.iter().enumerate() {
            item.validate_at(&at.index(i), errors);
        }
    }
}

impl<T: Validate, const N: usize> Validate for [T; N] {
    fn validate_at(&self, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
        self.as_slice().validate_at(at, errors);
    }
}

impl<T: Validate> Validate for BTreeMap<String, T> {
    fn validate_at(&self, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
        for (key, item) in self {
            item.validate_at(&at.entry(key), errors);
        }
    }
}

/// Values without constraints of their own.
macro_rules! always_valid {
    ($($t:ty),* $(,)?) => { $(impl Validate for $t {})* };
}
always_valid!(
    bool,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64,
    String,
    str,
    uuid::Uuid,
    time::OffsetDateTime,
    std::time::Duration,
    serde_json::Value,
);

/// Where a value sits inside the value being validated: a chain of segments on the
/// stack, cheap to extend, turned into text (`items[2].name`, `labels["a b"]`) only for
/// an error.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The value being validated.
    Root,
    /// A struct field or union content key, by its wire name.
    Field(&'a Path<'a>, &'a str),
    /// A list or array element.
    Index(&'a Path<'a>, usize),
    /// A map entry, by its key.
    Entry(&'a Path<'a>, &'a str),
}

impl<'a> Path<'a> {
    /// The field `name` of the value here.
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// Element `index` of the list here.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// The entry `key` of the map here.
    pub fn entry(&'a self, key: &'a str) -> Path<'a> {
        Path::Entry(self, key)
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Field(parent, name) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Path::Index(parent, index) => {
                parent.write(out);
                out.push_str(&format!("[{index}]"));
            }
            Path::Entry(parent, key) => {
                parent.write(out);
                out.push('[');
                out.push_str(&serde_json::Value::from(*key).to_string());
                out.push(']');
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

/// A number as the catalogue and the value have it: integers exactly, floats as floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer (every Rust integer width fits).
    Int(i128),
    /// A float.
    Float(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(v) => write!(f, "{v}"),
            Number::Float(v) => write!(f, "{v}"),
        }
    }
}

/// The constraint a value violates, with its bound and what was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `minimum` (inclusive).
    Minimum {
        /// The bound.
        min: Number,
        /// The value.
        found: Number,
    },
    /// `maximum` (inclusive).
    Maximum {
        /// The bound.
        max: Number,
        /// The value.
        found: Number,
    },
    /// `minLength`, in Unicode scalar values.
    MinLength {
        /// The bound.
        min: u64,
        /// The value's length.
        found: u64,
    },
    /// `maxLength`, in Unicode scalar values.
    MaxLength {
        /// The bound.
        max: u64,
        /// The value's length.
        found: u64,
    },
    /// `pattern`.
    Pattern {
        /// The regular expression, as the catalogue writes it.
        pattern: &'static str,
    },
    /// `minItems`.
    MinItems {
        /// The bound.
        min: u64,
        /// The number of elements.
        found: u64,
    },
    /// `maxItems`.
    MaxItems {
        /// The bound.
        max: u64,
        /// The number of elements.
        found: u64,
    },
    /// A padding field (or padding array element) of a C-layout struct is not zero.
    Padding {
        /// The value found.
        found: u64,
    },
    /// `exactlyOneOf`: not exactly one field of the group is present.
    ExactlyOneOf {
        /// The group's fields, as the catalogue names them.
        fields: &'static [&'static str],
        /// How many of them are present.
        present: u64,
    },
    /// `sumOf`: a computed field differs from the sum it must hold.
    SumOf {
        /// The list field whose items are summed.
        list: &'static str,
        /// The summed field of the items.
        field: &'static str,
        /// The sum.
        expected: i128,
        /// The value found.
        found: i128,
    },
}

impl Rule {
    /// The JSON Schema keyword of the rule (`const` for padding).
    pub fn keyword(&self) -> &'static str {
        match self {
            Rule::Minimum { .. } => "minimum",
            Rule::Maximum { .. } => "maximum",
            Rule::MinLength { .. } => "minLength",
            Rule::MaxLength { .. } => "maxLength",
            Rule::Pattern { .. } => "pattern",
            Rule::MinItems { .. } => "minItems",
            Rule::MaxItems { .. } => "maxItems",
            Rule::Padding { .. } => "const",
            Rule::ExactlyOneOf { .. } => "oneOf",
            Rule::SumOf { .. } => "x-ipcspec-sumOf",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Minimum { min, found } => write!(f, "{found} is less than the minimum {min}"),
            Rule::Maximum { max, found } => {
                write!(f, "{found} is greater than the maximum {max}")
            }
            Rule::MinLength { min, found } => write!(
                f,
                "{found} characters is shorter than the minimum length {min}"
            ),
            Rule::MaxLength { max, found } => write!(
                f,
                "{found} characters is longer than the maximum length {max}"
            ),
            Rule::Pattern { pattern } => write!(f, "does not match the pattern `{pattern}`"),
            Rule::MinItems { min, found } => {
                write!(f, "{found} items are fewer than the minimum {min}")
            }
            Rule::MaxItems { max, found } => {
                write!(f, "{found} items are more than the maximum {max}")
            }
            Rule::Padding { found } => write!(f, "padding is {found}, not zero"),
            Rule::ExactlyOneOf { fields, present } => write!(
                f,
                "{present} of `{}` are present; exactly one must be",
                fields.join("`, `")
            ),
            Rule::SumOf {
                list,
                field,
                expected,
                found,
            } => write!(
                f,
                "{found} is not the sum of `{field}` over `{list}`, {expected}"
            ),
        }
    }
}

/// One violated constraint: where, and which.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationError {
    /// The value's location: `percentComplete`, `users[2].id`, `labels["k"]`; empty for
    /// the validated value itself.
    pub path: String,
    /// The rule it breaks.
    pub rule: Rule,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "the value: {}", self.rule)
        } else {
            write!(f, "`{}`: {}", self.path, self.rule)
        }
    }
}

impl std::error::Error for ValidationError {}

/// Every violation found in one value (never empty).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// `Ok` for no errors, else the errors.
    pub fn result(errors: Vec<ValidationError>) -> Result<(), ValidationErrors> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// The violations, in the order found (fields in declaration order).
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// A string that names no value of an enum (`"PURPLE".parse::<Color>()`): what the
/// generated `FromStr` impls of enums and error codes return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The catalogue type's name (`Color`).
    pub type_name: &'static str,
    /// The string given.
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a value of `{}`", self.value, self.type_name)
    }
}

impl std::error::Error for UnknownValue {}

/// Checks `value` with `check` (a generated `constraints::<alias>` function) at the
/// root: what the `FromStr`, `TryFrom` and `Deserialize` impls of a constrained string
/// newtype run before they accept a value.
pub fn check_str(
    value: &str,
    check: impl FnOnce(&str, &Path<'_>, &mut Vec<ValidationError>),
) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    check(value, &Path::Root, &mut errors);
    ValidationErrors::result(errors)
}

fn report(at: &Path<'_>, rule: Rule, errors: &mut Vec<ValidationError>) {
    errors.push(ValidationError {
        path: at.to_string(),
        rule,
    });
}

/// A value `minimum`/`maximum` apply to.
pub trait Numeric: Copy {
    /// The value, exactly.
    fn number(self) -> Number;
}

macro_rules! numeric_int {
    ($($t:ty),*) => { $(impl Numeric for $t {
        fn number(self) -> Number { Number::Int(i128::from(self)) }
    })* };
}
numeric_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Numeric for f32 {
    fn number(self) -> Number {
        Number::Float(f64::from(self))
    }
}

impl Numeric for f64 {
    fn number(self) -> Number {
        Number::Float(self)
    }
}

/// A `duration` is compared in milliseconds, its wire unit.
impl Numeric for std::time::Duration {
    fn number(self) -> Number {
        Number::Int(i128::try_from(self.as_millis()).unwrap_or(i128::MAX))
    }
}

/// The bound as a [`Number`] for messages: an integer when it is whole.
fn bound(v: f64) -> Number {
    if v.fract() == 0.0 && v.abs() < 1.0e18 {
        Number::Int(v as i128)
    } else {
        Number::Float(v)
    }
}

/// `value >= min` (JSON Schema `minimum`): integers are compared exactly with a
/// fractional bound (`3 >= 2.5`), floats as floats.
pub fn minimum<T: Numeric>(value: T, min: f64, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    let found = value.number();
    let ok = match found {
        // An integer is >= min exactly when it is >= ceil(min); the cast saturates.
        Number::Int(v) => v >= min.ceil() as i128,
        Number::Float(v) => v >= min,
    };
    if !ok {
        report(
            at,
            Rule::Minimum {
                min: bound(min),
                found,
            },
            errors,
        );
    }
}

/// `value <= max` (JSON Schema `maximum`).
pub fn maximum<T: Numeric>(value: T, max: f64, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    let found = value.number();
    let ok = match found {
        Number::Int(v) => v <= max.floor() as i128,
        Number::Float(v) => v <= max,
    };
    if !ok {
        report(
            at,
            Rule::Maximum {
                max: bound(max),
                found,
            },
            errors,
        );
    }
}

/// The length of a string in Unicode scalar values, as JSON Schema counts it.
pub fn char_len(value: &str) -> u64 {
    value.chars().count() as u64
}

/// `minLength`.
pub fn min_length(value: &str, min: u64, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    // Fewer bytes than `min` means fewer characters; enough bytes needs a count.
    if (value.len() as u64) < min || char_len(value) < min {
        report(
            at,
            Rule::MinLength {
                min,
                found: char_len(value),
            },
            errors,
        );
    }
}

/// `maxLength`.
pub fn max_length(value: &str, max: u64, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    // At most `max` bytes is at most `max` characters, without counting.
    if (value.len() as u64) > max && char_len(value) > max {
        report(
            at,
            Rule::MaxLength {
                max,
                found: char_len(value),
            },
            errors,
        );
    }
}

/// A pattern compiled on first use: generated code holds one per distinct pattern in a
/// `static` of this type, so each is compiled once per process.
pub type LazyPattern = std::sync::LazyLock<Pattern>;

/// A compiled `pattern`. Generated code holds one per distinct pattern in a
/// [`LazyPattern`], so each is compiled once, on first use.
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    regex: Result<Regex, regex::Error>,
}

impl Pattern {
    /// Compiles `source`. The catalogue validator has compiled every pattern with the
    /// same `regex` crate, so this does not fail for generated code; if it did, every
    /// value would be reported as not matching rather than accepted unchecked.
    pub fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            regex: Regex::new(source),
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// True when the pattern matches somewhere in `value` (JSON Schema does not anchor).
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.as_ref().is_ok_and(|r| r.is_match(value))
    }
}

/// `pattern`.
pub fn pattern(value: &str, pattern: &Pattern, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    if !pattern.is_match(value) {
        report(
            at,
            Rule::Pattern {
                pattern: pattern.source,
            },
            errors,
        );
    }
}

/// `minItems`.
pub fn min_items(len: usize, min: u64, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    if (len as u64) < min {
        report(
            at,
            Rule::MinItems {
                min,
                found: len as u64,
            },
            errors,
        );
    }
}

/// `maxItems`.
pub fn max_items(len: usize, max: u64, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    if (len as u64) > max {
        report(
            at,
            Rule::MaxItems {
                max,
                found: len as u64,
            },
            errors,
        );
    }
}

/// Padding must be zero.
pub fn padding<T: Into<u64> + Copy>(value: T, at: &Path<'_>, errors: &mut Vec<ValidationError>) {
    let found: u64 = value.into();
    if found != 0 {
        report(at, Rule::Padding { found }, errors);
    }
}

/// Exactly one field of a group is present (`present` holds one flag per field).
pub fn exactly_one_of(
    present: &[bool],
    fields: &'static [&'static str],
    at: &Path<'_>,
    errors: &mut Vec<ValidationError>,
) {
    let count = present.iter().filter(|p| **p).count() as u64;
    if count != 1 {
        report(
            at,
            Rule::ExactlyOneOf {
                fields,
                present: count,
            },
            errors,
        );
    }
}

/// A computed field holds the sum of `field` over the items of `list`.
pub fn sum_of(
    found: i128,
    items: impl IntoIterator<Item = i128>,
    list: &'static str,
    field: &'static str,
    at: &Path<'_>,
    errors: &mut Vec<ValidationError>,
) {
    // Saturating: no list of 64-bit values is long enough to reach it, and none panics.
    let expected = items.into_iter().fold(0i128, i128::saturating_add);
    if found != expected {
        report(
            at,
            Rule::SumOf {
                list,
                field,
                expected,
                found,
            },
            errors,
        );
    }
}

/// Decodes `value` as a `T` through the serde adapter `A` and runs `check` on it: the
/// verdict of the generated `validate_json` registries. A decoding failure is a
/// rejection like a violated constraint; both come back as text. Decoding is strict
/// (structs only from objects, as the JSON Schemas say; see [`crate::strict`]).
pub fn json_verdict<T, A>(
    value: serde_json::Value,
    check: impl FnOnce(&T, &Path<'_>, &mut Vec<ValidationError>),
) -> Result<(), String>
where
    A: for<'de> crate::serde_as::DeserializeAs<'de, T> + ?Sized,
{
    let typed: T =
        crate::strict::from_value_as::<T, A>(value).map_err(|e| format!("cannot decode: {e}"))?;
    let mut errors = Vec::new();
    check(&typed, &Path::Root, &mut errors);
    ValidationErrors::result(errors).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(f: impl FnOnce(&Path<'_>, &mut Vec<ValidationError>)) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        let root = Path::Root;
        let field = root.field("items");
        let at = field.index(2);
        f(&at, &mut errors);
        errors
    }

    #[test]
    fn bounds_are_inclusive_and_exact() {
        assert!(errors_of(|at, e| minimum(0.0_f64, 0.0, at, e)).is_empty());
        assert!(errors_of(|at, e| maximum(100.0_f64, 100.0, at, e)).is_empty());
        assert_eq!(errors_of(|at, e| maximum(100.5_f64, 100.0, at, e)).len(), 1);
        // Integers against fractional bounds.
        assert!(errors_of(|at, e| minimum(3_u32, 2.5, at, e)).is_empty());
        assert_eq!(errors_of(|at, e| minimum(2_u32, 2.5, at, e)).len(), 1);
        assert!(errors_of(|at, e| maximum(2_i32, 2.5, at, e)).is_empty());
        // No float rounding for large integers.
        assert_eq!(
            errors_of(|at, e| maximum(u64::MAX, 18_446_744_073_709_549_568.0, at, e)).len(),
            1
        );
        let d = std::time::Duration::from_millis(300_001);
        assert_eq!(errors_of(|at, e| maximum(d, 300_000.0, at, e)).len(), 1);
    }

    #[test]
    fn lengths_count_unicode_scalar_values() {
        assert!(errors_of(|at, e| max_length("ééé", 3, at, e)).is_empty());
        assert_eq!(errors_of(|at, e| max_length("éééé", 3, at, e)).len(), 1);
        assert!(errors_of(|at, e| min_length("é", 1, at, e)).is_empty());
        assert_eq!(errors_of(|at, e| min_length("", 1, at, e)).len(), 1);
    }

    #[test]
    fn patterns_search_unless_anchored() {
        let open = Pattern::new("[0-9]");
        let anchored = Pattern::new("^[0-9]+$");
        assert!(open.is_match("ab1"));
        assert!(!anchored.is_match("ab1"));
        assert!(!anchored.is_match("1\n"));
        assert!(!Pattern::new("(").is_match("("));
    }

    #[test]
    fn messages_name_the_field_and_the_rule() {
        let mut errors = Vec::new();
        let root = Path::Root;
        maximum(120_u32, 100.0, &root.field("percentComplete"), &mut errors);
        assert_eq!(
            errors[0].to_string(),
            "`percentComplete`: 120 is greater than the maximum 100"
        );
        let errors = errors_of(|at, e| {
            let key = at.entry("a \"b\"");
            pattern("x", &Pattern::new("^[0-9]+$"), &key.field("id"), e);
        });
        assert_eq!(
            errors[0].to_string(),
            "`items[2][\"a \\\"b\\\"\"].id`: does not match the pattern `^[0-9]+$`"
        );
        assert_eq!(errors[0].rule.keyword(), "pattern");
        let list = vec![Some(1_u8)];
        assert!(list.validate().is_ok());
    }
}
