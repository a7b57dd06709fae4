//! AWS Secrets Manager rotation schedules: parsing and validating
//! `RotationRules`, and computing rotation windows and `NextRotationDate`.
//!
//! Pure computation: no I/O, no clock (every function takes the times it needs).
//!
//! # Semantics, with the AWS documents they come from
//!
//! * **`RotationRulesType`** (API reference) and **`AWS::SecretsManager::RotationSchedule
//!   RotationRules`** (CloudFormation): `AutomaticallyAfterDays` is 1–1000 and counts from
//!   the previous rotation (a manual `PutSecretValue`/`UpdateSecret` counts as one; the
//!   caller passes that time as `last_rotated`); it cannot be combined with
//!   `ScheduleExpression`. `Duration` is `[0-9]+h`, 2–3 characters; without it a
//!   schedule in hours gets a one-hour window and a schedule in days a window that closes
//!   at the end of the UTC day. "The window must not extend into the next rotation window
//!   or the next UTC day."
//! * **"Rotation schedules"** (Secrets Manager User Guide): schedules are UTC; windows
//!   always start on the hour; `rate()` in days starts at midnight; `rate(Value Unit)`
//!   with unit `hour`, `hours`, `day` or `days`, at most every four hours, at most 999
//!   days; `cron(Minutes Hours Day-of-month Month Day-of-week Year)` with minutes `0` and
//!   year `*`, exactly one of day-of-month / day-of-week `?`, day-of-week 1–7 = SUN–SAT,
//!   `L` (last day of month; alone in day-of-week, Saturday), `DAYL`, `#` and `/`
//!   increments; "a cron expression that includes increments of
//!   hours resets each day"; for a schedule in hours the window must be no longer than
//!   the hours between rotations, for one in days the start hour plus the window must be
//!   at most 24.
//! * **`DescribeSecret`** (`NextRotationDate`): "rotation is scheduled to occur on or
//!   before this date", so it is reported as the last second of the next window. A
//!   published `describe-secret` transcript agrees: `AutomaticallyAfterDays` 30, value
//!   last changed 2026-02-03 → `NextRotationDate` 2026-03-05T23:59:59Z (see the test).
//!
//! The caller passes as `last_rotated` the later of `LastRotatedDate` and the last
//! manual value change; this crate does not know about versions.
//!
//! # Choices where the documents are silent
//!
//! * `AutomaticallyAfterDays N` behaves as `rate(N days)`: the window is the whole UTC day
//!   `N` days after the day of the last rotation (or creation).
//! * `rate(N hours)` windows start `N` hours after the last rotation, truncated to the
//!   hour; a window never runs past the end of its UTC day.
//! * Cron windows ignore the last rotation: they start at each cron time.
//! * `W` (nearest weekday) is accepted as in EventBridge cron, although the Secrets
//!   Manager table does not list it.
//! * Message texts other than "You cannot specify both rotation frequency and schedule
//!   expression together." are ours, not verified against AWS.

mod error;
mod utc;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use time::{Date, Duration, OffsetDateTime, Time};

pub use error::{ErrorKind, ScheduleError};
use utc::Utc;

const DAY_SECS: i64 = 86_400;
const HOUR_SECS: i64 = 3_600;
/// "You can rotate a secret as often as every four hours."
const MIN_INTERVAL_HOURS: i64 = 4;
/// "The maximum rotation period is 999 days."
const MAX_RATE_DAYS: i64 = 999;
const SCHEDULE_PATTERN: &str = r"[0-9A-Za-z\(\)#\?\*\-\/, ]+";

/// Entry point for parsing the `RotationRules` structure.
pub struct RotationRules;

impl RotationRules {
    /// Validates the three `RotationRules` members as AWS does and builds a [`Schedule`].
    pub fn parse(
        automatically_after_days: Option<i64>,
        schedule_expression: Option<&str>,
        duration: Option<&str>,
    ) -> Result<Schedule, ScheduleError> {
        // Model constraints first: the AWS front end rejects these before the service.
        if let Some(days) = automatically_after_days {
            let member = "automaticallyAfterDays";
            if days < 1 {
                return Err(ScheduleError::validation(
                    &days.to_string(),
                    member,
                    "Member must have value greater than or equal to 1",
                ));
            }
            if days > 1000 {
                return Err(ScheduleError::validation(
                    &days.to_string(),
                    member,
                    "Member must have value less than or equal to 1000",
                ));
            }
        }
        if let Some(expr) = schedule_expression {
            let member = "scheduleExpression";
            if expr.is_empty() {
                return Err(ScheduleError::validation(
                    expr,
                    member,
                    "Member must have length greater than or equal to 1",
                ));
            }
            if expr.chars().count() > 256 {
                return Err(ScheduleError::validation(
                    expr,
                    member,
                    "Member must have length less than or equal to 256",
                ));
            }
            if !expr.chars().all(schedule_char) {
                return Err(ScheduleError::validation(
                    expr,
                    member,
                    &format!("Member must satisfy regular expression pattern: {SCHEDULE_PATTERN}"),
                ));
            }
        }
        let window_hours = match duration {
            None => None,
            Some(d) => Some(parse_duration(d)?),
        };

        let mut schedule = match (automatically_after_days, schedule_expression) {
            (Some(_), Some(_)) => {
                return Err(ScheduleError::invalid(
                    "You cannot specify both rotation frequency and schedule expression together.",
                ));
            }
            (None, None) => {
                return Err(ScheduleError::invalid(
                    "You must specify either AutomaticallyAfterDays or ScheduleExpression in RotationRules.",
                ));
            }
            (Some(days), None) => Schedule::AfterDays {
                days: u16::try_from(days).unwrap_or(1000),
                window: WindowLength::ToEndOfDay,
            },
            (None, Some(expr)) => parse_expression(expr)?,
        };

        if let Some(hours) = window_hours {
            schedule.check_window(hours)?;
            schedule.set_window(WindowLength::Hours(hours));
        }
        Ok(schedule)
    }
}

fn schedule_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "()#?*-/, ".contains(c)
}

/// `Duration`: model pattern `[0-9]+h`, length 2–3; then at least one hour ("as small as
/// one hour") and at most a day.
fn parse_duration(d: &str) -> Result<u8, ScheduleError> {
    let member = "duration";
    let len = d.chars().count();
    if len < 2 {
        return Err(ScheduleError::validation(
            d,
            member,
            "Member must have length greater than or equal to 2",
        ));
    }
    if len > 3 {
        return Err(ScheduleError::validation(
            d,
            member,
            "Member must have length less than or equal to 3",
        ));
    }
    let digits = d.strip_suffix('h').unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::validation(
            d,
            member,
            "Member must satisfy regular expression pattern: [0-9]+h",
        ));
    }
    let hours: u8 = digits.parse().unwrap_or(u8::MAX);
    if hours == 0 || hours > 24 {
        return Err(ScheduleError::invalid(format!(
            "The rotation window duration must be between 1h and 24h, but was {d}."
        )));
    }
    Ok(hours)
}

fn parse_expression(expr: &str) -> Result<Schedule, ScheduleError> {
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        parse_rate(expr, inner)
    } else if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        parse_cron(expr, inner)
    } else {
        Err(ScheduleError::invalid(format!(
            "Invalid ScheduleExpression {expr}: it must be a rate() or cron() expression."
        )))
    }
}

fn parse_rate(expr: &str, inner: &str) -> Result<Schedule, ScheduleError> {
    let bad = || {
        ScheduleError::invalid(format!(
            "Invalid rate expression {expr}: use rate(Value Unit) with a positive integer \
             Value and Unit hour, hours, day or days."
        ))
    };
    let mut parts = inner.split(' ').filter(|p| !p.is_empty());
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = value.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    let unit = match unit {
        "hour" | "hours" => RateUnit::Hours,
        "day" | "days" => RateUnit::Days,
        _ => return Err(bad()),
    };
    let hours = match unit {
        RateUnit::Hours => n,
        RateUnit::Days => n.saturating_mul(24),
    };
    if hours < MIN_INTERVAL_HOURS {
        return Err(ScheduleError::invalid(format!(
            "Invalid rate expression {expr}: you can rotate a secret at most every {MIN_INTERVAL_HOURS} hours."
        )));
    }
    if hours > MAX_RATE_DAYS * 24 {
        return Err(ScheduleError::invalid(format!(
            "Invalid rate expression {expr}: the maximum rotation period is {MAX_RATE_DAYS} days."
        )));
    }
    let window = match unit {
        RateUnit::Hours => WindowLength::Hours(1),
        RateUnit::Days => WindowLength::ToEndOfDay,
    };
    Ok(Schedule::Rate {
        every: Duration::hours(hours),
        unit,
        window,
    })
}

fn parse_cron(expr: &str, inner: &str) -> Result<Schedule, ScheduleError> {
    let bad = |why: &str| ScheduleError::invalid(format!("Invalid cron expression {expr}: {why}"));
    let fields: Vec<&str> = inner.split(' ').filter(|p| !p.is_empty()).collect();
    let [minutes, _hours, dom, _month, dow, year] = fields.as_slice() else {
        return Err(bad(
            "it must have six fields: Minutes Hours Day-of-month Month Day-of-week Year.",
        ));
    };
    if *minutes != "0" {
        return Err(bad(
            "the Minutes field must be 0 because rotation windows start on the hour.",
        ));
    }
    if *year != "*" {
        return Err(bad("the Year field must be *."));
    }
    if (*dom == "?") == (*dow == "?") {
        return Err(bad("use ? in exactly one of the Day-of-month and Day-of-week fields."));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .dom_and_dow(false)
        .build();
    // AWS: "Use L to specify the last day of the week" (Saturday); croner only knows
    // `L` after a weekday.
    let mut fields = fields.clone();
    if fields[4] == "L" {
        fields[4] = "7";
    }
    let cron = parser
        .parse(&format!("0 {}", fields.join(" ")))
        .map_err(|e| bad(&format!("{e}.")))?;

    let mut hours = Vec::new();
    for h in 0..24u8 {
        if cron
            .pattern
            .hour_match(u32::from(h))
            .map_err(|e| bad(&format!("{e}.")))?
        {
            hours.push(h);
        }
    }
    if hours.windows(2).any(|w| i64::from(w[1] - w[0]) < MIN_INTERVAL_HOURS) {
        return Err(bad(&format!(
            "you can rotate a secret at most every {MIN_INTERVAL_HOURS} hours."
        )));
    }
    // A pattern that never fires (e.g. 30 February) is rejected rather than scheduled.
    let reference = Utc(time::macros::datetime!(2000-01-01 0:00 UTC));
    if cron.find_next_occurrence(&reference, false).is_err() {
        return Err(bad("it never matches a date."));
    }
    let window = if hours.len() > 1 {
        WindowLength::Hours(1)
    } else {
        WindowLength::ToEndOfDay
    };
    Ok(Schedule::Cron {
        expr: Box::new(CronExpr {
            source: expr.to_owned(),
            cron,
            hours,
        }),
        window,
    })
}

/// The unit a `rate()` expression was written in; it decides where windows start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// `rate(N hours)`: windows start on the hour.
    Hours,
    /// `rate(N days)`: windows start at midnight UTC.
    Days,
}

/// How long a rotation window stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowLength {
    /// `Duration` given (or the one-hour default for schedules in hours).
    Hours(u8),
    /// The default for schedules in days: until the end of the UTC day.
    ToEndOfDay,
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    cron: Cron,
    /// UTC hours at which windows start, ascending.
    hours: Vec<u8>,
}

impl CronExpr {
    /// The expression as given, e.g. `cron(0 3 ? * SUN *)`.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// A validated rotation schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `AutomaticallyAfterDays`.
    AfterDays {
        /// Days between rotations, 1–1000.
        days: u16,
        /// Window length.
        window: WindowLength,
    },
    /// `rate(N hours|days)`.
    Rate {
        /// The interval.
        every: Duration,
        /// The unit it was written in.
        unit: RateUnit,
        /// Window length.
        window: WindowLength,
    },
    /// `cron(...)`.
    Cron {
        /// The expression.
        expr: Box<CronExpr>,
        /// Window length.
        window: WindowLength,
    },
}

/// A rotation window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant of the window.
    pub start: OffsetDateTime,
    /// First instant after the window.
    pub end: OffsetDateTime,
}

impl Window {
    /// A deterministic whole second in `[start, end)` derived from `seed`, so secrets
    /// sharing a schedule spread over the window. Returns `start` for an empty window.
    pub fn pick_start(&self, seed: u64) -> OffsetDateTime {
        let len = (self.end - self.start).whole_seconds();
        let Ok(len) = u64::try_from(len) else {
            return self.start;
        };
        if len == 0 {
            return self.start;
        }
        let offset = mix(seed) % len;
        add_secs(self.start, i128::from(offset))
    }
}

/// A deterministic point inside `window`; see [`Window::pick_start`].
pub fn pick_start(window: &Window, seed: u64) -> OffsetDateTime {
    window.pick_start(seed)
}

impl Schedule {
    fn window_length(&self) -> WindowLength {
        match self {
            Schedule::AfterDays { window, .. } | Schedule::Rate { window, .. } | Schedule::Cron { window, .. } => {
                *window
            }
        }
    }

    fn set_window(&mut self, w: WindowLength) {
        match self {
            Schedule::AfterDays { window, .. } | Schedule::Rate { window, .. } | Schedule::Cron { window, .. } => {
                *window = w
            }
        }
    }

    /// "The window must not extend into the next rotation window or the next UTC day."
    fn check_window(&self, hours: u8) -> Result<(), ScheduleError> {
        let h = i64::from(hours);
        let next_window = || {
            ScheduleError::invalid(format!(
                "The rotation window ({hours}h) must not extend into the next rotation window."
            ))
        };
        let next_day = || {
            ScheduleError::invalid(format!(
                "The rotation window ({hours}h) must not extend into the next UTC day."
            ))
        };
        match self {
            Schedule::AfterDays { .. } => Ok(()),
            Schedule::Rate { every, unit, .. } => match unit {
                RateUnit::Hours if h * HOUR_SECS > every.whole_seconds() => Err(next_window()),
                _ => Ok(()),
            },
            Schedule::Cron { expr, .. } => {
                for (i, start) in expr.hours.iter().enumerate() {
                    let end = i64::from(*start) + h;
                    if let Some(next) = expr.hours.get(i + 1)
                        && end > i64::from(*next)
                    {
                        return Err(next_window());
                    }
                    if end > 24 {
                        return Err(next_day());
                    }
                }
                Ok(())
            }
        }
    }

    /// The first rotation window that starts strictly after `after`.
    ///
    /// `AutomaticallyAfterDays` and `rate()` windows are anchored at `last_rotated`
    /// (or `created` if the secret was never rotated) and repeat every period; cron
    /// windows start at each cron time.
    pub fn next_window(
        &self,
        after: OffsetDateTime,
        last_rotated: Option<OffsetDateTime>,
        created: OffsetDateTime,
    ) -> Window {
        let base = last_rotated.unwrap_or(created);
        let start = match self {
            Schedule::AfterDays { days, .. } => {
                periodic(midnight(base), i128::from(*days) * i128::from(DAY_SECS), after)
            }
            Schedule::Rate { every, unit, .. } => {
                let anchor = match unit {
                    RateUnit::Hours => floor_hour(base),
                    RateUnit::Days => midnight(base),
                };
                periodic(anchor, i128::from(every.whole_seconds()), after)
            }
            Schedule::Cron { expr, .. } => match expr.cron.find_next_occurrence(&Utc(after), false) {
                Ok(t) => t.0,
                Err(_) => far_future(),
            },
        };
        Window {
            start,
            end: self.window_end(start),
        }
    }

    /// `NextRotationDate` as `DescribeSecret` reports it: the last second of the
    /// window [`next_window`](Self::next_window) returns ("rotation is scheduled to
    /// occur on or before this date").
    pub fn next_rotation_date(
        &self,
        after: OffsetDateTime,
        last_rotated: Option<OffsetDateTime>,
        created: OffsetDateTime,
    ) -> OffsetDateTime {
        let w = self.next_window(after, last_rotated, created);
        add_secs(w.end, -1).max(w.start)
    }

    /// A deterministic point inside `window`; see [`Window::pick_start`].
    pub fn pick_start(&self, window: &Window, seed: u64) -> OffsetDateTime {
        window.pick_start(seed)
    }

    fn window_end(&self, start: OffsetDateTime) -> OffsetDateTime {
        let day_end = add_secs(midnight(start), i128::from(DAY_SECS));
        match self.window_length() {
            WindowLength::ToEndOfDay => day_end,
            WindowLength::Hours(h) => add_secs(start, i128::from(h) * i128::from(HOUR_SECS)).min(day_end),
        }
        .max(start)
    }
}

/// `anchor + k * period` for the smallest `k >= 1` that is after `after`.
fn periodic(anchor: OffsetDateTime, period: i128, after: OffsetDateTime) -> OffsetDateTime {
    if period <= 0 {
        return far_future();
    }
    let elapsed = (after - anchor).whole_seconds();
    let k = if elapsed < 0 {
        1
    } else {
        i128::from(elapsed) / period + 1
    };
    add_secs(anchor, k.saturating_mul(period))
}

fn midnight(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC).date().midnight().assume_utc()
}

fn floor_hour(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.replace_time(Time::MIDNIGHT)
        .checked_add(Duration::hours(i64::from(utc.hour())))
        .unwrap_or(utc)
}

fn far_future() -> OffsetDateTime {
    Date::MAX.midnight().assume_utc()
}

fn add_secs(t: OffsetDateTime, secs: i128) -> OffsetDateTime {
    i64::try_from(secs)
        .ok()
        .and_then(|s| t.checked_add(Duration::seconds(s)))
        .unwrap_or_else(|| {
            if secs < 0 {
                Date::MIN.midnight().assume_utc()
            } else {
                far_future()
            }
        })
}

/// SplitMix64 finaliser: spreads consecutive seeds over the whole range.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
