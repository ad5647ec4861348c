//! Send-time policy for invoice reminders: when each stage's reminder goes out, and which single
//! stage an invoice should get at a given instant. Each stage is sent at 09:00 in the account's
//! time zone on its nominal day (the due date plus the stage's offset), moved to the following
//! Monday when that day is a Saturday or Sunday. An invoice that becomes eligible late gets only
//! its latest due stage, never the older ones it missed. The functions here are pure. Recording
//! reminders, enforcing one reminder per (invoice, stage) and enqueueing jobs belong to the
//! scheduler and the database. The [`Clock`] trait lets the scheduler and tests inject the time.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

use super::Stage;

/// Local wall-clock time at which every reminder is sent.
const SEND_TIME_LOCAL: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(time) => time,
    None => panic!("09:00:00 is a valid time of day"),
};

/// Returns the instant at which `stage`'s reminder is sent for an invoice due on `due_on`, for an
/// account in time zone `tz`.
///
/// The send time is 09:00 local time on `due_on + stage.days_from_due()`, or on the following
/// Monday when that day is a Saturday or Sunday. If 09:00 occurs twice on that day (clocks turned
/// back), the earlier instant is used. If 09:00 is skipped (clocks turned forward), the first
/// instant after the gap is used.
///
/// # Panics
///
/// Panics if the send day falls outside chrono's date range (about year ±262,000).
pub fn send_time(stage: Stage, due_on: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let day = send_day(stage, due_on);
    local_to_utc(tz, day.and_time(SEND_TIME_LOCAL))
}

/// Returns the latest stage whose send time is at or before `now`, with that send time, or `None`
/// if not even the earliest stage is due yet.
///
/// Once the final stage is due it stays the result, however much later `now` is.
pub fn latest_due_stage(
    due_on: NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<(Stage, DateTime<Utc>)> {
    Stage::ALL
        .into_iter()
        .rev()
        .map(|stage| (stage, send_time(stage, due_on, tz)))
        .find(|&(_, sent_at)| sent_at <= now)
}

/// Selects the one stage to send now for an invoice, with its scheduled send time.
///
/// The result is the invoice's latest due stage (see [`latest_due_stage`]), unless
/// `already_recorded` contains that stage or any later one, in which case it is `None`. Stages
/// older than the latest due one are never returned, even if they were never recorded: an invoice
/// that becomes eligible late gets one reminder for its current stage, not a burst of the ones it
/// missed. A recorded later stage also blocks earlier ones, so moving an invoice's due date later
/// never sends a stage that comes before one the client has already received.
///
/// `already_recorded` lists every stage that has a reminder row for the invoice, whatever its
/// status (a skipped or failed reminder still counts as recorded).
pub fn stage_to_send(
    due_on: NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
    already_recorded: &[Stage],
) -> Option<(Stage, DateTime<Utc>)> {
    let (stage, sent_at) = latest_due_stage(due_on, tz, now)?;

    let recorded_same_or_later = already_recorded.iter().any(|&recorded| recorded >= stage);
    if recorded_same_or_later {
        return None;
    }

    Some((stage, sent_at))
}

/// Returns the local calendar day on which `stage` is sent: its nominal day, moved to the
/// following Monday when that falls on a weekend.
fn send_day(stage: Stage, due_on: NaiveDate) -> NaiveDate {
    let nominal = due_on
        .checked_add_signed(TimeDelta::days(stage.days_from_due()))
        .expect("the stage's nominal day is within chrono's date range");

    let days_to_monday = match nominal.weekday() {
        Weekday::Sat => 2,
        Weekday::Sun => 1,
        _ => 0,
    };
    nominal
        .checked_add_days(Days::new(days_to_monday))
        .expect("the Monday after the nominal day is within chrono's date range")
}

/// Converts a wall-clock time in `tz` to UTC. An ambiguous time maps to its earlier instant, and a
/// time inside a gap maps to the first instant after the gap.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(instant) => instant.to_utc(),
        MappedLocalTime::Ambiguous(first, second) => first.min(second).to_utc(),
        MappedLocalTime::None => first_instant_after_gap(tz, local),
    }
}

/// Finds the first instant whose wall-clock time in `tz` is at or after `local`, for a `local`
/// that `tz` skips.
///
/// Binary search over whole seconds, because tz database transitions fall on whole seconds and
/// chrono-tz offers no lookup of the transition itself. Every UTC offset in the tz database that
/// chrono-tz 0.10.4 bundles is under 16 hours (the largest is Asia/Manila's -15:56:08), so the
/// wall-clock time a day before `local` read as UTC is earlier than `local`, and a day after it
/// is later.
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const WINDOW_SECONDS: i64 = 24 * 60 * 60;

    let local_as_utc = local.and_utc().timestamp();
    let mut before = local_as_utc - WINDOW_SECONDS;
    let mut at_or_after = local_as_utc + WINDOW_SECONDS;

    // Invariant: the wall-clock time at `before` is earlier than `local`, and at `at_or_after` it
    // is not.
    while at_or_after - before > 1 {
        let middle = before + (at_or_after - before) / 2;
        let middle_local = DateTime::from_timestamp(middle, 0)
            .expect("the search window is within chrono's date range")
            .with_timezone(&tz)
            .naive_local();
        if middle_local >= local {
            at_or_after = middle;
        } else {
            before = middle;
        }
    }

    DateTime::from_timestamp(at_or_after, 0)
        .expect("the instant after the gap is within chrono's date range")
}

/// A source of the current time, injected so that time-dependent rules can be tested.
pub trait Clock: Send + Sync {
    /// Returns the current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// Lets a scheduler and a test share one clock, for example an `Arc<FixedClock>` that the test
/// advances.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays at a set instant until it is set or advanced, for tests.
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    /// Creates a clock that reads `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    /// Moves the clock by `delta`, which may be negative.
    ///
    /// # Panics
    ///
    /// Panics if the result is outside chrono's date range.
    pub fn advance(&self, delta: TimeDelta) {
        let mut now = self.lock();
        *now = now
            .checked_add_signed(delta)
            .expect("advancing the FixedClock overflowed chrono's date range");
    }

    /// Locks the stored instant. A poisoned lock is still used because a `DateTime` is written in
    /// one assignment and cannot be left half-updated by a panicking thread.
    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::{America, Asia, Australia, Europe, Pacific};

    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn local(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    /// A Monday in Berlin summer time (UTC+2) whose stages all fall on weekdays without crossing
    /// a DST change: Friday, Monday, Thursday, Monday, Monday, Wednesday.
    const WEEKDAY_DUE_ON: &str = "2024-06-03";

    const WEEKDAY_SEND_TIMES: [(Stage, &str); 6] = [
        (Stage::Upcoming, "2024-05-31T07:00:00Z"),
        (Stage::Due, "2024-06-03T07:00:00Z"),
        (Stage::Overdue3, "2024-06-06T07:00:00Z"),
        (Stage::Overdue7, "2024-06-10T07:00:00Z"),
        (Stage::Overdue14, "2024-06-17T07:00:00Z"),
        (Stage::Final, "2024-07-03T07:00:00Z"),
    ];

    #[test]
    fn send_time_per_stage() {
        for (stage, expected) in WEEKDAY_SEND_TIMES {
            assert_eq!(
                send_time(stage, date(WEEKDAY_DUE_ON), Europe::Berlin),
                utc(expected),
                "stage {stage}"
            );
        }
    }

    #[test]
    fn stage_boundaries_at_nine_local() {
        let due_on = date(WEEKDAY_DUE_ON);
        let mut previous: Option<Stage> = None;

        for (stage, expected) in WEEKDAY_SEND_TIMES {
            let at_nine = utc(expected);
            let minute_before = at_nine - TimeDelta::minutes(1);

            assert_eq!(
                latest_due_stage(due_on, Europe::Berlin, minute_before).map(|(s, _)| s),
                previous,
                "a minute before {stage}"
            );
            assert_eq!(
                latest_due_stage(due_on, Europe::Berlin, at_nine),
                Some((stage, at_nine)),
                "at 09:00 for {stage}"
            );

            previous = Some(stage);
        }
    }

    #[test]
    fn nine_local_in_three_zones() {
        // Every date is a Monday, so none moves. 2024-03-11 and 2024-04-01 are the first Mondays
        // of summer time in New York and Berlin.
        let cases = [
            (America::New_York, "2024-01-15", "2024-01-15T14:00:00Z"),
            (America::New_York, "2024-03-11", "2024-03-11T13:00:00Z"),
            (America::New_York, "2024-07-15", "2024-07-15T13:00:00Z"),
            (Europe::Berlin, "2024-01-15", "2024-01-15T08:00:00Z"),
            (Europe::Berlin, "2024-04-01", "2024-04-01T07:00:00Z"),
            (Europe::Berlin, "2024-07-15", "2024-07-15T07:00:00Z"),
            (Asia::Tokyo, "2024-01-15", "2024-01-15T00:00:00Z"),
            (Asia::Tokyo, "2024-07-15", "2024-07-15T00:00:00Z"),
        ];

        for (tz, due_on, expected) in cases {
            assert_eq!(
                send_time(Stage::Due, date(due_on), tz),
                utc(expected),
                "{tz} on {due_on}"
            );
        }
    }

    #[test]
    fn stages_across_dst_change() {
        // Due on Monday 2024-03-04 in New York (EST, UTC-5). Overdue_7 falls on the first
        // weekday after clocks go forward on Sunday 2024-03-10 (EDT, UTC-4).
        let due_on = date("2024-03-04");

        assert_eq!(
            send_time(Stage::Due, due_on, America::New_York),
            utc("2024-03-04T14:00:00Z")
        );
        assert_eq!(
            send_time(Stage::Overdue7, due_on, America::New_York),
            utc("2024-03-11T13:00:00Z")
        );
    }

    #[test]
    fn weekend_moves_to_monday() {
        let cases = [
            // Due on Saturday.
            (Stage::Due, "2024-06-08", "2024-06-10T07:00:00Z"),
            // Due on Sunday.
            (Stage::Due, "2024-06-09", "2024-06-10T07:00:00Z"),
            // Due on Wednesday, so overdue_3 falls on Saturday.
            (Stage::Overdue3, "2024-06-05", "2024-06-10T07:00:00Z"),
            // Due on Wednesday, so upcoming falls on Sunday.
            (Stage::Upcoming, "2024-06-12", "2024-06-10T07:00:00Z"),
        ];

        for (stage, due_on, expected) in cases {
            assert_eq!(
                send_time(stage, date(due_on), Europe::Berlin),
                utc(expected),
                "{stage} for due date {due_on}"
            );
        }
    }

    #[test]
    fn weekend_stage_not_due_on_saturday() {
        // Due on Saturday 2024-06-08: at 09:00 that Saturday only upcoming is due.
        let due_on = date("2024-06-08");
        let saturday_nine = utc("2024-06-08T07:00:00Z");

        assert_eq!(
            latest_due_stage(due_on, Europe::Berlin, saturday_nine).map(|(s, _)| s),
            Some(Stage::Upcoming)
        );
    }

    #[test]
    fn upcoming_on_dst_sunday_moves() {
        // Due on Wednesday 2024-03-13, so upcoming falls on Sunday 2024-03-10, the day New York
        // moves to summer time. It is sent on Monday at 09:00 EDT.
        assert_eq!(
            send_time(Stage::Upcoming, date("2024-03-13"), America::New_York),
            utc("2024-03-11T13:00:00Z")
        );
    }

    #[test]
    fn late_invoice_gets_only_overdue_14() {
        let due_on = date(WEEKDAY_DUE_ON);
        let twenty_days_later = utc("2024-06-23T12:00:00Z");
        let overdue_14_at = utc("2024-06-17T07:00:00Z");

        assert_eq!(
            stage_to_send(due_on, Europe::Berlin, twenty_days_later, &[]),
            Some((Stage::Overdue14, overdue_14_at))
        );
        assert_eq!(
            stage_to_send(
                due_on,
                Europe::Berlin,
                twenty_days_later,
                &[Stage::Overdue14]
            ),
            None,
            "the missed stages are not sent after overdue_14 is recorded"
        );
    }

    #[test]
    fn already_recorded_rules() {
        let due_on = date(WEEKDAY_DUE_ON);
        // After overdue_7 (2024-06-10) and before overdue_14 (2024-06-17).
        let now = utc("2024-06-12T12:00:00Z");
        let overdue_7 = Some((Stage::Overdue7, utc("2024-06-10T07:00:00Z")));

        let cases: [(&[Stage], _); 7] = [
            (&[], overdue_7),
            (&[Stage::Upcoming], overdue_7),
            (&[Stage::Upcoming, Stage::Due, Stage::Overdue3], overdue_7),
            (&[Stage::Overdue7], None),
            (&[Stage::Due, Stage::Overdue7], None),
            (&[Stage::Overdue14], None),
            (&[Stage::Final], None),
        ];

        for (recorded, expected) in cases {
            assert_eq!(
                stage_to_send(due_on, Europe::Berlin, now, recorded),
                expected,
                "recorded {recorded:?}"
            );
        }
    }

    #[test]
    fn nothing_due_before_upcoming() {
        let due_on = date(WEEKDAY_DUE_ON);
        let long_before = utc("2024-05-01T07:00:00Z");

        assert_eq!(latest_due_stage(due_on, Europe::Berlin, long_before), None);
        assert_eq!(
            stage_to_send(due_on, Europe::Berlin, long_before, &[]),
            None
        );
    }

    #[test]
    fn final_after_thirty_days() {
        let due_on = date(WEEKDAY_DUE_ON);
        let final_at = utc("2024-07-03T07:00:00Z");

        assert_eq!(
            stage_to_send(due_on, Europe::Berlin, final_at - TimeDelta::days(1), &[])
                .map(|(s, _)| s),
            Some(Stage::Overdue14)
        );
        assert_eq!(
            stage_to_send(due_on, Europe::Berlin, final_at, &[Stage::Overdue14]),
            Some((Stage::Final, final_at))
        );
        assert_eq!(
            stage_to_send(due_on, Europe::Berlin, utc("2025-06-03T07:00:00Z"), &[]),
            Some((Stage::Final, final_at)),
            "a year later final is still the latest stage"
        );
        assert_eq!(
            stage_to_send(
                due_on,
                Europe::Berlin,
                utc("2025-06-03T07:00:00Z"),
                &[Stage::Final]
            ),
            None
        );
    }

    #[test]
    fn ambiguous_local_time_takes_earliest() {
        // New York repeats 01:00-02:00 on 2024-11-03. The first 01:30 is EDT (UTC-4).
        assert_eq!(
            local_to_utc(America::New_York, local("2024-11-03T01:30:00")),
            utc("2024-11-03T05:30:00Z")
        );
    }

    #[test]
    fn skipped_local_time_takes_gap_end() {
        let cases = [
            // New York skips 02:00-03:00 on 2024-03-10, and 03:00 EDT is 07:00 UTC.
            (
                America::New_York,
                "2024-03-10T02:30:00",
                "2024-03-10T07:00:00Z",
            ),
            // Lord Howe Island skips 02:00-02:30 on 2024-10-06, and 02:30 at UTC+11 is 15:30 UTC.
            (
                Australia::Lord_Howe,
                "2024-10-06T02:15:00",
                "2024-10-05T15:30:00Z",
            ),
            // Samoa skipped all of 2011-12-30 when it moved from UTC-10 to UTC+14.
            (Pacific::Apia, "2011-12-30T09:00:00", "2011-12-30T10:00:00Z"),
        ];

        for (tz, skipped, expected) in cases {
            assert_eq!(
                local_to_utc(tz, local(skipped)),
                utc(expected),
                "{tz} at {skipped}"
            );
        }
    }

    #[test]
    fn send_time_on_skipped_day() {
        // Friday 2011-12-30 does not exist in Samoa, so the reminder goes out at the first instant
        // after the gap, midnight on 2011-12-31 local time.
        assert_eq!(
            send_time(Stage::Due, date("2011-12-30"), Pacific::Apia),
            utc("2011-12-30T10:00:00Z")
        );
    }

    #[test]
    fn fixed_clock_set_and_advance() {
        let clock = FixedClock::new(utc("2024-06-03T07:00:00Z"));
        assert_eq!(clock.now(), utc("2024-06-03T07:00:00Z"));

        clock.advance(TimeDelta::minutes(90));
        assert_eq!(clock.now(), utc("2024-06-03T08:30:00Z"));

        clock.advance(TimeDelta::days(-1));
        assert_eq!(clock.now(), utc("2024-06-02T08:30:00Z"));

        clock.set(utc("2025-01-01T00:00:00Z"));
        assert_eq!(clock.now(), utc("2025-01-01T00:00:00Z"));
    }

    #[test]
    fn shared_fixed_clock_sees_advance() {
        let clock = Arc::new(FixedClock::new(utc("2024-06-03T07:00:00Z")));
        let shared: Arc<dyn Clock> = clock.clone();

        clock.advance(TimeDelta::hours(1));
        assert_eq!(shared.now(), utc("2024-06-03T08:00:00Z"));
        assert_eq!(Clock::now(&clock), utc("2024-06-03T08:00:00Z"));
    }

    #[test]
    fn system_clock_reads_current_time() {
        let before = Utc::now();
        let now = SystemClock.now();
        let after = Utc::now();

        assert!(before <= now, "{before} <= {now}");
        assert!(now <= after, "{now} <= {after}");
    }
}
