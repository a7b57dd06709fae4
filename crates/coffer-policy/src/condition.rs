//! Condition operators and their evaluation (IAM user guide, "IAM JSON policy elements: Condition
//! operators", "Single-valued vs. multivalued context keys", "...IfExists condition operators").
//!
//! Rules implemented, in the guide's words where it has them:
//! - Several operators in one `Condition` block, and several keys under one operator, are ANDed;
//!   several values for one key are ORed.
//! - "If the key that you specify in a policy condition is not present in the request context,
//!   the values do not match and the condition is false. If the policy condition requires that
//!   the key is *not* matched, such as `StringNotLike` or `ArnNotLike`, and the right key is not
//!   present, the condition is true." This holds for every operator except `...IfExists` (a
//!   missing key makes the condition true) and `Null`.
//! - `ForAllValues:` is true when every request value matches (and when the key is missing or
//!   empty); `ForAnyValue:` is true when at least one request value matches (false when the key is
//!   missing). With a negated operator the per-value test is "matches none of the policy values".
//! - Without a set qualifier, a multivalued request key is matched as "any request value matches"
//!   for positive operators and "no request value matches" for negated ones.
//! - Policy variables are substituted in the string and ARN operators only.

use std::net::IpAddr;

use ipnet::IpNet;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::MalformedPolicy;
use crate::pattern::{self, Template};
use crate::request::AuthzRequest;

/// A condition operator without its qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Operator {
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    BinaryEquals,
    Bool,
    DateEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    DateLessThan,
    DateLessThanEquals,
    DateNotEquals,
    IpAddress,
    NotIpAddress,
    Null,
    NumericEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericNotEquals,
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    StringNotEquals,
    StringNotEqualsIgnoreCase,
    StringNotLike,
}

const OPERATORS: &[Operator] = &[
    Operator::ArnEquals,
    Operator::ArnLike,
    Operator::ArnNotEquals,
    Operator::ArnNotLike,
    Operator::BinaryEquals,
    Operator::Bool,
    Operator::DateEquals,
    Operator::DateGreaterThan,
    Operator::DateGreaterThanEquals,
    Operator::DateLessThan,
    Operator::DateLessThanEquals,
    Operator::DateNotEquals,
    Operator::IpAddress,
    Operator::NotIpAddress,
    Operator::Null,
    Operator::NumericEquals,
    Operator::NumericGreaterThan,
    Operator::NumericGreaterThanEquals,
    Operator::NumericLessThan,
    Operator::NumericLessThanEquals,
    Operator::NumericNotEquals,
    Operator::StringEquals,
    Operator::StringEqualsIgnoreCase,
    Operator::StringLike,
    Operator::StringNotEquals,
    Operator::StringNotEqualsIgnoreCase,
    Operator::StringNotLike,
];

/// The family of an operator, which decides how values are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Arn,
    Binary,
    Bool,
    Date,
    Ip,
    Null,
    Numeric,
    String,
}

impl Operator {
    /// Every operator.
    pub fn all() -> &'static [Operator] {
        OPERATORS
    }

    /// The operator's name as written in policies.
    pub fn name(self) -> &'static str {
        match self {
            Operator::ArnEquals => "ArnEquals",
            Operator::ArnLike => "ArnLike",
            Operator::ArnNotEquals => "ArnNotEquals",
            Operator::ArnNotLike => "ArnNotLike",
            Operator::BinaryEquals => "BinaryEquals",
            Operator::Bool => "Bool",
            Operator::DateEquals => "DateEquals",
            Operator::DateGreaterThan => "DateGreaterThan",
            Operator::DateGreaterThanEquals => "DateGreaterThanEquals",
            Operator::DateLessThan => "DateLessThan",
            Operator::DateLessThanEquals => "DateLessThanEquals",
            Operator::DateNotEquals => "DateNotEquals",
            Operator::IpAddress => "IpAddress",
            Operator::NotIpAddress => "NotIpAddress",
            Operator::Null => "Null",
            Operator::NumericEquals => "NumericEquals",
            Operator::NumericGreaterThan => "NumericGreaterThan",
            Operator::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            Operator::NumericLessThan => "NumericLessThan",
            Operator::NumericLessThanEquals => "NumericLessThanEquals",
            Operator::NumericNotEquals => "NumericNotEquals",
            Operator::StringEquals => "StringEquals",
            Operator::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            Operator::StringLike => "StringLike",
            Operator::StringNotEquals => "StringNotEquals",
            Operator::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            Operator::StringNotLike => "StringNotLike",
        }
    }

    fn from_name(name: &str) -> Option<Operator> {
        OPERATORS
            .iter()
            .copied()
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }

    /// Whether the operator is a negation ("does not match any value").
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Operator::ArnNotEquals
                | Operator::ArnNotLike
                | Operator::DateNotEquals
                | Operator::NotIpAddress
                | Operator::NumericNotEquals
                | Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
        )
    }

    fn family(self) -> Family {
        match self {
            Operator::ArnEquals | Operator::ArnLike | Operator::ArnNotEquals | Operator::ArnNotLike => Family::Arn,
            Operator::BinaryEquals => Family::Binary,
            Operator::Bool => Family::Bool,
            Operator::DateEquals
            | Operator::DateGreaterThan
            | Operator::DateGreaterThanEquals
            | Operator::DateLessThan
            | Operator::DateLessThanEquals
            | Operator::DateNotEquals => Family::Date,
            Operator::IpAddress | Operator::NotIpAddress => Family::Ip,
            Operator::Null => Family::Null,
            Operator::NumericEquals
            | Operator::NumericGreaterThan
            | Operator::NumericGreaterThanEquals
            | Operator::NumericLessThan
            | Operator::NumericLessThanEquals
            | Operator::NumericNotEquals => Family::Numeric,
            Operator::StringEquals
            | Operator::StringEqualsIgnoreCase
            | Operator::StringLike
            | Operator::StringNotEquals
            | Operator::StringNotEqualsIgnoreCase
            | Operator::StringNotLike => Family::String,
        }
    }
}

/// `ForAllValues:` or `ForAnyValue:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    /// Every request value must match (vacuously true for a missing key).
    ForAllValues,
    /// At least one request value must match.
    ForAnyValue,
}

/// A full operator as written: `[ForAllValues:|ForAnyValue:]Operator[IfExists]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConditionOperator {
    /// The set qualifier, if any.
    pub qualifier: Option<SetQualifier>,
    /// The operator.
    pub operator: Operator,
    /// Whether `IfExists` was appended.
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Parses an operator name; `None` if unknown (IAM: "Syntax errors in policy.").
    pub fn parse(name: &str) -> Option<ConditionOperator> {
        let (qualifier, rest) = if let Some(rest) = strip_prefix_ci(name, "ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else if let Some(rest) = strip_prefix_ci(name, "ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else {
            (None, name)
        };
        if let Some(op) = Operator::from_name(rest) {
            return Some(ConditionOperator {
                qualifier,
                operator: op,
                if_exists: false,
            });
        }
        let base = strip_suffix_ci(rest, "IfExists")?;
        let op = Operator::from_name(base)?;
        if op == Operator::Null {
            // The guide: "...IfExists" can be added to any operator "except the Null condition".
            return None;
        }
        Some(ConditionOperator {
            qualifier,
            operator: op,
            if_exists: true,
        })
    }

    /// The canonical name (`ForAnyValue:StringLikeIfExists`).
    pub fn name(&self) -> String {
        let q = match self.qualifier {
            Some(SetQualifier::ForAllValues) => "ForAllValues:",
            Some(SetQualifier::ForAnyValue) => "ForAnyValue:",
            None => "",
        };
        let e = if self.if_exists { "IfExists" } else { "" };
        format!("{q}{}{e}", self.operator.name())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

/// A condition value, typed at parse time for the operator it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub enum ConditionValue {
    /// String and ARN operators: text with wildcards and policy variables.
    Text(Template),
    /// Numeric operators.
    Number(f64, String),
    /// Date operators.
    Date(OffsetDateTime, String),
    /// `IpAddress`/`NotIpAddress`.
    Ip(IpNet, String),
    /// `Bool`, `BinaryEquals`, `Null`: compared as text.
    Plain(String),
}

impl ConditionValue {
    /// The value as written in the policy.
    pub fn raw(&self) -> &str {
        match self {
            ConditionValue::Text(t) => t.raw(),
            ConditionValue::Number(_, raw)
            | ConditionValue::Date(_, raw)
            | ConditionValue::Ip(_, raw)
            | ConditionValue::Plain(raw) => raw,
        }
    }
}

/// One `operator: { key: values }` entry of a `Condition` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The operator.
    pub operator: ConditionOperator,
    /// The condition key as written (matched case-insensitively).
    pub key: String,
    /// The policy values (ORed).
    pub values: Vec<ConditionValue>,
}

impl Condition {
    /// Builds a condition, typing and validating the values (IAM rejects unparsable dates,
    /// numbers and CIDRs with "The policy failed legacy parsing").
    pub fn new(
        operator: ConditionOperator,
        key: &str,
        values: &[String],
        variables: bool,
    ) -> Result<Condition, MalformedPolicy> {
        let values = values
            .iter()
            .map(|raw| type_value(operator.operator.family(), raw, variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Condition {
            operator,
            key: key.to_owned(),
            values,
        })
    }

    /// Evaluates the condition against a request.
    pub fn evaluate(&self, request: &AuthzRequest) -> bool {
        let key = self.key.to_ascii_lowercase();
        let lookup = |k: &str| request.lookup(k);
        let present = request.lookup(&key).filter(|v| !v.is_empty());
        let op = self.operator;
        if op.operator == Operator::Null {
            let absent = present.is_none();
            return self.values.iter().any(|v| match v.raw().to_ascii_lowercase().as_str() {
                "true" => absent,
                "false" => !absent,
                _ => false,
            });
        }
        let Some(request_values) = present else {
            if op.if_exists {
                return true;
            }
            return match op.qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => op.operator.is_negated(),
            };
        };
        let negated = op.operator.is_negated();
        let positive = |rv: &str| self.values.iter().any(|pv| value_matches(op.operator, pv, rv, &lookup));
        match op.qualifier {
            None => {
                let any = request_values.iter().any(|rv| positive(rv));
                if negated { !any } else { any }
            }
            Some(SetQualifier::ForAnyValue) => request_values.iter().any(|rv| positive(rv) != negated),
            Some(SetQualifier::ForAllValues) => request_values.iter().all(|rv| positive(rv) != negated),
        }
    }
}

fn type_value(family: Family, raw: &str, variables: bool) -> Result<ConditionValue, MalformedPolicy> {
    Ok(match family {
        Family::String | Family::Arn => ConditionValue::Text(Template::parse(raw, variables)),
        Family::Numeric => {
            let n = parse_number(raw).ok_or_else(MalformedPolicy::legacy)?;
            ConditionValue::Number(n, raw.to_owned())
        }
        Family::Date => {
            let d = parse_date(raw).ok_or_else(MalformedPolicy::legacy)?;
            ConditionValue::Date(d, raw.to_owned())
        }
        Family::Ip => {
            let net = parse_cidr(raw).ok_or_else(MalformedPolicy::legacy)?;
            ConditionValue::Ip(net, raw.to_owned())
        }
        Family::Bool | Family::Binary | Family::Null => ConditionValue::Plain(raw.to_owned()),
    })
}

/// Whether one request value matches one policy value under the (positive form of the) operator.
fn value_matches(
    op: Operator,
    policy: &ConditionValue,
    request: &str,
    lookup: &dyn Fn(&str) -> Option<Vec<String>>,
) -> bool {
    match (op, policy) {
        (Operator::StringEquals | Operator::StringNotEquals, ConditionValue::Text(t)) => {
            t.resolve_literal(lookup).is_some_and(|v| v == request)
        }
        (Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase, ConditionValue::Text(t)) => t
            .resolve_literal(lookup)
            .is_some_and(|v| v.to_lowercase() == request.to_lowercase()),
        (Operator::StringLike | Operator::StringNotLike, ConditionValue::Text(t)) => t
            .resolve(lookup)
            .is_some_and(|toks| pattern::matches(&toks, request, false)),
        (
            Operator::ArnEquals | Operator::ArnLike | Operator::ArnNotEquals | Operator::ArnNotLike,
            ConditionValue::Text(t),
        ) => t.resolve(lookup).is_some_and(|toks| arn_matches(&toks, request)),
        (_, ConditionValue::Number(n, _)) => parse_number(request).is_some_and(|r| match op {
            Operator::NumericEquals | Operator::NumericNotEquals => r == *n,
            Operator::NumericLessThan => r < *n,
            Operator::NumericLessThanEquals => r <= *n,
            Operator::NumericGreaterThan => r > *n,
            Operator::NumericGreaterThanEquals => r >= *n,
            _ => false,
        }),
        (_, ConditionValue::Date(d, _)) => parse_date(request).is_some_and(|r| match op {
            Operator::DateEquals | Operator::DateNotEquals => r == *d,
            Operator::DateLessThan => r < *d,
            Operator::DateLessThanEquals => r <= *d,
            Operator::DateGreaterThan => r > *d,
            Operator::DateGreaterThanEquals => r >= *d,
            _ => false,
        }),
        (_, ConditionValue::Ip(net, _)) => request.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
        (Operator::Bool, ConditionValue::Plain(p)) => p.eq_ignore_ascii_case(request),
        (Operator::BinaryEquals, ConditionValue::Plain(p)) => p == request,
        _ => false,
    }
}

/// Matches an ARN pattern (tokens) against an ARN: the six colon-separated parts are compared
/// separately, each with wildcards; the service part ignores case; the last part keeps its colons.
pub(crate) fn arn_matches(pattern: &[pattern::Token], arn: &str) -> bool {
    // The pattern's six parts (the last one keeps its colons, like the ARN's resource part).
    let mut parts: [&[pattern::Token]; 6] = [&[]; 6];
    let mut count = 0;
    let mut start = 0;
    for (i, tok) in pattern.iter().enumerate() {
        if count == 5 {
            break;
        }
        if *tok == pattern::Token::Lit(':') {
            parts[count] = &pattern[start..i];
            count += 1;
            start = i + 1;
        }
    }
    parts[count] = &pattern[start.min(pattern.len())..];
    count += 1;
    if count != 6 {
        // Only a bare `*` is allowed besides six parts.
        return count == 1 && parts[0].iter().all(|t| *t == pattern::Token::Star);
    }
    // An ARN with fewer than six parts runs out before the pattern does: no match.
    let mut request = arn.splitn(6, ':');
    parts
        .iter()
        .enumerate()
        .all(|(i, p)| request.next().is_some_and(|r| pattern::matches(p, r, i == 2)))
}

fn parse_number(s: &str) -> Option<f64> {
    let n: f64 = s.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

/// Parses an IAM date: ISO 8601 (date, date-time with `Z` or an offset, optional fraction) or
/// seconds since the epoch (IAM user guide, "Date condition operators").
pub(crate) fn parse_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && let Ok(secs) = s.parse::<i64>()
    {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    if let Ok(d) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(d);
    }
    if let Ok(d) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(d);
    }
    if let Ok(d) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(d.assume_utc());
    }
    if let Ok(d) = Date::parse(s, &Iso8601::DEFAULT) {
        return Some(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc());
    }
    None
}

/// Parses a CIDR block; a bare address counts as a single host (`/32`, `/128`).
pub(crate) fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}
