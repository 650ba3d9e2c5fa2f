//! Export records and vehicles: the plate given at the start and how the session ended,
//! and what erasing plates after their retention does to later exports.

use chrono::TimeDelta;
use qrpark::audit::verify;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{FROM, TO, export, keys, verified_csv};
use crate::helpers::{TestApp, both_backends};
use crate::sessions::parking_lot;
use crate::vehicles::start_with;

both_backends!(records_carry_the_plate_and_how_the_session_ended);

/// The plate given at the start and who ended the session, in both formats; a plate
/// erased after its retention is null in later exports, which then differ from earlier
/// ones of the same range.
async fn records_carry_the_plate_and_how_the_session_ended(app: TestApp) {
    let op = app.operator("Plated").await;
    let (_, spaces) = parking_lot(&app, &op, &["P-1", "P-2", "P-3"]).await;
    let driver = app.driver_token("driver-1");
    let bodies = [
        json!({"qr": spaces[0].1, "plate": "沪A12345"}),
        json!({"qr": spaces[1].1}),
        json!({"qr": spaces[2].1, "plate": "b 123-xyz"}),
    ];
    let mut ids = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let started = start_with(&app, &driver, &format!("p{i}"), body).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        ids.push(started.body["id"].as_str().unwrap().to_owned());
    }
    app.clock.advance(TimeDelta::hours(1));
    for id in &ids[..2] {
        let stopped = app.stop(&driver, id).await;
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    }
    let stopped = app
        .post(
            &format!("/v1/operator/sessions/{}/stop", ids[2]),
            Some(&op.key),
            json!({"reason": "blocking the fire exit"}),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["ended_by"], "operator");

    let keys = keys(&app).await;
    let jsonl = export(&app, FROM, TO, "jsonl").await;
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("checkpoint").is_none())
        .collect();
    let got: Vec<(&Value, &Value, &Value)> = records
        .iter()
        .map(|r| (&r["session_id"], &r["plate"], &r["ended_by"]))
        .collect();
    assert_eq!(
        got,
        vec![
            (&json!(ids[0]), &json!("沪A12345"), &json!("driver")),
            (&json!(ids[1]), &Value::Null, &json!("driver")),
            (&json!(ids[2]), &json!("B123XYZ"), &json!("operator")),
        ],
        "normalised as the start stored it, in the order the sessions stopped"
    );
    verify::verify(&jsonl, None, &keys, None).expect("intact");

    let csv = export(&app, FROM, TO, "csv").await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "session_id,operator_id,lot_id,space_code,driver,started_at,ended_at,currency,\
         fee_total,tariff_version,settlement_status,settlement_reference,audit_seq,\
         audit_hash,plate,ended_by,refunded_total,prev_hash,hash"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let ending = |row: &Vec<&str>| (row[0].to_owned(), row[14].to_owned(), row[15].to_owned());
    assert_eq!(
        rows.iter().map(ending).collect::<Vec<_>>(),
        vec![
            (ids[0].clone(), "沪A12345".to_owned(), "driver".to_owned()),
            (ids[1].clone(), String::new(), "driver".to_owned()),
            (ids[2].clone(), "B123XYZ".to_owned(), "operator".to_owned()),
        ]
    );
    assert_eq!(verified_csv(&app, &csv, &keys).await, 3);

    // Past the plates' retention: erased from the sessions, so from every later export.
    app.clock.advance(TimeDelta::days(91));
    qrpark::sessions::scheduler::erase_old_plates(&app.state)
        .await
        .unwrap();
    let erased = export(&app, FROM, TO, "jsonl").await;
    let later: Vec<Value> = erased
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("checkpoint").is_none())
        .collect();
    assert_eq!(later.len(), 3);
    for (before, after) in records.iter().zip(&later) {
        assert_eq!(after["plate"], Value::Null);
        // Nothing else of the record changed; its chain fields did.
        let fields = |r: &Value| {
            let mut r = r.clone();
            for field in ["plate", "prev_hash", "hash"] {
                r.as_object_mut().unwrap().remove(field);
            }
            r
        };
        assert_eq!(fields(after), fields(before));
    }
    verify::verify(&erased, None, &keys, None).expect("the later export verifies");
    // But it no longer extends the earlier export of the range: the plates it held differ.
    let earlier: Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    let problem = verify::verify(&erased, None, &keys, Some(&earlier)).expect_err("plates erased");
    assert!(
        problem.contains("record 3") && problem.contains("history rewritten"),
        "{problem}"
    );
}
