//! Money after the stop as auditors see it: `refunded_total` in export records, and the
//! summary's rows that reconcile (docs/audit.md, docs/money.md).

use chrono::TimeDelta;
use qrpark::audit::verify;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{FROM, TO, auditor, export, keys, verified_csv};
use crate::helpers::{TestApp, both_backends};
use crate::sessions::{parking_lot, start};

both_backends!(exports_and_the_summary_carry_refunds);

/// Two sessions of 10.00 (an hour each at 2.50 a quarter); 2.50 and then 1.00 refunded of
/// the first: the records say so, still verify, and the summary's row reconciles.
async fn exports_and_the_summary_carry_refunds(app: TestApp) {
    let op = app.operator("Refunding").await;
    let (lot, spaces) = parking_lot(&app, &op, &["R-1", "R-2"]).await;
    let driver = app.driver_token("driver-1");
    let mut ids = Vec::new();
    for (i, (_, qr)) in spaces.iter().enumerate() {
        let started = start(&app, &driver, &format!("r{i}"), qr).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        ids.push(started.body["id"].as_str().unwrap().to_owned());
    }
    app.clock.advance(TimeDelta::hours(1));
    for id in &ids {
        let stopped = app.stop(&driver, id).await;
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
        assert_eq!(stopped.body["settlement"]["status"], "settled");
        assert_eq!(stopped.body["fee"]["total"], "10.00");
    }
    for (key, amount) in [("refund-1", "2.50"), ("refund-2", "1.00")] {
        let refund = app
            .call_raw_with(
                Method::POST,
                &format!("/v1/operator/sessions/{}/refunds", ids[0]),
                &op.key,
                &[("idempotency-key", key)],
                json!({"amount": amount, "reason": "the barrier was stuck"})
                    .to_string()
                    .into_bytes(),
            )
            .await;
        assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text);
        assert_eq!(refund.body["status"], "refunded", "no gateway: at once");
    }

    let keys = keys(&app).await;
    let jsonl = export(&app, FROM, TO, "jsonl").await;
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("checkpoint").is_none())
        .collect();
    let refunded: Vec<(&Value, &Value)> = records
        .iter()
        .map(|r| (&r["session_id"], &r["refunded_total"]))
        .collect();
    assert_eq!(
        refunded,
        vec![
            (&json!(ids[0]), &json!("3.50")),
            (&json!(ids[1]), &json!("0.00"))
        ]
    );
    verify::verify(&jsonl, None, &keys, None).expect("intact");
    let csv = export(&app, FROM, TO, "csv").await;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "refunded_total").unwrap();
    let first: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[column], "3.50");
    assert_eq!(verified_csv(&app, &csv, &keys).await, 2);

    let summary = app
        .get(
            &format!("/v1/audit/summary?from={FROM}&to={TO}"),
            Some(&auditor(&app)),
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert_eq!(
        summary.body["rows"],
        json!([{
            "operator_id": op.id,
            "lot_id": lot,
            "day": "2026-09-29",
            "currency": "CNY",
            "sessions": 2,
            "fees": "20.00",
            "settled": "20.00",
            "pending": "0.00",
            "arrears": "0.00",
            "review": "0.00",
            "refunded": "3.50",
        }])
    );
}
