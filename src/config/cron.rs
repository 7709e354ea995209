//! `backup.schedule`: the schedule syntax a Kubernetes CronJob accepts. The CronJob controller
//! parses `spec.schedule` with robfig/cron v3's `ParseStandard` (kubernetes/kubernetes,
//! `pkg/controller/cronjob/utils.go`; robfig/cron `parser.go`): five fields — minute 0-59,
//! hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT (7 is not
//! accepted) — each a comma-separated list of `*`, `?` (day fields), `N`, `N-M`, with an
//! optional `/STEP`; or one of the descriptors `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly`. A time zone goes in the CronJob's `timeZone`, not here.

const DESCRIPTORS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    question: bool,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        question: false,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        question: false,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        question: true,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        question: false,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 6,
        names: &DAYS,
        question: true,
    },
];

impl Field {
    fn value(&self, s: &str) -> Result<u32, String> {
        let v = match self.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => i as u32 + self.min,
            None => s
                .parse::<u32>()
                .map_err(|_| format!("`{s}` is not a number"))?,
        };
        if !(self.min..=self.max).contains(&v) {
            return Err(format!("{v} is outside {}-{}", self.min, self.max));
        }
        Ok(v)
    }

    fn check(&self, field: &str) -> Result<(), String> {
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(step) = step
                && !step.parse::<u32>().is_ok_and(|n| n > 0)
            {
                return Err(format!("step `{step}` is not a positive number"));
            }
            match range {
                "*" => {}
                "?" if self.question => {}
                _ => {
                    let (lo, hi) = match range.split_once('-') {
                        Some((lo, hi)) => (self.value(lo)?, self.value(hi)?),
                        None => {
                            let v = self.value(range)?;
                            (v, v)
                        }
                    };
                    if lo > hi {
                        return Err(format!("range `{range}` runs backwards"));
                    }
                }
            }
        }
        Ok(())
    }
}

pub fn cron_schedule(value: &str) -> Result<String, String> {
    let v = value.trim();
    if DESCRIPTORS.contains(&v) {
        return Ok(v.to_string());
    }
    let fields: Vec<&str> = v.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "`{value}` has {} field(s); a schedule has five: minute hour day-of-month month day-of-week (e.g. `0 3 * * *`, every day at 03:00), or @daily, @hourly…",
            fields.len()
        ));
    }
    for (f, text) in FIELDS.iter().zip(&fields) {
        f.check(text)
            .map_err(|e| format!("`{value}`: the {} field `{text}`: {e}", f.name))?;
    }
    Ok(fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_kubernetes_accepts() {
        for s in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 0-6/2 1,15 JAN-jun ?",
            "30 2 * * sun",
            "5 4 * * 0-6",
            "@daily",
        ] {
            assert!(cron_schedule(s).is_ok(), "{s}: {:?}", cron_schedule(s));
        }
    }

    #[test]
    fn schedules_it_refuses() {
        for (s, says) in [
            ("0 3 * *", "has 4 field(s)"),
            ("0 3 * * * *", "has 6 field(s)"),
            ("60 3 * * *", "minute field `60`: 60 is outside 0-59"),
            ("0 24 * * *", "hour field"),
            ("0 3 0 * *", "day of month field"),
            ("0 3 * 13 *", "month field"),
            ("0 3 * * 7", "day of week field"),
            ("0 3 * * mon-sun", "runs backwards"),
            ("*/0 * * * *", "step `0`"),
            ("? * * * *", "minute field"),
            ("0 3 * * x", "`x` is not a number"),
            ("@reboot", "has 1 field(s)"),
            ("", "has 0 field(s)"),
        ] {
            let err = cron_schedule(s).expect_err(s);
            assert!(err.contains(says), "{s}: {err}");
        }
    }
}
