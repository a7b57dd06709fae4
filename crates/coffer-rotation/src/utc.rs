//! Connects `time::OffsetDateTime` (always UTC here) to croner's search, so the
//! crate does not pull in a second date library.

use core::cmp::Ordering;

use croner::errors::CronError;
use croner::{CivilDate, CivilDateTime, CivilTime, CronDateTime, Resolution, Weekday};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// An instant on the UTC clock, as croner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utc(pub(crate) OffsetDateTime);

impl CronDateTime for Utc {
    fn to_civil(&self) -> CivilDateTime {
        let t = self.0;
        CivilDateTime::new(
            CivilDate::from_parts_unchecked(t.year(), u32::from(u8::from(t.month())), u32::from(t.day())),
            CivilTime::from_parts_unchecked(u32::from(t.hour()), u32::from(t.minute()), u32::from(t.second())),
        )
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(u32::from(self.0.weekday().number_days_from_sunday()))
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let month = u8::try_from(civil.month())
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or(CronError::InvalidDate)?;
        let day = u8::try_from(civil.day()).map_err(|_| CronError::InvalidDate)?;
        let date = Date::from_calendar_date(civil.year(), month, day).map_err(|_| CronError::InvalidDate)?;
        let hms = |v: u32| u8::try_from(v).map_err(|_| CronError::InvalidTime);
        let time = Time::from_hms(hms(civil.hour())?, hms(civil.minute())?, hms(civil.second())?)
            .map_err(|_| CronError::InvalidTime)?;
        Ok(Resolution::Single(Utc(PrimitiveDateTime::new(date, time).assume_utc())))
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0.checked_add(time::Duration::seconds(seconds)).map(Utc)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}
