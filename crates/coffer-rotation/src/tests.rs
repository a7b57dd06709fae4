#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

/// `AutomaticallyAfterDays`, `ScheduleExpression`, `Duration`.
type Rules = (Option<i64>, Option<&'static str>, Option<&'static str>);
/// Rules, the expected error kind, and a part of the expected message.
type Rejection = (
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
    ErrorKind,
    &'static str,
);

fn sched(days: Option<i64>, expr: Option<&str>, dur: Option<&str>) -> Schedule {
    match RotationRules::parse(days, expr, dur) {
        Ok(s) => s,
        Err(e) => panic!("{days:?} {expr:?} {dur:?}: {e}"),
    }
}

struct Case {
    days: Option<i64>,
    expr: Option<&'static str>,
    dur: Option<&'static str>,
    created: OffsetDateTime,
    last: Option<OffsetDateTime>,
    after: OffsetDateTime,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

#[test]
fn windows() {
    // 2026-01-01 is a Thursday, so 2026-01-04 and 2026-01-11 are Sundays.
    let created = datetime!(2026-01-05 10:17:42 UTC);
    let cases = [
        // rate in hours: on the hour, 4 h after the last rotation (here: creation), 1 h.
        Case {
            days: None,
            expr: Some("rate(4 hours)"),
            dur: None,
            created,
            last: None,
            after: created,
            start: datetime!(2026-01-05 14:00 UTC),
            end: datetime!(2026-01-05 15:00 UTC),
        },
        // Strictly after `after`: while inside a window, the next one follows.
        Case {
            days: None,
            expr: Some("rate(4 hours)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-01-05 14:30 UTC),
            start: datetime!(2026-01-05 18:00 UTC),
            end: datetime!(2026-01-05 19:00 UTC),
        },
        Case {
            days: None,
            expr: Some("rate(4 hours)"),
            dur: Some("4h"),
            created,
            last: Some(datetime!(2026-01-06 21:05 UTC)),
            after: datetime!(2026-01-06 21:05 UTC),
            // 01:00, not 21:00 + 4h carried over: starts on the hour after 4 h.
            start: datetime!(2026-01-07 01:00 UTC),
            end: datetime!(2026-01-07 05:00 UTC),
        },
        // A window of a rate in hours never crosses midnight.
        Case {
            days: None,
            expr: Some("rate(6 hours)"),
            dur: Some("3h"),
            created,
            last: Some(datetime!(2026-01-06 16:40 UTC)),
            after: datetime!(2026-01-06 16:40 UTC),
            start: datetime!(2026-01-06 22:00 UTC),
            end: datetime!(2026-01-07 0:00 UTC),
        },
        // rate in days: midnight, the whole UTC day.
        Case {
            days: None,
            expr: Some("rate(10 days)"),
            dur: None,
            created,
            last: None,
            after: created,
            start: datetime!(2026-01-15 0:00 UTC),
            end: datetime!(2026-01-16 0:00 UTC),
        },
        Case {
            days: None,
            expr: Some("rate(1 day)"),
            dur: Some("2h"),
            created,
            last: Some(datetime!(2026-03-31 23:59 UTC)),
            after: datetime!(2026-03-31 23:59 UTC),
            start: datetime!(2026-04-01 0:00 UTC),
            end: datetime!(2026-04-01 2:00 UTC),
        },
        // AutomaticallyAfterDays: the UTC day N days after the last rotation.
        Case {
            days: Some(30),
            expr: None,
            dur: None,
            created,
            last: None,
            after: created,
            start: datetime!(2026-02-04 0:00 UTC),
            end: datetime!(2026-02-05 0:00 UTC),
        },
        Case {
            days: Some(30),
            expr: None,
            dur: None,
            created,
            last: Some(datetime!(2026-03-01 12:00 UTC)),
            after: datetime!(2026-03-01 12:00 UTC),
            start: datetime!(2026-03-31 0:00 UTC),
            end: datetime!(2026-04-01 0:00 UTC),
        },
        // Overdue: the next window in the same 30-day cadence.
        Case {
            days: Some(30),
            expr: None,
            dur: Some("4h"),
            created,
            last: Some(datetime!(2026-03-01 12:00 UTC)),
            after: datetime!(2026-04-02 0:00 UTC),
            start: datetime!(2026-04-30 0:00 UTC),
            end: datetime!(2026-04-30 4:00 UTC),
        },
        // Sunday 03:00-05:00.
        Case {
            days: None,
            expr: Some("cron(0 3 ? * SUN *)"),
            dur: Some("2h"),
            created,
            last: None,
            after: created,
            start: datetime!(2026-01-11 3:00 UTC),
            end: datetime!(2026-01-11 5:00 UTC),
        },
        // Numeric day-of-week is 1-7 = SUN-SAT.
        Case {
            days: None,
            expr: Some("cron(0 3 ? * 1 *)"),
            dur: Some("2h"),
            created,
            last: None,
            after: datetime!(2026-01-04 3:00 UTC),
            start: datetime!(2026-01-11 3:00 UTC),
            end: datetime!(2026-01-11 5:00 UTC),
        },
        Case {
            days: None,
            expr: Some("cron(0 8 ? * MON-FRI *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-01-09 9:00 UTC), // Friday
            start: datetime!(2026-01-12 8:00 UTC), // Monday
            end: datetime!(2026-01-13 0:00 UTC),
        },
        // Last day of the month; daily schedule closes at the end of the day.
        Case {
            days: None,
            expr: Some("cron(0 0 L * ? *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-02-10 0:00 UTC),
            start: datetime!(2026-02-28 0:00 UTC),
            end: datetime!(2026-03-01 0:00 UTC),
        },
        // First Monday of the month (2#1); 2026-01-05 12:00 itself is excluded.
        Case {
            days: None,
            expr: Some("cron(0 12 ? * 2#1 *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-01-05 12:00 UTC),
            start: datetime!(2026-02-02 12:00 UTC),
            end: datetime!(2026-02-03 0:00 UTC),
        },
        // Nearest weekday to the 1st: 2026-08-01 is a Saturday, so Monday the 3rd.
        Case {
            days: None,
            expr: Some("cron(0 8 1W * ? *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-07-15 0:00 UTC),
            start: datetime!(2026-08-03 8:00 UTC),
            end: datetime!(2026-08-04 0:00 UTC),
        },
        // Several hours a day: 1 h default; hour increments reset each day.
        Case {
            days: None,
            expr: Some("cron(0 2/10 * * ? *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-01-05 22:30 UTC),
            start: datetime!(2026-01-06 2:00 UTC),
            end: datetime!(2026-01-06 3:00 UTC),
        },
        Case {
            days: None,
            expr: Some("cron(0 /8 * * ? *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-01-05 8:00 UTC),
            start: datetime!(2026-01-05 16:00 UTC),
            end: datetime!(2026-01-05 17:00 UTC),
        },
        Case {
            days: None,
            expr: Some("cron(0 1 ? 1/3 SUN#1 *)"),
            dur: None,
            created,
            last: None,
            after: datetime!(2026-01-05 0:00 UTC),
            // April 2026: the 1st is a Wednesday, first Sunday the 5th.
            start: datetime!(2026-04-05 1:00 UTC),
            end: datetime!(2026-04-06 0:00 UTC),
        },
        Case {
            days: None,
            expr: Some("cron(0 16 1,15 * ? *)"),
            dur: Some("8h"),
            created,
            last: None,
            after: created,
            start: datetime!(2026-01-15 16:00 UTC),
            end: datetime!(2026-01-16 0:00 UTC),
        },
    ];
    for c in cases.into_iter().chain(more_windows(created)) {
        let s = sched(c.days, c.expr, c.dur);
        let w = s.next_window(c.after, c.last, c.created);
        let label = format!("{:?} {:?} {:?} after {}", c.days, c.expr, c.dur, c.after);
        assert_eq!(w.start, c.start, "start of {label}");
        assert_eq!(w.end, c.end, "end of {label}");
        assert_eq!(
            s.next_rotation_date(c.after, c.last, c.created),
            c.end - Duration::seconds(1),
            "NextRotationDate of {label}"
        );
    }
}

#[test]
fn invalid_inputs() {
    use ErrorKind::{InvalidParameter as P, Validation as V};
    let cases: &[Rejection] = &[
        (
            Some(30),
            Some("rate(10 days)"),
            None,
            P,
            "You cannot specify both rotation frequency and schedule expression together.",
        ),
        (None, None, Some("2h"), P, "You must specify either"),
        (
            Some(0),
            None,
            None,
            V,
            "1 validation error detected: Value '0' at 'rotationRules.automaticallyAfterDays' \
             failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            Some(1001),
            None,
            None,
            V,
            "Member must have value less than or equal to 1000",
        ),
        (None, Some(""), None, V, "length greater than or equal to 1"),
        (
            None,
            Some("rate(10 days);"),
            None,
            V,
            "Member must satisfy regular expression pattern",
        ),
        (None, Some("every 10 days"), None, P, "rate() or cron()"),
        (None, Some("rate(3 hours)"), None, P, "every 4 hours"),
        (None, Some("rate(1000 days)"), None, P, "999 days"),
        (None, Some("rate(0 days)"), None, P, "Invalid rate expression"),
        (None, Some("rate(5 minutes)"), None, P, "Invalid rate expression"),
        (None, Some("rate(x days)"), None, P, "Invalid rate expression"),
        (None, Some("rate(-1 days)"), None, P, "Invalid rate expression"),
        (None, Some("rate(10)"), None, P, "Invalid rate expression"),
        (None, Some("cron(0 3 * * ?)"), None, P, "six fields"),
        (None, Some("cron(30 3 * * ? *)"), None, P, "Minutes field must be 0"),
        (None, Some("cron(0 3 * * ? 2026)"), None, P, "Year field must be *"),
        (None, Some("cron(0 3 * * MON *)"), None, P, "exactly one"),
        (None, Some("cron(0 3 ? * ? *)"), None, P, "exactly one"),
        (None, Some("cron(0 0/2 * * ? *)"), None, P, "every 4 hours"),
        (None, Some("cron(0 25 * * ? *)"), None, P, "Invalid cron expression"),
        (None, Some("cron(0 3 30 2 ? *)"), None, P, "never matches"),
        (
            None,
            Some("rate(10 days)"),
            Some("h"),
            V,
            "length greater than or equal to 2",
        ),
        (None, Some("rate(10 days)"), Some("99h"), P, "between 1h and 24h"),
        (
            None,
            Some("rate(10 days)"),
            Some("1000h"),
            V,
            "length less than or equal to 3",
        ),
        (None, Some("rate(10 days)"), Some("3d"), V, "[0-9]+h"),
        (None, Some("rate(10 days)"), Some("0h"), P, "between 1h and 24h"),
        (None, Some("rate(10 days)"), Some("25h"), P, "between 1h and 24h"),
        // Windows that would cross into the next window or the next UTC day.
        (
            None,
            Some("cron(0 23 * * ? *)"),
            Some("2h"),
            P,
            "must not extend into the next UTC day",
        ),
        (
            None,
            Some("cron(0 3 ? * SUN *)"),
            Some("22h"),
            P,
            "must not extend into the next UTC day",
        ),
        (
            None,
            Some("cron(0 4/12 * * ? *)"),
            Some("13h"),
            P,
            "must not extend into the next rotation window",
        ),
        (
            None,
            Some("rate(4 hours)"),
            Some("5h"),
            P,
            "must not extend into the next rotation window",
        ),
    ];
    for (days, expr, dur, kind, msg) in cases {
        let err = match RotationRules::parse(*days, *expr, *dur) {
            Ok(s) => panic!("{days:?} {expr:?} {dur:?} accepted as {s:?}"),
            Err(e) => e,
        };
        assert_eq!(err.kind, *kind, "{days:?} {expr:?} {dur:?}: {err}");
        assert!(
            err.message.contains(msg),
            "{days:?} {expr:?} {dur:?}: {:?} lacks {msg:?}",
            err.message
        );
    }
    assert_eq!(ErrorKind::Validation.aws_code(), "ValidationException");
    assert_eq!(ErrorKind::InvalidParameter.aws_code(), "InvalidParameterException");
}

#[test]
fn windows_that_fit_exactly_are_accepted() {
    for (expr, dur) in [
        ("cron(0 22 * * ? *)", "2h"),
        ("cron(0 0 ? * SUN *)", "24h"),
        ("cron(0 4/12 * * ? *)", "8h"),
        ("rate(4 hours)", "4h"),
        ("rate(1 day)", "24h"),
    ] {
        sched(None, Some(expr), Some(dur));
    }
    sched(Some(1), None, Some("24h"));
    sched(Some(1000), None, None);
}

#[test]
fn pick_start_is_deterministic_and_spreads() {
    let w = Window {
        start: datetime!(2026-01-11 3:00 UTC),
        end: datetime!(2026-01-11 5:00 UTC),
    };
    assert_eq!(w.pick_start(7), pick_start(&w, 7));
    let picks: std::collections::BTreeSet<_> = (0..64).map(|s| w.pick_start(s)).collect();
    assert!(picks.len() > 60, "only {} distinct starts", picks.len());
    let empty = Window {
        start: w.start,
        end: w.start,
    };
    assert_eq!(empty.pick_start(1), w.start);
}

const EXPRS: &[Rules] = &[
    (Some(1), None, None),
    (Some(30), None, Some("3h")),
    (Some(1000), None, None),
    (None, Some("rate(4 hours)"), None),
    (None, Some("rate(7 hours)"), Some("7h")),
    (None, Some("rate(10 days)"), None),
    (None, Some("rate(999 days)"), Some("1h")),
    (None, Some("cron(0 3 ? * SUN *)"), Some("2h")),
    (None, Some("cron(0 0 L * ? *)"), None),
    (None, Some("cron(0 12 ? * 2#1 *)"), None),
    (None, Some("cron(0 8 1W * ? *)"), None),
    (None, Some("cron(0 2/10 * * ? *)"), Some("2h")),
    (None, Some("cron(0 0 29 2 ? *)"), None),
];

proptest! {
    #[test]
    fn windows_start_after_and_picks_lie_inside(
        which in 0..EXPRS.len(),
        created in 946_684_800i64..4_102_444_800,
        rotated_after in proptest::option::of(0i64..400 * 86_400),
        after_delta in 0i64..3 * 365 * 86_400,
        seed in any::<u64>(),
    ) {
        let (days, expr, dur) = EXPRS[which];
        let s = sched(days, expr, dur);
        let created = OffsetDateTime::from_unix_timestamp(created).unwrap();
        let last = rotated_after.map(|d| created + Duration::seconds(d));
        let after = last.unwrap_or(created) + Duration::seconds(after_delta);
        let w = s.next_window(after, last, created);
        prop_assert!(w.start > after, "{w:?} not after {after}");
        prop_assert!(w.end > w.start);
        prop_assert!(w.end - w.start <= Duration::days(1));
        prop_assert!(w.start.minute() == 0 && w.start.second() == 0, "{w:?} not on the hour");
        // Never into the next UTC day.
        prop_assert!(w.end <= midnight(w.start) + Duration::days(1));
        let p = w.pick_start(seed);
        prop_assert!(w.start <= p && p < w.end, "{p} outside {w:?}");
        let nrd = s.next_rotation_date(after, last, created);
        prop_assert!(w.start <= nrd && nrd < w.end);
    }
}

/// Day-of-week forms from the "Rotation schedules" table, and a published
/// `DescribeSecret` transcript.
fn more_windows(created: OffsetDateTime) -> Vec<Case> {
    let daily = |expr: &'static str, after, start: OffsetDateTime| Case {
        days: None,
        expr: Some(expr),
        dur: None,
        created,
        last: None,
        after,
        start,
        end: midnight(start) + Duration::days(1),
    };
    vec![
        // Last Sunday of the month.
        daily(
            "cron(0 0 ? * SUNL *)",
            datetime!(2026-01-05 0:00 UTC),
            datetime!(2026-01-25 0:00 UTC),
        ),
        // Bare L in day-of-week: the last day of the week, Saturday.
        daily(
            "cron(0 0 ? * L *)",
            datetime!(2026-01-05 0:00 UTC),
            datetime!(2026-01-10 0:00 UTC),
        ),
        // 1/2: days 1, 3, 5, 7 = SUN, TUE, THU, SAT; 2026-01-05 is a Monday.
        daily(
            "cron(0 0 ? * 1/2 *)",
            datetime!(2026-01-05 0:00 UTC),
            datetime!(2026-01-06 0:00 UTC),
        ),
        daily(
            "cron(0 0 ? * 1/2 *)",
            datetime!(2026-01-10 0:00 UTC),
            datetime!(2026-01-11 0:00 UTC),
        ),
        // Last weekday of the month: 2026-01-31 is a Saturday.
        daily(
            "cron(0 0 LW * ? *)",
            datetime!(2026-01-05 0:00 UTC),
            datetime!(2026-01-30 0:00 UTC),
        ),
        // AWS answered NextRotationDate 2026-03-06T00:59:59+01:00 (= 2026-03-05T23:59:59Z)
        // for AutomaticallyAfterDays 30 after the value was last changed on 2026-02-03
        // (16:34Z, a PutSecretValue, which counts as a rotation): the whole UTC day
        // 30 days later, reported as its last second.
        Case {
            days: Some(30),
            expr: None,
            dur: None,
            created: datetime!(2026-02-01 16:35:48 UTC),
            last: Some(datetime!(2026-02-03 16:34:02 UTC)),
            after: datetime!(2026-02-03 16:42:24 UTC),
            start: datetime!(2026-03-05 0:00 UTC),
            end: datetime!(2026-03-06 0:00 UTC),
        },
    ]
}
