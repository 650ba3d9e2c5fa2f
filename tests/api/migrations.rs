//! Migrations that move data: a database written by an older qrpark is brought forward
//! without losing or inventing anything.

use chrono::{DateTime, TimeDelta, Utc};
use qrpark::store::Db;
use uuid::Uuid;

use crate::helpers::{TempDir, empty_postgres};

/// A settlement as qrpark before migration 0009 left it, with its ledger entries.
struct Legacy {
    status: &'static str,
    last_error: Option<&'static str>,
    amount_minor: i64,
    /// Whether the refusal reversed its entries (the old `failed`).
    reversed: bool,
}

const LEGACY: [Legacy; 6] = [
    Legacy {
        status: "settled",
        last_error: None,
        amount_minor: 2500,
        reversed: false,
    },
    Legacy {
        status: "pending",
        last_error: Some("gateway answered 503 Service Unavailable"),
        amount_minor: 1000,
        reversed: false,
    },
    Legacy {
        status: "failed",
        last_error: Some("gateway answered 422 Unprocessable Entity"),
        amount_minor: 700,
        reversed: true,
    },
    Legacy {
        status: "failed",
        last_error: Some("gave up after 16 attempts: gateway unreachable"),
        amount_minor: 300,
        reversed: true,
    },
    Legacy {
        status: "settled",
        last_error: None,
        amount_minor: 0,
        reversed: false,
    },
    // A free stay sent to the gateway, which refused to charge 0.00.
    Legacy {
        status: "failed",
        last_error: Some("gateway answered 422 Unprocessable Entity"),
        amount_minor: 0,
        reversed: false,
    },
];

/// Runs one statement with its binds on whichever backend `db` is.
macro_rules! exec {
    ($db:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        match $db {
            Db::Sqlite(pool) => {
                sqlx::query($sql)$(.bind($bind))*.execute(pool).await.map(|_| ())
            }
            Db::Postgres(pool) => {
                sqlx::query($sql)$(.bind($bind))*.execute(pool).await.map(|_| ())
            }
        }
        .expect($sql)
    };
}

/// The ids of what a legacy session needs: operator, lot, space and tariff.
struct Parking {
    operator: Uuid,
    lot: Uuid,
    space: Uuid,
    tariff: Uuid,
}

/// Writes an operator, a lot, a space and a tariff, as every schema since 0004 holds them.
async fn write_parking(db: &Db, at: DateTime<Utc>) -> Parking {
    let p = Parking {
        operator: Uuid::now_v7(),
        lot: Uuid::now_v7(),
        space: Uuid::now_v7(),
        tariff: Uuid::now_v7(),
    };
    exec!(
        db,
        "insert into operator (operator_id, name, created_at) values ($1, 'Old', $2)",
        p.operator,
        at
    );
    exec!(
        db,
        "insert into lot (lot_id, operator_id, name, timezone, currency, minor_unit, \
         created_at, updated_at) values ($1, $2, 'Old lot', 'Asia/Shanghai', 'CNY', 2, $3, $3)",
        p.lot,
        p.operator,
        at
    );
    exec!(
        db,
        "insert into space (space_id, lot_id, code, created_at, updated_at) \
         values ($1, $2, 'A-1', $3, $3)",
        p.space,
        p.lot,
        at
    );
    exec!(
        db,
        "insert into tariff (tariff_id, lot_id, version, document, currency, effective_from, \
         created_at) values ($1, $2, 1, '{}', 'CNY', $3, $3)",
        p.tariff,
        p.lot,
        at
    );
    p
}

/// Writes an operator, a lot, a space, a tariff and one stopped session per legacy
/// settlement, as the schema of migration 0008 holds them.
async fn write_legacy(db: &Db, at: DateTime<Utc>) -> (Uuid, Vec<Uuid>) {
    let Parking {
        operator,
        lot,
        space,
        tariff,
    } = write_parking(db, at).await;
    let mut settlements = Vec::new();
    for (n, legacy) in LEGACY.iter().enumerate() {
        let session = Uuid::now_v7();
        let settlement = Uuid::now_v7();
        let seq = i64::try_from(n).unwrap() + 1;
        let started = at + TimeDelta::hours(i64::try_from(n).unwrap());
        let ended = started + TimeDelta::minutes(30);
        exec!(
            db,
            "insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id, \
             tariff_version, currency, status, started_at, ended_at, fee_minor, fee_lines, \
             created_at, updated_at, audit_seq, audit_hash, ended_by) \
             values ($1, $2, $3, $4, 'driver-1', $5, 1, 'CNY', 'stopped', $6, $7, $8, '{}', \
             $6, $7, $9, $10, 'driver')",
            session,
            lot,
            space,
            operator,
            tariff,
            started,
            ended,
            legacy.amount_minor,
            seq,
            vec![u8::try_from(n).unwrap(); 32]
        );
        exec!(
            db,
            "insert into settlement (settlement_id, session_id, reference, driver, operator_id, \
             currency, amount_minor, status, attempts, last_error, created_at, updated_at, \
             settled_at) values ($1, $2, $3, 'driver-1', $4, 'CNY', $5, $6, 1, $7, $8, $8, $9)",
            settlement,
            session,
            format!("QRP-OLD{n}"),
            operator,
            legacy.amount_minor,
            legacy.status,
            legacy.last_error,
            ended,
            (legacy.status == "settled").then_some(ended)
        );
        // The old postings: driver debited, operator credited; a refusal reversed both.
        let mut entries = vec![
            ("driver:driver-1".to_owned(), legacy.amount_minor, 0),
            (format!("operator:{operator}"), 0, legacy.amount_minor),
        ];
        if legacy.reversed {
            entries.push(("driver:driver-1".to_owned(), 0, legacy.amount_minor));
            entries.push((format!("operator:{operator}"), legacy.amount_minor, 0));
        }
        for (account, debit, credit) in entries.into_iter().filter(|_| legacy.amount_minor > 0) {
            exec!(
                db,
                "insert into ledger_entry (ledger_entry_id, settlement_id, account, currency, \
                 debit_minor, credit_minor, created_at) values ($1, $2, $3, 'CNY', $4, $5, $6)",
                Uuid::now_v7(),
                settlement,
                account,
                debit,
                credit,
                ended
            );
        }
        settlements.push(settlement);
    }
    (operator, settlements)
}

/// Migration 0009: a refusal of before (`failed`, reversed) is owed again as arrears, a
/// delivery that gave up goes to review, and the old accounts' balances move to the four
/// new ones, so the books reconcile with the states.
async fn money_migration_keeps_what_is_owed(db: Db) {
    db.migrate_until(8).await.expect("migrate to 0008");
    let at = "2026-09-01T02:00:00Z".parse().unwrap();
    let (operator, settlements) = write_legacy(&db, at).await;
    db.migrate().await.expect("migrate to the latest");

    let mut states = Vec::new();
    for id in &settlements {
        let s = qrpark::store::settlements::get(&db, *id)
            .await
            .unwrap()
            .unwrap();
        states.push((
            s.status.as_str(),
            s.arrears_since.is_some(),
            s.refunded_minor,
        ));
    }
    assert_eq!(
        states,
        vec![
            ("settled", false, 0),
            ("pending", false, 0),
            ("arrears", true, 0),
            ("review", false, 0),
            ("settled", false, 0),
            ("settled", false, 0),
        ]
    );
    let books = qrpark::store::ledger::reconcile(&db).await.unwrap();
    assert!(books.problems().is_empty(), "{:#?}", books.problems());
    let balance = |name: &str| {
        books
            .accounts
            .iter()
            .find(|a| a.account == name)
            .map(|a| a.balance)
    };
    assert_eq!(balance("driver_receivable:driver-1"), Some(700));
    assert_eq!(balance("gateway_clearing"), Some(2500 + 1000 + 300));
    assert_eq!(
        balance(&format!("operator_revenue:{operator}")),
        Some(-(2500 + 1000 + 700 + 300))
    );
    assert_eq!(balance("driver:driver-1"), Some(0), "old accounts closed");
    assert_eq!(balance(&format!("operator:{operator}")), Some(0));
    db.close().await;
}

#[tokio::test]
async fn sqlite_money_migration_keeps_what_is_owed() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("old.db").display());
    let db = Db::connect(&url, 2).await.expect("open SQLite");
    money_migration_keeps_what_is_owed(db).await;
}

#[tokio::test]
async fn postgres_money_migration_keeps_what_is_owed() {
    if let Some((db, _)) = empty_postgres().await {
        money_migration_keeps_what_is_owed(db).await;
    }
}

/// A chain event as written before migration 0012, hashed as qrpark hashes it.
fn legacy_event(
    seq: i64,
    at: DateTime<Utc>,
    kind: &str,
    entity_id: Uuid,
    prev: &[u8; 32],
) -> (qrpark::domain::audit::Event, [u8; 32]) {
    let event = qrpark::domain::audit::Event {
        seq,
        at,
        kind: kind.to_owned(),
        entity_id: entity_id.to_string(),
        payload: serde_json::json!({ "id": entity_id, "seq": seq }),
    };
    let hash = event.hash(prev);
    (event, hash)
}

/// Migration 0012: the chain sealed before it, its head and the chain places sessions and
/// violations hold stay as they were, the schema still refuses to change them, and the
/// sealer chains new events on after the old head.
async fn sealer_migration_keeps_the_sealed_chain(db: Db) {
    db.migrate_until(11).await.expect("migrate to 0011");
    let at: DateTime<Utc> = "2026-09-01T02:00:00Z".parse().unwrap();
    let Parking {
        operator,
        lot,
        space,
        tariff,
    } = write_parking(&db, at).await;
    let (session, violation) = (Uuid::now_v7(), Uuid::now_v7());
    let mut prev = qrpark::domain::audit::GENESIS;
    let mut hashes = Vec::new();
    for (seq, kind, entity) in [
        (1, "operator.created", operator),
        (2, "session.stopped", session),
        (3, "violation.recorded", violation),
    ] {
        let (event, hash) = legacy_event(seq, at + TimeDelta::minutes(seq), kind, entity, &prev);
        exec!(
            &db,
            "insert into audit_event (seq, at, kind, entity_id, payload, prev_hash, hash) \
             values ($1, $2, $3, $4, $5, $6, $7)",
            event.seq,
            event.at,
            event.kind.clone(),
            event.entity_id.clone(),
            qrpark::domain::audit::canonical_json(&event.payload),
            prev.to_vec(),
            hash.to_vec()
        );
        prev = hash;
        hashes.push(hash);
    }
    let head_at = at + TimeDelta::minutes(3);
    exec!(
        &db,
        "update audit_head set seq = 3, hash = $1, at = $2 where id = 1",
        prev.to_vec(),
        head_at
    );
    exec!(
        &db,
        "insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id, \
         tariff_version, currency, status, started_at, ended_at, fee_minor, fee_lines, \
         created_at, updated_at, audit_seq, audit_hash, ended_by) \
         values ($1, $2, $3, $4, 'driver-1', $5, 1, 'CNY', 'stopped', $6, $7, 0, '{}', \
         $6, $7, 2, $8, 'driver')",
        session,
        lot,
        space,
        operator,
        tariff,
        at,
        at + TimeDelta::minutes(2),
        hashes[1].to_vec()
    );
    exec!(
        &db,
        "insert into violation (violation_id, space_id, lot_id, operator_id, plate, warden, \
         observed_at, status_at_observation, audit_seq, created_at) \
         values ($1, $2, $3, $4, 'AB123', 'warden-1', $5, 'unpaid', 3, $5)",
        violation,
        space,
        lot,
        operator,
        at + TimeDelta::minutes(3)
    );

    db.migrate().await.expect("migrate to the latest");

    macro_rules! one {
        ($sql:expr) => {
            match &db {
                Db::Sqlite(pool) => sqlx::query_as($sql).fetch_one(pool).await,
                Db::Postgres(pool) => sqlx::query_as($sql).fetch_one(pool).await,
            }
            .expect($sql)
        };
    }
    let head: (i64, Vec<u8>, DateTime<Utc>) =
        one!("select seq, hash, at from audit_head where id = 1");
    assert_eq!(head, (3, prev.to_vec(), head_at), "the head as it was");
    let placed: (Option<i64>, Option<Vec<u8>>, Option<i64>) =
        one!("select audit_seq, audit_hash, audit_pending from session");
    assert_eq!(placed, (Some(2), Some(hashes[1].to_vec()), None));
    let placed: (Option<i64>, Option<i64>) = one!("select audit_seq, audit_pending from violation");
    assert_eq!(placed, (Some(3), None));
    let refused = |sql: &'static str| {
        let db = db.clone();
        async move {
            let outcome = match &db {
                Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
                Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            };
            assert!(outcome.is_err(), "{sql} was accepted");
        }
    };
    // Still records: a violation changes in nothing, its chain place included; a stopped
    // session keeps a place.
    refused("update violation set note = 'changed'").await;
    refused("update violation set audit_seq = 9").await;
    refused("update violation set audit_seq = null").await;
    refused("update session set audit_seq = null").await;

    // A change made now is chained on after the old head by the sealer.
    let key = qrpark::identity::operator_key::generate();
    qrpark::store::operators::create(&db, "New", &key.hash, head_at + TimeDelta::minutes(1))
        .await
        .unwrap();
    let sealed = qrpark::store::audit::seal_pending(&db).await.unwrap();
    assert_eq!(sealed, 1);
    let next: (i64, Vec<u8>, String) =
        one!("select seq, prev_hash, kind from audit_event where seq = 4");
    assert_eq!(next, (4, prev.to_vec(), "operator.created".to_owned()));
    db.close().await;
}

#[tokio::test]
async fn sqlite_sealer_migration_keeps_the_sealed_chain() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("old.db").display());
    let db = Db::connect(&url, 2).await.expect("open SQLite");
    sealer_migration_keeps_the_sealed_chain(db).await;
}

#[tokio::test]
async fn postgres_sealer_migration_keeps_the_sealed_chain() {
    if let Some((db, _)) = empty_postgres().await {
        sealer_migration_keeps_the_sealed_chain(db).await;
    }
}
