//! The printable receipt page (`GET /v1/sessions/{id}/receipt?format=html`): plain HTML in
//! the driver's language, no scripts, its style inline so that a saved copy stays whole.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

use super::i18n::Lang;

/// Everything a receipt shows, already in the form it is printed in.
#[derive(Debug, Clone)]
pub struct ReceiptPage {
    pub session_id: Uuid,
    pub lot_name: String,
    pub lot_address: Option<String>,
    /// The lot's time zone, in which the times are shown (UTC if it is not a zone name).
    pub timezone: String,
    pub space_code: String,
    pub plate: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub lines: Vec<ReceiptLine>,
    pub total: String,
    pub currency: String,
    pub tariff_version: i32,
    pub settlement: Option<ReceiptSettlement>,
    /// The operator's refunds of the fee, oldest first.
    pub refunds: Vec<ReceiptRefund>,
}

/// One line of the fee's breakdown.
#[derive(Debug, Clone)]
pub struct ReceiptLine {
    pub rule: String,
    pub from: String,
    pub to: String,
    pub increments: u64,
    pub amount: String,
    pub charged: String,
}

/// How the fee was paid.
#[derive(Debug, Clone)]
pub struct ReceiptSettlement {
    pub reference: String,
    pub status: String,
    pub amount: String,
    /// Given back so far (refunds not failed).
    pub refunded: String,
}

/// A refund of (part of) the fee.
#[derive(Debug, Clone)]
pub struct ReceiptRefund {
    pub reference: String,
    pub amount: String,
    pub reason: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

const STYLE: &str =
    "body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 1rem auto; \
padding: 0 1rem; color: #111; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: .3rem; text-align: left; font-size: .9rem; }
.n { text-align: right; }
.total { font-size: 1.4rem; font-weight: bold; }";

fn local(at: DateTime<Utc>, tz: Option<Tz>) -> String {
    match tz {
        Some(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        None => at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

/// The receipt as a self-contained HTML page in `lang`.
pub fn render(receipt: &ReceiptPage, lang: Lang) -> Markup {
    let t = |key: &str| lang.t(key);
    let tz: Option<Tz> = receipt.timezone.parse().ok();
    let session = receipt.session_id.to_string();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t("receipt.title")) " " (session) }
                style { (STYLE) }
            }
            body {
                h1 { (t("receipt.title")) }
                p {
                    strong { (receipt.lot_name) }
                    br;
                    (receipt.lot_address.as_deref().unwrap_or(""))
                }
                p {
                    (t("space")) " " strong { (receipt.space_code) }
                    @if let Some(plate) = &receipt.plate {
                        br;
                        (t("receipt.plate")) " " strong { (plate) }
                    }
                    br;
                    (t("receipt.from")) " " (local(receipt.started_at, tz))
                    br;
                    (t("receipt.to")) " " (local(receipt.ended_at, tz))
                }
                table {
                    thead {
                        tr {
                            th { (t("receipt.rule")) }
                            th { (t("receipt.period")) }
                            th.n { (t("receipt.increments")) }
                            th.n { (t("receipt.amount")) }
                            th.n { (t("receipt.charged")) }
                        }
                    }
                    tbody {
                        @for line in &receipt.lines {
                            tr {
                                td { (line.rule) }
                                td { (line.from) " – " (line.to) }
                                td.n { (line.increments) }
                                td.n { (line.amount) }
                                td.n { (line.charged) }
                            }
                        }
                    }
                }
                p.total { (t("receipt.total")) " " (receipt.total) " " (receipt.currency) }
                p {
                    (t("receipt.version").replace("{version}", &receipt.tariff_version.to_string()))
                }
                @if let Some(s) = &receipt.settlement {
                    p {
                        (t("receipt.settlement")) " " strong { (s.reference) } ": "
                        (status_words(lang, "receipt.status", &s.status)) " " (s.amount) " " (receipt.currency) "."
                    }
                }
                @if !receipt.refunds.is_empty() {
                    h2 { (t("receipt.refunds")) }
                    table {
                        thead {
                            tr {
                                th { (t("receipt.refund_date")) }
                                th { (t("receipt.refund_reference")) }
                                th { (t("receipt.refund_reason")) }
                                th { (t("receipt.refund_status")) }
                                th.n { (t("receipt.amount")) }
                            }
                        }
                        tbody {
                            @for refund in &receipt.refunds {
                                tr {
                                    td { (local(refund.refunded_at.unwrap_or(refund.created_at), tz)) }
                                    td { (refund.reference) }
                                    td { (refund.reason) }
                                    td { (status_words(lang, "receipt.refund", &refund.status)) }
                                    td.n { (refund.amount) " " (receipt.currency) }
                                }
                            }
                        }
                    }
                }
                @if let Some(s) = receipt.settlement.as_ref().filter(|_| !receipt.refunds.is_empty()) {
                    p.total { (t("receipt.refunded")) " " (s.refunded) " " (receipt.currency) }
                }
                p { small { (t("receipt.session")) " " (session) } }
            }
        }
    }
}

/// A settlement's or refund's status (messages `{prefix}.{status}`) in words; an unknown
/// status is shown as stored.
fn status_words(lang: Lang, prefix: &str, status: &str) -> String {
    let key = format!("{prefix}.{status}");
    match lang.t(&key) {
        "?" => status.to_owned(),
        words => words.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReceiptPage {
        ReceiptPage {
            session_id: Uuid::nil(),
            lot_name: "Jing'an <Temple>".into(),
            lot_address: Some("1 Road & Co".into()),
            timezone: "Asia/Shanghai".into(),
            space_code: "A-1".into(),
            plate: Some("沪A12345".into()),
            started_at: "2026-09-29T02:00:00Z".parse().unwrap(),
            ended_at: "2026-09-29T04:30:00Z".parse().unwrap(),
            lines: vec![ReceiptLine {
                rule: "day".into(),
                from: "10:00".into(),
                to: "12:30".into(),
                increments: 5,
                amount: "5.00".into(),
                charged: "25.00".into(),
            }],
            total: "25.00".into(),
            currency: "CNY".into(),
            tariff_version: 2,
            settlement: Some(ReceiptSettlement {
                reference: "QRP-ABC".into(),
                status: "settled".into(),
                amount: "25.00".into(),
                refunded: "0.00".into(),
            }),
            refunds: Vec::new(),
        }
    }

    #[test]
    fn the_receipt_escapes_what_operators_typed_and_shows_local_times() {
        let page = render(&sample(), Lang::En).into_string();
        assert!(page.contains("Jing'an &lt;Temple&gt;"));
        assert!(page.contains("1 Road &amp; Co"));
        assert!(page.contains("2026-09-29 10:00:00 +08:00"));
        assert!(page.contains("Total 25.00 CNY"));
        assert!(page.contains("QRP-ABC"));
        assert!(page.contains("Plate <strong>沪A12345</strong>"));
        assert!(page.contains("<html lang=\"en\">"));
    }

    #[test]
    fn the_receipt_speaks_chinese() {
        let page = render(&sample(), Lang::Zh).into_string();
        assert!(page.contains("<html lang=\"zh-CN\">"));
        assert!(page.contains("停车收据"));
        assert!(page.contains("已支付"));
        assert!(!page.contains("Parking receipt"));
    }

    #[test]
    fn refunds_and_every_settlement_state_are_in_words_in_both_languages() {
        let mut receipt = sample();
        receipt.refunds = vec![ReceiptRefund {
            reference: "QRR-1".into(),
            amount: "5.00".into(),
            reason: "Barrier <stuck>".into(),
            status: "refunded".into(),
            created_at: "2026-09-29T05:00:00Z".parse().unwrap(),
            refunded_at: Some("2026-09-29T05:01:00Z".parse().unwrap()),
        }];
        if let Some(s) = receipt.settlement.as_mut() {
            s.refunded = "5.00".into();
            s.status = "arrears".into();
        }
        let en = render(&receipt, Lang::En).into_string();
        assert!(en.contains("Barrier &lt;stuck&gt;"), "{en}");
        assert!(en.contains("2026-09-29 13:01:00 +08:00"), "{en}");
        assert!(en.contains("Refunded in total 5.00 CNY"), "{en}");
        assert!(en.contains("refused by the city's payment gateway"), "{en}");
        let zh = render(&receipt, Lang::Zh).into_string();
        assert!(zh.contains("已退款合计 5.00 CNY"), "{zh}");
        assert!(zh.contains("欠费"), "{zh}");
        for status in ["pending", "settled", "arrears", "review"] {
            for lang in [Lang::En, Lang::Zh] {
                let words = status_words(lang, "receipt.status", status);
                assert_ne!(words, status, "{status} has no words");
            }
        }
        for status in ["pending", "refunded", "failed", "review"] {
            for lang in [Lang::En, Lang::Zh] {
                let words = status_words(lang, "receipt.refund", status);
                assert_ne!(words, status, "refund {status} has no words");
            }
        }
    }
}
