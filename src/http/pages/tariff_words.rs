//! A tariff document in plain words, for drivers: one line per rule (in the order that
//! decides which applies), then the grace period, the daily cap and the longest stay.
//! Pure: no I/O; amounts come from [`Money`]'s exact display, never from floats.

use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::tariff::{CapPeriod, Price, Rule, Tariff};

use super::i18n::Lang;

/// The symbol a driver expects in front of an amount; the ISO code for the rest.
pub fn symbol(currency: Currency) -> String {
    match currency.code() {
        "CNY" | "JPY" => "¥".into(),
        "USD" => "$".into(),
        "EUR" => "€".into(),
        "GBP" => "£".into(),
        "KRW" => "₩".into(),
        "INR" => "₹".into(),
        "HKD" => "HK$".into(),
        "TWD" => "NT$".into(),
        "SGD" => "S$".into(),
        "AUD" => "A$".into(),
        "CAD" => "C$".into(),
        code => format!("{code} "),
    }
}

/// An amount with its currency symbol: `¥2.50`.
pub fn money(amount: &Money) -> String {
    format!("{}{amount}", symbol(amount.currency()))
}

/// A length of time: `15 min`, `2 h`, `1 h 30 min` (`15 分钟`, `2 小时`, ...).
pub fn duration(minutes: u32, lang: Lang) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    let (hs, ms) = match lang {
        Lang::En => ("h", "min"),
        Lang::Zh => ("小时", "分钟"),
    };
    match (h, m) {
        (0, m) => format!("{m} {ms}"),
        (h, 0) => format!("{h} {hs}"),
        (h, m) => format!("{h} {hs} {m} {ms}"),
    }
}

/// The tariff as plain-words lines.
pub fn describe(tariff: &Tariff, lang: Lang) -> Vec<String> {
    let mut lines: Vec<String> = tariff.rules().iter().map(|r| rule(r, lang)).collect();
    if tariff.grace_minutes() > 0 {
        let grace = duration(tariff.grace_minutes(), lang);
        lines.push(match lang {
            Lang::En => format!(
                "The first {grace} are free: leave within {grace} and you pay nothing \
                 (a longer stay is charged from the start)."
            ),
            Lang::Zh => format!("前 {grace}免费：{grace}内离开不收费（超过则从开始计费）。"),
        });
    }
    if let Some(cap) = tariff.daily_cap() {
        let amount = money(&cap.amount);
        lines.push(match (lang, cap.period) {
            (Lang::En, CapPeriod::CalendarDay) => format!("At most {amount} a day."),
            (Lang::En, CapPeriod::Rolling24h) => format!("At most {amount} per 24 h."),
            (Lang::Zh, CapPeriod::CalendarDay) => format!("每天最多 {amount}。"),
            (Lang::Zh, CapPeriod::Rolling24h) => format!("每 24 小时最多 {amount}。"),
        });
    }
    if let Some(max) = tariff.max_stay_minutes() {
        let max = duration(max, lang);
        lines.push(match lang {
            Lang::En => format!("You may stay at most {max}."),
            Lang::Zh => format!("最长可停 {max}。"),
        });
    }
    lines
}

/// One rule: `when: price[, at most cap]`.
fn rule(rule: &Rule, lang: Lang) -> String {
    let mut out = format!("{}: {}", when(rule, lang), price(rule.price(), lang));
    if let Some(cap) = rule.cap() {
        match lang {
            Lang::En => out.push_str(&format!(", at most {}", money(&cap))),
            Lang::Zh => out.push_str(&format!("，最多 {}", money(&cap))),
        }
    }
    out
}

const DAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

/// When a rule applies: its days or dates, and its window of the day.
fn when(rule: &Rule, lang: Lang) -> String {
    let mut parts = Vec::new();
    if let Some(dates) = rule.dates() {
        let list: Vec<String> = dates
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        parts.push(match lang {
            Lang::En => format!("On {}", list.join(", ")),
            Lang::Zh => list.join("、"),
        });
    }
    if let Some(days) = rule.days() {
        let set: Vec<bool> = (0u8..7)
            .map(|i| chrono::Weekday::try_from(i).is_ok_and(|d| days.contains(d)))
            .collect();
        if set.iter().any(|d| !d) {
            parts.push(day_ranges(&set, lang));
        }
    }
    let window = match (rule.from(), rule.to()) {
        (None, None) => match lang {
            Lang::En => "all day".to_owned(),
            Lang::Zh => "全天".to_owned(),
        },
        (from, to) => {
            let from = from.map_or("00:00".to_owned(), |t| t.to_string());
            let to = to.map_or("24:00".to_owned(), |t| t.to_string());
            format!("{from}–{to}")
        }
    };
    if parts.is_empty() && lang == Lang::En && window == "all day" {
        return "All day".to_owned();
    }
    parts.push(window);
    parts.join(" ")
}

/// `Mon–Fri`, `Sat, Sun`, `Mon, Wed–Fri`: runs of three or more days as ranges.
fn day_ranges(set: &[bool], lang: Lang) -> String {
    let names = match lang {
        Lang::En => DAYS_EN,
        Lang::Zh => DAYS_ZH,
    };
    let mut runs = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !set[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < 7 && set[i + 1] {
            i += 1;
        }
        match i - start {
            0 => runs.push(names[start].to_owned()),
            1 => {
                runs.push(names[start].to_owned());
                runs.push(names[i].to_owned());
            }
            _ => runs.push(format!("{}–{}", names[start], names[i])),
        }
        i += 1;
    }
    runs.join(match lang {
        Lang::En => ", ",
        Lang::Zh => "、",
    })
}

/// What a rule charges, in words.
fn price(price: &Price, lang: Lang) -> String {
    match (price, lang) {
        (Price::Free, Lang::En) => "free".to_owned(),
        (Price::Free, Lang::Zh) => "免费".to_owned(),
        (Price::Flat(amount), Lang::En) => format!("{} once", money(amount)),
        (Price::Flat(amount), Lang::Zh) => format!("一次性收费 {}", money(amount)),
        (
            Price::Every {
                every_minutes,
                amount,
            },
            _,
        ) => per(amount, *every_minutes, lang),
        (Price::Steps(steps), _) => {
            let mut out = String::new();
            for (i, step) in steps.iter().enumerate() {
                let rate = per(&step.amount, step.every_minutes, lang);
                let piece = match (lang, i, step.until_minute) {
                    (Lang::En, 0, Some(60)) => format!("{rate} for the first hour"),
                    (Lang::En, 0, Some(until)) => {
                        format!("{rate} for the first {}", duration(until, lang))
                    }
                    (Lang::En, _, Some(until)) => {
                        format!("then {rate} until {} in", duration(until, lang))
                    }
                    (Lang::En, 0, None) => rate,
                    (Lang::En, _, None) => format!("then {rate}"),
                    (Lang::Zh, 0, Some(until)) => format!("前 {}{rate}", duration(until, lang)),
                    (Lang::Zh, _, Some(until)) => {
                        format!("之后至满 {}{rate}", duration(until, lang))
                    }
                    (Lang::Zh, 0, None) => rate,
                    (Lang::Zh, _, None) => format!("之后{rate}"),
                };
                if i > 0 {
                    out.push_str(match lang {
                        Lang::En => ", ",
                        Lang::Zh => "，",
                    });
                }
                out.push_str(&piece);
            }
            out
        }
    }
}

/// `¥2.50 per 15 min` / `每 15 分钟 ¥2.50`.
fn per(amount: &Money, every_minutes: u32, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{} per {}", money(amount), duration(every_minutes, lang)),
        Lang::Zh => format!("每 {} {}", duration(every_minutes, lang), money(amount)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{
      "currency": "CNY", "grace_minutes": 15, "max_stay_minutes": 1440,
      "daily_cap": { "amount": "60.00", "period": "calendar_day" },
      "rules": [
        { "name": "national-day", "dates": ["2026-10-01", "2026-10-02"],
          "price": { "flat": "20.00" } },
        { "name": "day", "days": ["mon","tue","wed","thu","fri","sat","sun"],
          "from": "07:00", "to": "21:00",
          "price": { "steps": [
            { "until_minute": 60, "every_minutes": 15, "amount": "2.50" },
            { "every_minutes": 15, "amount": "3.75" } ] } },
        { "name": "night", "from": "21:00", "to": "07:00",
          "price": { "every_minutes": 120, "amount": "1.00" }, "cap": "5.00" }
      ]
    }"#;

    fn spec() -> Tariff {
        Tariff::from_json_str(SPEC).unwrap()
    }

    #[test]
    fn the_spec_tariff_in_english() {
        assert_eq!(
            describe(&spec(), Lang::En),
            [
                "On 2026-10-01, 2026-10-02 all day: ¥20.00 once",
                "07:00–21:00: ¥2.50 per 15 min for the first hour, then ¥3.75 per 15 min",
                "21:00–07:00: ¥1.00 per 2 h, at most ¥5.00",
                "The first 15 min are free: leave within 15 min and you pay nothing \
                 (a longer stay is charged from the start).",
                "At most ¥60.00 a day.",
                "You may stay at most 24 h.",
            ]
        );
    }

    #[test]
    fn the_spec_tariff_in_chinese() {
        assert_eq!(
            describe(&spec(), Lang::Zh),
            [
                "2026-10-01、2026-10-02 全天: 一次性收费 ¥20.00",
                "07:00–21:00: 前 1 小时每 15 分钟 ¥2.50，之后每 15 分钟 ¥3.75",
                "21:00–07:00: 每 2 小时 ¥1.00，最多 ¥5.00",
                "前 15 分钟免费：15 分钟内离开不收费（超过则从开始计费）。",
                "每天最多 ¥60.00。",
                "最长可停 24 小时。",
            ]
        );
    }

    #[test]
    fn weekdays_free_rules_three_steps_and_other_currencies() {
        let tariff = Tariff::from_json_str(
            r#"{"currency": "USD", "daily_cap": {"amount": "30.00", "period": "rolling_24h"},
                "rules": [
                  {"name": "sunday", "days": ["sun"], "price": {"free": true}},
                  {"name": "week", "days": ["mon","tue","wed","fri","sat"], "from": "08:00",
                   "price": {"steps": [
                     {"until_minute": 30, "every_minutes": 30, "amount": "0.00"},
                     {"until_minute": 150, "every_minutes": 60, "amount": "2.00"},
                     {"every_minutes": 90, "amount": "4.50"}]}},
                  {"name": "rest", "price": {"every_minutes": 60, "amount": "1.00"}}
                ]}"#,
        )
        .unwrap();
        assert_eq!(
            describe(&tariff, Lang::En),
            [
                "Sun all day: free",
                "Mon–Wed, Fri, Sat 08:00–24:00: $0.00 per 30 min for the first 30 min, \
                 then $2.00 per 1 h until 2 h 30 min in, then $4.50 per 1 h 30 min",
                "All day: $1.00 per 1 h",
                "At most $30.00 per 24 h.",
            ]
        );
        assert_eq!(describe(&tariff, Lang::Zh)[0], "周日 全天: 免费");
    }

    #[test]
    fn durations_and_symbols() {
        assert_eq!(duration(15, Lang::En), "15 min");
        assert_eq!(duration(120, Lang::En), "2 h");
        assert_eq!(duration(90, Lang::Zh), "1 小时 30 分钟");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(symbol(kwd), "KWD ");
        let yen = Money::parse("150", Currency::parse("JPY").unwrap()).unwrap();
        assert_eq!(money(&yen), "¥150");
    }
}
