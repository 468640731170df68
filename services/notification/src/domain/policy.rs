//! On which channels, and when: preferences, legal notices, quiet hours, retries.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use jinfu_ledger::beijing;

use super::{Category, Channel};

/// A party's contacts, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

/// The (category, channel) pairs a party switched explicitly.
pub type Switches = HashMap<(Category, Channel), bool>;

/// Each channel the message goes out on, with its destination. The inbox always; e-mail, SMS
/// and webhook where the party has that contact and has not switched the pair off — unless the
/// message is a legal notice, which no preference stops.
pub fn channels(recipient: &str, category: Category, legal: bool, contacts: &Contacts, switches: &Switches) -> Vec<(Channel, String)> {
    let wanted = |channel: Channel| legal || switches.get(&(category, channel)).copied().unwrap_or(true);
    let mut out = vec![(Channel::Inbox, recipient.to_owned())];
    let candidates = [(Channel::Email, &contacts.email), (Channel::Sms, &contacts.phone), (Channel::Webhook, &contacts.webhook_url)];
    for (channel, destination) in candidates {
        if let Some(destination) = destination {
            if wanted(channel) {
                out.push((channel, destination.clone()));
            }
        }
    }
    out
}

/// Quiet hours for SMS, in Beijing time: from `start` to `end` of the next morning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// 22:00 to 08:00 Beijing time.
    pub fn default_night() -> QuietHours {
        QuietHours { start: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(), end: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default() }
    }

    /// When the quiet window that contains `now` ends, or `None` outside quiet hours.
    pub fn ends_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = beijing::at(now);
        let time = local.time();
        let day = local.date_naive();
        let overnight = self.start > self.end;
        let quiet = if overnight { time >= self.start || time < self.end } else { time >= self.start && time < self.end };
        if !quiet {
            return None;
        }
        let end_day = if overnight && time >= self.start { day.succ_opt()? } else { day };
        Some(beijing::instant(end_day.and_time(self.end)))
    }
}

/// When a deadline ending with `due_on` (a Beijing date) is reminded of: 09:00 Beijing on the
/// working day before it (national calendar); a day before where the calendar has no data.
pub fn reminder_time(calendar: &jinfu_ledger::calendar::Calendar, due_on: chrono::NaiveDate) -> DateTime<Utc> {
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
    let mut day = due_on.pred_opt().unwrap_or(due_on);
    for _ in 0..14 {
        match calendar.is_working_day(day) {
            Ok(true) => return beijing::instant(day.and_time(nine)),
            Ok(false) => day = day.pred_opt().unwrap_or(day),
            Err(_) => break,
        }
    }
    beijing::instant(due_on.pred_opt().unwrap_or(due_on).and_time(nine))
}

/// When a delivery on `channel` may first be attempted: now, except an SMS in quiet hours,
/// which waits for their end — unless the message is about a deadline that falls before then.
pub fn first_attempt(channel: Channel, deadline: Option<DateTime<Utc>>, quiet: &QuietHours, now: DateTime<Utc>) -> DateTime<Utc> {
    if channel != Channel::Sms {
        return now;
    }
    match quiet.ends_after(now) {
        Some(end) if deadline.is_none_or(|deadline| deadline > end) => end,
        _ => now,
    }
}

/// The wait before attempt `attempts + 1` after a transient failure: 5 s doubling, capped at
/// `cap`.
pub fn backoff(attempts: i32, cap: Duration) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(5u64.saturating_mul(1u64 << exponent)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_switched_off_channel_is_skipped_unless_the_notice_is_legal() {
        let contacts = Contacts { email: Some("a@example.cn".into()), phone: Some("13800138000".into()), ..Contacts::default() };
        let switches = Switches::from([((Category::Refund, Channel::Sms), false)]);
        let plain: Vec<Channel> = channels("P", Category::Refund, false, &contacts, &switches).into_iter().map(|(channel, _)| channel).collect();
        assert_eq!(plain, [Channel::Inbox, Channel::Email]);
        let legal: Vec<Channel> = channels("P", Category::Refund, true, &contacts, &switches).into_iter().map(|(channel, _)| channel).collect();
        assert_eq!(legal, [Channel::Inbox, Channel::Email, Channel::Sms]);
    }

    #[test]
    fn an_sms_at_night_waits_for_morning_unless_its_deadline_comes_first() {
        let quiet = QuietHours::default_night();
        let night = at("2026-12-01T23:30:00+08:00");
        assert_eq!(first_attempt(Channel::Sms, None, &quiet, night), at("2026-12-02T08:00:00+08:00"));
        assert_eq!(first_attempt(Channel::Email, None, &quiet, night), night);
        assert_eq!(first_attempt(Channel::Sms, Some(at("2026-12-02T07:30:00+08:00")), &quiet, night), night);
        assert_eq!(first_attempt(Channel::Sms, Some(at("2026-12-02T09:30:00+08:00")), &quiet, night), at("2026-12-02T08:00:00+08:00"));
        let early = at("2026-12-02T06:00:00+08:00");
        assert_eq!(first_attempt(Channel::Sms, None, &quiet, early), at("2026-12-02T08:00:00+08:00"));
        let day = at("2026-12-02T16:00:00+08:00");
        assert_eq!(first_attempt(Channel::Sms, None, &quiet, day), day);
    }

    #[test]
    fn a_deadline_is_reminded_at_nine_on_the_working_day_before() {
        let calendar = jinfu_ledger::calendar::Calendar::china();
        let monday = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(reminder_time(&calendar, monday), at("2026-12-04T09:00:00+08:00"), "Friday before a Monday");
        let thursday = chrono::NaiveDate::from_ymd_opt(2026, 12, 10).unwrap();
        assert_eq!(reminder_time(&calendar, thursday), at("2026-12-09T09:00:00+08:00"));
    }

    #[test]
    fn retries_back_off_to_a_cap() {
        let cap = Duration::from_secs(600);
        assert_eq!(backoff(1, cap), Duration::from_secs(5));
        assert_eq!(backoff(3, cap), Duration::from_secs(20));
        assert_eq!(backoff(12, cap), cap);
    }
}
