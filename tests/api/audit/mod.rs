//! City auditors: the hash-chained audit log, role checks, exports that are byte-identical,
//! signed and verifiable offline, tamper detection, and reconciliation totals.

use std::process::Command;

use chrono::TimeDelta;
use qrpark::audit::{export, verify};
use qrpark::domain::key_purpose::KeyPurpose;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TempDir, TestApp, both_backends};
use crate::sessions::{parking_lot, start};

mod plates;
mod refunds;
pub(crate) mod sealing;

use sealing::{
    a_late_commit_is_sealed_later_not_skipped, a_refund_and_the_sealer_never_deadlock,
    an_export_right_after_a_stop_holds_it, concurrent_writes_are_sealed_once_in_causal_order,
    the_background_sealer_seals_within_its_interval,
};

both_backends!(
    every_change_is_in_an_append_only_hash_chain,
    only_auditors_reach_audit_routes,
    exports_are_byte_identical_signed_and_verifiable,
    tampering_is_detected,
    later_exports_extend_earlier_ones_unless_history_changed,
    summary_matches_the_export,
    large_exports_page_through_every_record_in_chain_order,
    the_stop_event_hashes_the_breakdown_as_exported,
    formula_cells_are_neutralised_and_still_verify,
    concurrent_writes_are_sealed_once_in_causal_order,
    an_export_right_after_a_stop_holds_it,
    the_background_sealer_seals_within_its_interval,
    a_late_commit_is_sealed_later_not_skipped,
    a_refund_and_the_sealer_never_deadlock,
);

const FROM: &str = "2026-09-29T00:00:00Z";
const TO: &str = "2026-09-30T00:00:00Z";

fn auditor(app: &TestApp) -> String {
    app.state.demo_idp.as_ref().unwrap().issue(
        "auditor-1",
        &["auditor"],
        "qrpark",
        std::time::Duration::from_secs(3600),
    )
}

/// Three sessions on three spaces, stopped after 1, 2 and 3 hours.
async fn three_sessions(app: &TestApp) -> Vec<String> {
    let op = app.operator("Audited").await;
    let (_, spaces) = parking_lot(app, &op, &["A-1", "A-2", "A-3"]).await;
    let driver = app.driver_token("driver-1");
    let mut ids = Vec::new();
    for (i, (_, qr)) in spaces.iter().enumerate() {
        let started = start(app, &driver, &format!("k{i}"), qr).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        ids.push(started.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        app.clock.advance(TimeDelta::hours(1));
        let stopped = app.stop(&driver, id).await;
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
        assert_eq!(stopped.body["settlement"]["status"], "settled");
    }
    ids
}

async fn export(app: &TestApp, from: &str, to: &str, format: &str) -> String {
    let answer = app
        .get(
            &format!("/v1/audit/sessions?from={from}&to={to}&format={format}"),
            Some(&auditor(app)),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.text
}

/// Verifies a CSV export of `[FROM, TO)` against its checkpoint; the records it holds.
async fn verified_csv(
    app: &TestApp,
    csv: &str,
    keys: &std::collections::HashMap<String, [u8; 32]>,
) -> u64 {
    let checkpoint = app
        .get(
            &format!("/v1/audit/checkpoint?from={FROM}&to={TO}&format=csv"),
            Some(&auditor(app)),
        )
        .await
        .body;
    verify::verify(csv, Some(&checkpoint), keys, None)
        .expect("the CSV export verifies against its checkpoint")
        .records
}

async fn keys(app: &TestApp) -> std::collections::HashMap<String, [u8; 32]> {
    verify::keys_of(&app.get("/.well-known/jwks.json", None).await.body)
}

/// An audit_event row: seq, at, kind, entity_id, payload, prev_hash, hash.
pub(crate) type StoredEvent = (
    i64,
    chrono::DateTime<chrono::Utc>,
    String,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
);

async fn every_change_is_in_an_append_only_hash_chain(app: TestApp) {
    three_sessions(&app).await;
    // Every change is in the chain once sealed (an export seals before it reads).
    app.seal().await;
    let rows = sealing::chain(&app.db).await;
    let kinds: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    for kind in [
        "signing_key.created",
        "operator.created",
        "lot.created",
        "tariff.published",
        "space.created",
        "session.started",
        "session.stopped",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // Recompute the chain from the stored events, independently of the writer: linked,
    // hashed, numbered 1, 2, 3... without a gap.
    sealing::assert_chain_verifies(&rows);
    // The database refuses to rewrite the log, the ledger or settlements.
    assert!(
        app.try_execute("update audit_event set kind = 'x'")
            .await
            .is_err()
    );
    assert!(app.try_execute("delete from audit_event").await.is_err());
    assert!(app.try_execute("delete from ledger_entry").await.is_err());
    assert!(app.try_execute("delete from settlement").await.is_err());
}

async fn only_auditors_reach_audit_routes(app: TestApp) {
    let op = app.operator("Nosy").await;
    let driver = app.driver_token("driver-1");
    for path in [
        "/v1/audit/sessions",
        "/v1/audit/summary",
        "/v1/audit/checkpoint",
    ] {
        let path = format!("{path}?from={FROM}&to={TO}");
        assert_eq!(
            app.get(&path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            app.get(&path, Some(&op.key)).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let answer = app.get(&path, Some(&driver)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(answer.problem_code(), "forbidden");
        assert_eq!(
            app.get(&path, Some(&auditor(&app))).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    // Without a range: everything up to now.
    let everything = app.get("/v1/audit/sessions", Some(&auditor(&app))).await;
    assert_eq!(everything.status, StatusCode::OK);
    let bad = app
        .get(
            "/v1/audit/sessions?from=yesterday&to=2026-01-01T00:00:00Z&format=xml",
            Some(&auditor(&app)),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.error_paths(), vec!["$.from", "$.format"]);
    let backwards = app
        .get(
            &format!("/v1/audit/sessions?from={TO}&to={FROM}"),
            Some(&auditor(&app)),
        )
        .await;
    assert_eq!(backwards.error_paths(), vec!["$.to"]);
}

async fn exports_are_byte_identical_signed_and_verifiable(app: TestApp) {
    let ids = three_sessions(&app).await;
    let first = export(&app, FROM, TO, "jsonl").await;
    let second = export(&app, FROM, TO, "jsonl").await;
    assert_eq!(first, second, "the same range exports byte-identically");
    let lines: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "three records and a checkpoint");
    // Records carry what a fee needs to be recomputed, in the order sessions stopped.
    let record = &lines[0];
    assert_eq!(record["session_id"], ids[0].as_str());
    for field in [
        "operator_id",
        "lot_id",
        "space_code",
        "driver",
        "started_at",
        "ended_at",
        "currency",
        "fee_total",
        "tariff_version",
        "settlement_status",
        "settlement_reference",
        "audit_seq",
        "audit_hash",
        "plate",
        "ended_by",
        "refunded_total",
    ] {
        assert!(record.get(field).is_some(), "{field} missing");
    }
    assert_eq!(record["fee_total"], "10.00");
    assert_eq!(record["plate"], Value::Null, "started without a plate");
    assert_eq!(record["ended_by"], "driver");
    assert_eq!(record["fee"]["lines"][0]["rule"], "day");
    // 10:00-13:00 by the spec tariff: 4 x 2.50 in the first hour, then 8 x 3.75.
    assert_eq!(lines[2]["fee_total"], "40.00");
    let keys = keys(&app).await;
    let ok = verify::verify(&first, None, &keys, None).expect("intact");
    assert_eq!(ok.records, 3);

    // CSV: a header, the records, and the checkpoint from its own endpoint.
    let csv = export(&app, FROM, TO, "csv").await;
    assert_eq!(csv, export(&app, FROM, TO, "csv").await);
    assert!(csv.starts_with("session_id,operator_id,lot_id,space_code,driver,"));
    assert_eq!(csv.lines().count(), 4);
    assert_eq!(verified_csv(&app, &csv, &keys).await, 3);

    // The same checks from the command line, offline.
    let dir = TempDir::new();
    let file = dir.0.join("export.jsonl");
    std::fs::write(&file, &first).unwrap();
    let jwks = dir.0.join("jwks.json");
    std::fs::write(&jwks, app.get("/.well-known/jwks.json", None).await.text).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args([
            "audit",
            "verify",
            file.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let altered = first.replacen("\"fee_total\":\"25.00\"", "\"fee_total\":\"2.50\"", 1);
    std::fs::write(&file, altered).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args([
            "audit",
            "verify",
            file.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("record 2") && stderr.contains(&ids[1]),
        "{stderr}"
    );
}

async fn tampering_is_detected(app: TestApp) {
    three_sessions(&app).await;
    let good = export(&app, FROM, TO, "jsonl").await;
    let keys = keys(&app).await;
    let lines: Vec<&str> = good.lines().collect();
    let join = |ls: Vec<&str>| ls.join("\n") + "\n";
    let cases = [
        (
            "altered",
            good.replacen("\"driver\":\"driver-1\"", "\"driver\":\"driver-2\"", 1),
            "record 1",
        ),
        (
            "removed",
            join(vec![lines[0], lines[2], lines[3]]),
            "record 2",
        ),
        (
            "reordered",
            join(vec![lines[1], lines[0], lines[2], lines[3]]),
            "record 1",
        ),
        (
            "inserted",
            join(vec![lines[0], lines[0], lines[1], lines[2], lines[3]]),
            "record 2",
        ),
        (
            "truncated",
            join(vec![lines[0], lines[1], lines[3]]),
            "checkpoint counts",
        ),
        (
            "checkpoint cut off",
            join(vec![lines[0], lines[1], lines[2]]),
            "no checkpoint",
        ),
        (
            "checkpoint forged",
            good.replacen("\"count\":3", "\"count\":2", 1),
            "signature",
        ),
    ];
    for (what, text, expected) in cases {
        let problem = verify::verify(&text, None, &keys, None).expect_err(what);
        assert!(problem.contains(expected), "{what}: {problem}");
    }
    // A checkpoint re-signed by someone else's key (carrying that key) fails against the
    // pinned JWKS, even with the right count and head.
    let checkpoint: Value = serde_json::from_str(lines[3]).unwrap();
    let body = &checkpoint["checkpoint"];
    let range = qrpark::audit::export::Range {
        from: FROM.parse().unwrap(),
        to: TO.parse().unwrap(),
        operator: None,
        lot: None,
    };
    let head = qrpark::domain::audit::parse_hash(body["head"].as_str().unwrap()).unwrap();
    // Another key under the name of qrpark's checkpoint key.
    let kid = app
        .state
        .keys
        .signing_key(KeyPurpose::Checkpoint, app.now())
        .await
        .unwrap()
        .kid;
    let impostor = qrpark::domain::qr_token::QrSigningKey::from_seed(&kid, &[9; 32]);
    let forged = qrpark::audit::export::checkpoint(
        qrpark::audit::export::Format::Jsonl,
        &range,
        3,
        &head,
        &impostor,
    );
    let resigned = join(vec![
        lines[0],
        lines[1],
        lines[2],
        &qrpark::domain::audit::canonical_json(&forged),
    ]);
    let problem = verify::verify(&resigned, None, &keys, None).expect_err("re-signed");
    assert!(problem.contains("differs from the JWKS"), "{problem}");
}

async fn later_exports_extend_earlier_ones_unless_history_changed(app: TestApp) {
    three_sessions(&app).await;
    let keys = keys(&app).await;
    // The first two sessions stopped at 11:00 and 12:00 local (03:00Z, 04:00Z).
    let early = export(&app, FROM, "2026-09-29T04:30:00Z", "jsonl").await;
    assert_eq!(early.lines().count(), 3);
    let full = export(&app, FROM, TO, "jsonl").await;
    let earlier: Value = serde_json::from_str(early.lines().last().unwrap()).unwrap();
    verify::verify(&full, None, &keys, Some(&earlier))
        .expect("the later export extends the earlier one");
    // A session of the earlier export changed directly in the database: the new export no
    // longer extends the earlier checkpoint.
    app.execute("update session set fee_minor = 1 where fee_minor = 1000")
        .await;
    let rewritten = export(&app, FROM, TO, "jsonl").await;
    let problem =
        verify::verify(&rewritten, None, &keys, Some(&earlier)).expect_err("history rewritten");
    // The earlier checkpoint holds only the head, so the break shows at its last record.
    assert!(
        problem.contains("record 2") && problem.contains("history rewritten"),
        "{problem}"
    );
    // On its own the rewritten export is consistent: only the earlier checkpoint catches it.
    verify::verify(&rewritten, None, &keys, None).expect("self-consistent");
}

async fn summary_matches_the_export(app: TestApp) {
    three_sessions(&app).await;
    let answer = app
        .get(
            &format!("/v1/audit/summary?from={FROM}&to={TO}"),
            Some(&auditor(&app)),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let rows = answer.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one operator, one lot, one local day");
    assert_eq!(rows[0]["day"], "2026-09-29");
    assert_eq!(rows[0]["sessions"], 3);
    // 10.00 + 25.00 + 40.00 by the spec tariff, all settled at once.
    assert_eq!(rows[0]["fees"], "75.00");
    assert_eq!(rows[0]["settled"], "75.00");
    assert_eq!(rows[0]["pending"], "0.00");
    let exported: i64 = export(&app, FROM, TO, "jsonl")
        .await
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        // CNY amounts have exactly two decimals: "10.00" is 1000 minor units.
        .filter_map(|r| {
            r["fee_total"]
                .as_str()
                .map(|t| t.replace('.', "").parse::<i64>().unwrap())
        })
        .sum();
    assert_eq!(exported, 7500);
}

/// More sessions than one SQLite page (1,000), written straight into the database next to
/// three real ones: texts with separators, quotes, line breaks and multibyte characters,
/// plates or none, every kind of ending, no settlement (null status and reference), one
/// range for all.
async fn large_exports_page_through_every_record_in_chain_order(app: TestApp) {
    const BULK: usize = 2_345;
    three_sessions(&app).await;
    let driver = "bulk; 12:34, \"quoted\" ü\u{4e2d}\nline-";
    // Every third without a plate, the rest with one; every kind of ending in turn.
    let bulk = match &app.db {
        qrpark::store::Db::Sqlite(pool) => sqlx::query(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < $1) \
             insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id, \
             tariff_version, currency, status, started_at, ended_at, fee_minor, fee_lines, \
             created_at, updated_at, audit_seq, audit_hash, ended_by, plate) \
             select randomblob(16), s.lot_id, s.space_id, s.operator_id, $2 || i, s.tariff_id, \
             s.tariff_version, s.currency, 'stopped', s.started_at, s.ended_at, s.fee_minor, \
             s.fee_lines, s.created_at, s.updated_at, 1000000 + i, randomblob(32), \
             case i % 4 when 0 then 'driver' when 1 then 'planned' when 2 then 'max_stay' \
             else 'operator' end, \
             case when i % 3 = 0 then null else '沪A' || printf('%05d', i) end \
             from n, (select * from session where status = 'stopped' limit 1) s",
        )
        .bind(BULK as i64)
        .bind(driver)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected(),
        qrpark::store::Db::Postgres(pool) => sqlx::query(
            "insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id, \
             tariff_version, currency, status, started_at, ended_at, fee_minor, fee_lines, \
             created_at, updated_at, audit_seq, audit_hash, ended_by, plate) \
             select gen_random_uuid(), s.lot_id, s.space_id, s.operator_id, $2 || i, s.tariff_id, \
             s.tariff_version, s.currency, 'stopped', s.started_at, s.ended_at, s.fee_minor, \
             s.fee_lines, s.created_at, s.updated_at, 1000000 + i, sha256(i::text::bytea), \
             case i % 4 when 0 then 'driver' when 1 then 'planned' when 2 then 'max_stay' \
             else 'operator' end, \
             case when i % 3 = 0 then null else '沪A' || lpad(i::text, 5, '0') end \
             from generate_series(1, $1) as i, \
             (select * from session where status = 'stopped' limit 1) s",
        )
        .bind(BULK as i32)
        .bind(driver)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected(),
    };
    assert_eq!(bulk, BULK as u64);
    let total = BULK + 3;

    let jsonl = export(&app, FROM, TO, "jsonl").await;
    assert!(
        jsonl == export(&app, FROM, TO, "jsonl").await,
        "byte-identical"
    );
    let keys = keys(&app).await;
    assert_eq!(
        verify::verify(&jsonl, None, &keys, None).unwrap().records,
        total as u64
    );
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("checkpoint").is_none())
        .collect();
    assert_eq!(records.len(), total);
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r["audit_seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "chain order");
    // Each line is exactly the canonical encoding of its record.
    for (line, record) in jsonl.lines().zip(&records) {
        assert_eq!(line, qrpark::domain::audit::canonical_json(record));
    }
    let last = &records[total - 1];
    assert_eq!(last["driver"], format!("{driver}{BULK}"));
    // 2,345 = 4 x 586 + 1 = 3 x 781 + 2: planned, with a plate; 2,343 had none.
    assert_eq!(last["plate"], "沪A02345");
    assert_eq!(last["ended_by"], "planned");
    assert_eq!(records[total - 3]["plate"], Value::Null);
    let endings: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["ended_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        endings,
        ["driver", "max_stay", "operator", "planned"].into()
    );
    assert_eq!(last["settlement_status"], Value::Null);
    assert_eq!(last["settlement_reference"], Value::Null);
    assert_eq!(last["fee"], records[0]["fee"]);
    assert_eq!(last["audit_hash"].as_str().unwrap().len(), 64);
    // Every settlement beside its own session, whichever way the backend joins them.
    let settlements: Vec<(uuid::Uuid, String)> = match &app.db {
        qrpark::store::Db::Sqlite(pool) => {
            sqlx::query_as("select session_id, reference from settlement")
                .fetch_all(pool)
                .await
        }
        qrpark::store::Db::Postgres(pool) => {
            sqlx::query_as("select session_id, reference from settlement")
                .fetch_all(pool)
                .await
        }
    }
    .unwrap();
    let exported: std::collections::BTreeMap<String, String> = records
        .iter()
        .filter_map(|r| {
            let reference = r["settlement_reference"].as_str()?;
            Some((r["session_id"].as_str()?.to_owned(), reference.to_owned()))
        })
        .collect();
    assert_eq!(exported.len(), 3);
    assert_eq!(
        exported,
        settlements
            .into_iter()
            .map(|(id, reference)| (id.to_string(), reference))
            .collect()
    );

    let csv = export(&app, FROM, TO, "csv").await;
    assert_eq!(verified_csv(&app, &csv, &keys).await, total as u64);

    // Each chunk tells how many records the export holds up to its end (what `qrpark
    // export`'s progress bar shows): in JSONL, the lines so far, the checkpoint aside.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<export::Chunk>(8);
    let producer = {
        let db = app.db.clone();
        let key = app
            .state
            .keys
            .signing_key(KeyPurpose::Checkpoint, app.now())
            .await
            .unwrap();
        let range = export::Range {
            from: FROM.parse().unwrap(),
            to: TO.parse().unwrap(),
            operator: None,
            lot: None,
        };
        tokio::spawn(async move {
            export::produce(&db, &range, export::Format::Jsonl, &key, &sender).await
        })
    };
    let (mut streamed, mut counts) = (Vec::new(), Vec::new());
    while let Some(chunk) = receiver.recv().await {
        streamed.extend_from_slice(&chunk.bytes);
        let lines = streamed.iter().filter(|b| **b == b'\n').count() as u64;
        counts.push((chunk.records, lines));
    }
    let (closing, before) = counts.split_last().unwrap();
    assert!(before.len() > 2, "{} chunks", counts.len());
    for (records, lines) in before {
        assert_eq!(records, lines);
    }
    assert_eq!(
        *closing,
        (total as u64, total as u64 + 1),
        "then the checkpoint"
    );
    assert_eq!(producer.await.unwrap().unwrap().0, total as u64);
    assert!(streamed == jsonl.as_bytes(), "the API's bytes");

    // Filters page as well: the whole lot, and nothing for another lot.
    let lot = last["lot_id"].as_str().unwrap();
    let by_lot = export(&app, FROM, &format!("{TO}&lot={lot}"), "jsonl").await;
    let records_of = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("{\"checkpoint\""))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        records_of(&by_lot) == records_of(&jsonl),
        "the lot holds every record"
    );
    let other = uuid::Uuid::now_v7();
    let none = export(&app, FROM, &format!("{TO}&lot={other}"), "jsonl").await;
    assert_eq!(none.lines().count(), 1, "only the checkpoint");
    let operator = last["operator_id"].as_str().unwrap();
    let by_operator = export(&app, FROM, &format!("{TO}&operator={operator}"), "jsonl").await;
    assert!(
        records_of(&by_operator) == records_of(&jsonl),
        "the operator holds every record"
    );
    let none = export(&app, FROM, &format!("{TO}&operator={other}"), "jsonl").await;
    assert_eq!(none.lines().count(), 1, "only the checkpoint");

    // The schema keeps every stopped session in the chain, once.
    assert!(
        app.try_execute("update session set audit_seq = null where status = 'stopped'")
            .await
            .is_err()
    );
    assert!(
        app.try_execute("update session set audit_seq = 1000001 where audit_seq = 1000002")
            .await
            .is_err()
    );
    if matches!(app.db, qrpark::store::Db::Postgres(_)) {
        // A settlement's copy of its session's chain place (what the export joins on) can
        // neither point elsewhere nor be left behind by its session.
        for sql in [
            "update settlement set session_audit_seq = 1000001",
            "update session set audit_seq = audit_seq + 5000 where session_id in \
             (select session_id from settlement)",
        ] {
            let refused = app.try_execute(sql).await.unwrap_err().to_string();
            assert!(
                refused.contains("settlement_session_chain_place_fkey"),
                "{sql}: {refused}"
            );
        }
    }

    // The command line writes the same export (SQLite: its URL is a file to hand over).
    let cli = matches!(app.db, qrpark::store::Db::Sqlite(_)).then(TempDir::new);
    let cli_export = |dir: &TempDir| {
        let out = dir.0.join("export.jsonl");
        let run = Command::new(env!("CARGO_BIN_EXE_qrpark"))
            .args(["export", "--from", FROM, "--to", TO, "--out"])
            .arg(&out)
            .env("QRPARK_DATABASE_URL", &app.state.config.database_url)
            // The app's key-encryption key: the signing keys are sealed under it.
            .env("QRPARK_DATA_DIR", &app.state.config.data_dir)
            .output()
            .unwrap();
        (run, out)
    };
    if let Some(dir) = &cli {
        let (run, out) = cli_export(dir);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            std::fs::read_to_string(&out).unwrap() == jsonl,
            "the API's bytes"
        );
    }

    // An export that fails midway (here at a record it cannot write, past two thousand
    // sent) breaks the response off: no client takes what it got for a whole export.
    app.execute(
        "update session set currency = 'ZZZ' where audit_seq = (select max(audit_seq) from session)",
    )
    .await;
    for format in ["csv", "jsonl"] {
        let broken = app
            .client
            .get(format!(
                "{}/v1/audit/sessions?from={FROM}&to={TO}&format={format}",
                app.base
            ))
            .bearer_auth(auditor(&app))
            .send()
            .await
            .unwrap();
        assert_eq!(broken.status(), StatusCode::OK, "streaming had begun");
        assert!(
            broken.bytes().await.is_err(),
            "{format}: the body breaks off"
        );
    }
    // And the command line fails, leaving no file that looks like an export.
    if let Some(dir) = &cli {
        let _ = std::fs::remove_file(dir.0.join("export.jsonl"));
        let (run, out) = cli_export(dir);
        assert!(!run.status.success());
        assert!(String::from_utf8_lossy(&run.stderr).contains("ZZZ"));
        let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
        assert!(left.is_empty() && !out.exists(), "{left:?}");
    }
}

/// A stop stores its breakdown canonical, so the `session.stopped` event's `fee_sha256` is
/// the SHA-256 of the breakdown exactly as the export carries it.
async fn the_stop_event_hashes_the_breakdown_as_exported(app: TestApp) {
    use sha2::Digest;
    three_sessions(&app).await;
    let jsonl = export(&app, FROM, TO, "jsonl").await;
    let events: Vec<(String, String)> = match &app.db {
        qrpark::store::Db::Sqlite(pool) => sqlx::query_as(
            "select entity_id, payload from audit_event where kind = 'session.stopped'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        qrpark::store::Db::Postgres(pool) => sqlx::query_as(
            "select entity_id, payload from audit_event where kind = 'session.stopped'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    assert_eq!(events.len(), 3);
    for line in jsonl.lines().filter(|l| !l.contains("\"checkpoint\"")) {
        let record: Value = serde_json::from_str(line).unwrap();
        let (_, payload) = events
            .iter()
            .find(|(id, _)| record["session_id"] == id.as_str())
            .expect("the record's stop event");
        let payload: Value = serde_json::from_str(payload).unwrap();
        let fee = qrpark::domain::audit::canonical_json(&record["fee"]);
        assert_eq!(
            payload["fee_sha256"],
            qrpark::domain::audit::hex(&sha2::Sha256::digest(fee.as_bytes()))
        );
    }
}

/// A city subject a spreadsheet would run as a formula reaches the CSV neutralised (OWASP:
/// a leading quote, the cell quoted), the JSONL as it is, and both verify exactly.
async fn formula_cells_are_neutralised_and_still_verify(app: TestApp) {
    let op = app.operator("Formulas").await;
    let subjects = ["=HYPERLINK(\"http://evil.test\")", "+1+1", "-2", "@SUM(A1)"];
    let codes: Vec<String> = (1..=subjects.len()).map(|i| format!("F-{i}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (_, spaces) = parking_lot(&app, &op, &codes).await;
    for (i, (subject, (_, qr))) in subjects.iter().zip(&spaces).enumerate() {
        let driver = app.driver_token(subject);
        let started = start(&app, &driver, &format!("f{i}"), qr).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
        app.clock.advance(TimeDelta::minutes(30));
        let id = started.body["id"].as_str().unwrap();
        let stopped = app.stop(&driver, id).await;
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    }
    let csv = export(&app, FROM, TO, "csv").await;
    for cell in [
        "\"'=HYPERLINK(\"\"http://evil.test\"\")\"",
        "\"'+1+1\"",
        "\"'-2\"",
        "\"'@SUM(A1)\"",
    ] {
        assert!(csv.contains(&format!(",{cell},")), "{cell} not in {csv}");
    }
    // No cell of the body starts a formula.
    for line in csv.lines().skip(1) {
        for cell in line.split(',') {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell} in {line}");
        }
    }
    let keys = keys(&app).await;
    assert_eq!(verified_csv(&app, &csv, &keys).await, subjects.len() as u64);
    let jsonl = export(&app, FROM, TO, "jsonl").await;
    let drivers: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("checkpoint").is_none())
        .map(|v| v["driver"].clone())
        .collect();
    assert_eq!(drivers, subjects.map(Value::from).to_vec());
    assert_eq!(
        verify::verify(&jsonl, None, &keys, None).unwrap().records,
        subjects.len() as u64
    );
}
