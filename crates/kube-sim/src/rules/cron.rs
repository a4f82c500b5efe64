//! CronJob schedules: upstream's standard cron syntax (five fields — minute,
//! hour, day of month, month, day of week — with lists, ranges, steps, `*`,
//! `?`, month and weekday names) and the descriptors `@yearly`, `@annually`,
//! `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly` and `@every <d>`.
//! Times are UTC.

use jiff::civil::DateTime;
use jiff::{Timestamp, ToSpan};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Fields {
        minutes: u64,
        hours: u64,
        days: u64,
        months: u64,
        weekdays: u64,
        /// Day of month or of week was `*` (then the other alone decides).
        any_day: bool,
        any_weekday: bool,
    },
    /// `@every <duration>`: fixed intervals.
    Every(std::time::Duration),
}

const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse().map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"))
}

/// One field as a bit set of allowed values in `min..=max`.
fn field(spec: &str, min: u32, max: u32, names: &[&str], offset: u32) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("failed to parse int from {s}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let (lo, hi) = match range {
            "*" | "?" => {
                star = step == 1 && spec.split(',').count() == 1;
                (min, max)
            }
            r => match r.split_once('-') {
                Some((a, b)) => (value(a, names, offset)?, value(b, names, offset)?),
                None => {
                    let v = value(r, names, offset)?;
                    (v, if part.contains('/') { max } else { v })
                }
            },
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with("@every ") => {
                let d = crate::protobuf::codec::parse_go_duration(s.trim_start_matches("@every ").trim())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("failed to parse duration {s}"))?;
                return Ok(Schedule::Every(std::time::Duration::from_nanos(d as u64)));
            }
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!("expected exactly 5 fields, found {}: [{}]", f.len(), f.join(" ")));
        }
        let (minutes, _) = field(f[0], 0, 59, &[], 0)?;
        let (hours, _) = field(f[1], 0, 23, &[], 0)?;
        let (days, any_day) = field(f[2], 1, 31, &[], 0)?;
        let (months, _) = field(f[3], 1, 12, MONTHS, 1)?;
        let (mut weekdays, any_weekday) = field(f[4], 0, 7, WEEKDAYS, 0)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Schedule::Fields { minutes, hours, days, months, weekdays, any_day, any_weekday })
    }

    /// The first activation strictly after `t`, or None within five years.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let (minutes, hours, days, months, weekdays, any_day, any_weekday) = match self {
            Schedule::Every(d) => {
                let step = i64::try_from(d.as_secs()).ok()?.max(1);
                let secs = t.as_second();
                return Timestamp::from_second(secs - secs.rem_euclid(step) + step).ok();
            }
            Schedule::Fields { minutes, hours, days, months, weekdays, any_day, any_weekday } => {
                (*minutes, *hours, *days, *months, *weekdays, *any_day, *any_weekday)
            }
        };
        let utc = jiff::tz::TimeZone::UTC;
        let start = t.to_zoned(utc.clone()).datetime();
        let mut dt = DateTime::new(start.year(), start.month(), start.day(), start.hour(), start.minute(), 0, 0)
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = dt.checked_add(5.years()).ok()?;
        let day_ok = |dt: &DateTime| {
            let dom = days & (1 << dt.day()) != 0;
            let dow = weekdays & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
            if any_day || any_weekday { dom && dow } else { dom || dow }
        };
        while dt < limit {
            if months & (1 << dt.month()) == 0 {
                dt = DateTime::new(dt.year(), dt.month(), 1, 0, 0, 0, 0).ok()?.checked_add(1.month()).ok()?;
                continue;
            }
            if !day_ok(&dt) {
                dt = DateTime::new(dt.year(), dt.month(), dt.day(), 0, 0, 0, 0).ok()?.checked_add(1.day()).ok()?;
                continue;
            }
            if hours & (1 << dt.hour()) == 0 {
                dt = DateTime::new(dt.year(), dt.month(), dt.day(), dt.hour(), 0, 0, 0)
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            return dt.to_zoned(utc).ok().map(|z| z.timestamp());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec).unwrap().next_after(ts(after)).unwrap().to_string()
    }

    #[test]
    fn next_activations() {
        assert_eq!(next("*/5 * * * *", "2026-12-02T17:16:53Z"), "2026-12-02T17:20:00Z");
        assert_eq!(next("* * * * *", "2026-12-02T17:16:00Z"), "2026-12-02T17:17:00Z");
        assert_eq!(next("0 3 * * *", "2026-12-02T17:16:53Z"), "2026-12-03T03:00:00Z");
        assert_eq!(next("@monthly", "2026-12-02T17:16:53Z"), "2027-01-01T00:00:00Z");
        assert_eq!(next("30 8 * * mon-fri", "2026-12-04T09:00:00Z"), "2026-12-07T08:30:00Z"); // Fri → Mon
        assert_eq!(next("0 0 29 feb *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
        // Both day fields restricted: either matches (Dec 5 2026 is a Saturday).
        assert_eq!(next("0 0 5 * 1", "2026-12-01T00:00:00Z"), "2026-12-05T00:00:00Z");
        assert_eq!(next("@every 90s", "2026-12-02T17:16:53Z"), "2026-12-02T17:18:00Z");
    }

    #[test]
    fn bad_schedules_are_rejected() {
        for bad in
            ["", "* * * *", "61 * * * *", "* * * * * *", "@often", "TZ=UTC * * * * *", "*/0 * * * *", "a * * * *"]
        {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Schedule::parse("0 0 30 2 *").unwrap().next_after(ts("2026-01-01T00:00:00Z")), None);
    }
}
