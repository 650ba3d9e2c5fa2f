//! The printable receipt page: plain HTML, no scripts, nothing from other hosts.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::driver::Receipt;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn local(at: DateTime<Utc>, tz: Option<Tz>) -> String {
    match tz {
        Some(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        None => at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

fn field<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// The receipt as a self-contained HTML page.
pub fn render(receipt: &Receipt) -> String {
    let tz: Option<Tz> = receipt.timezone.parse().ok();
    let currency = field(&receipt.fee, "currency");
    let mut lines = String::new();
    for line in receipt.fee["lines"].as_array().into_iter().flatten() {
        lines.push_str(&format!(
            "<tr><td>{}</td><td>{} &ndash; {}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            escape(field(line, "rule")),
            escape(field(line, "from")),
            escape(field(line, "to")),
            line["increments"],
            escape(field(line, "amount")),
            escape(field(line, "charged")),
        ));
    }
    let settlement = match &receipt.settlement {
        Some(s) => format!(
            "<p>Settlement <strong>{}</strong>: {} {} {}.</p>",
            escape(&s.reference),
            escape(&s.status),
            escape(&s.amount),
            escape(currency)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parking receipt {session}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 1rem auto; padding: 0 1rem; color: #111; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .3rem; text-align: left; font-size: .9rem; }}
.n {{ text-align: right; }}
.total {{ font-size: 1.4rem; font-weight: bold; }}
</style>
</head>
<body>
<h1>Parking receipt</h1>
<p><strong>{lot}</strong><br>{address}</p>
<p>Space <strong>{space}</strong><br>
From {from}<br>to {to}</p>
<table>
<thead><tr><th>Rule</th><th>Period</th><th class=n>Increments</th><th class=n>Amount</th><th class=n>Charged</th></tr></thead>
<tbody>
{lines}</tbody>
</table>
<p class="total">Total {total} {currency}</p>
<p>Tariff version {version}. Every line can be recomputed by hand from the tariff.</p>
{settlement}
<p><small>Session {session}</small></p>
</body>
</html>
"#,
        session = receipt.session_id,
        lot = escape(&receipt.lot_name),
        address = escape(receipt.lot_address.as_deref().unwrap_or("")),
        space = escape(&receipt.space_code),
        from = local(receipt.started_at, tz),
        to = local(receipt.ended_at, tz),
        total = escape(field(&receipt.fee, "total")),
        currency = escape(currency),
        version = receipt.fee["tariff_version"],
    )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
