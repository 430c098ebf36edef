//! Simulated time: seconds since the start, plus the local time of day and day of year that
//! shifts and the weather follow.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

/// All three plants are in China (UTC+8, no daylight saving). The site file has no time zone
/// key; a plant elsewhere would need one.
pub(crate) const LOCAL_UTC_OFFSET_H: f64 = 8.0;

#[derive(Debug, Clone)]
pub(crate) struct Clock {
    start: DateTime<Utc>,
    /// Local hour of day at the start, 0..24.
    start_hour: f64,
    /// Local day of year at the start, 0..365 (fractional).
    start_day: f64,
    /// Simulated seconds since the start.
    pub(crate) now: f64,
}

impl Clock {
    pub(crate) fn new(start: DateTime<Utc>) -> Self {
        let local = start + Duration::seconds((LOCAL_UTC_OFFSET_H * 3600.0) as i64);
        let start_hour = f64::from(local.hour())
            + f64::from(local.minute()) / 60.0
            + f64::from(local.second()) / 3600.0;
        let start_day = f64::from(local.ordinal0()) + start_hour / 24.0;
        Clock {
            start,
            start_hour,
            start_day,
            now: 0.0,
        }
    }

    /// Local hour of day (0..24) at simulated time `t`.
    pub(crate) fn hour_at(&self, t: f64) -> f64 {
        (self.start_hour + t / 3600.0).rem_euclid(24.0)
    }

    pub(crate) fn hour(&self) -> f64 {
        self.hour_at(self.now)
    }

    /// Local day of year (0..365.25, fractional).
    pub(crate) fn day_of_year(&self) -> f64 {
        (self.start_day + self.now / 86_400.0).rem_euclid(365.25)
    }

    /// Wall-clock-like date of the simulated moment, for batch and lot numbers.
    pub(crate) fn datetime(&self) -> DateTime<Utc> {
        self.datetime_at(self.now)
    }

    pub(crate) fn datetime_at(&self, t: f64) -> DateTime<Utc> {
        self.start + Duration::milliseconds((t * 1000.0) as i64)
    }

    /// Local date as `yymmdd`, the way batch numbers carry it.
    pub(crate) fn local_yymmdd(&self) -> String {
        let local = self.datetime() + Duration::seconds((LOCAL_UTC_OFFSET_H * 3600.0) as i64);
        local.format("%y%m%d").to_string()
    }

    pub(crate) fn start(&self) -> DateTime<Utc> {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn local_time_is_eight_hours_ahead_of_utc() {
        let start = Utc.with_ymd_and_hms(2025, 1, 10, 22, 30, 0).unwrap();
        let mut c = Clock::new(start);
        assert!((c.hour() - 6.5).abs() < 1e-9);
        assert_eq!(c.local_yymmdd(), "250111");
        c.now = 18.0 * 3600.0;
        assert!((c.hour() - 0.5).abs() < 1e-9);
        assert!((c.day_of_year() - (10.0 + 6.5 / 24.0 + 0.75)).abs() < 1e-6);
    }
}
