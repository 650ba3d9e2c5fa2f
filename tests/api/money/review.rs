//! A delivery that gives up after 16 attempts goes to review, never to a reversal; the
//! payment office lists, retries and resolves with `qrpark settlement`, run as a process
//! against the test's database, and every decision is in the audit log.

use std::process::Output;

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::Value;

use super::{
    Gateway, Kind, Reply, assert_problem, deliver, fast, lot_of, park_two_hours, post_keyed,
    refund, session_view, with_gateway,
};
use crate::helpers::TestApp;
use crate::processes::harness::Shared;
use qrpark::settlement::outbox::{MAX_ATTEMPTS, backoff};

with_gateway!(given_up_deliveries_go_to_review_and_the_payment_office_decides: fast);

/// Runs `qrpark settlement ARGS` against the test's database, with the gateway configured
/// when `gateway` is given.
fn settlement(shared: &Shared, gateway: Option<&Gateway>, args: &[&str]) -> Output {
    let mut all = vec!["settlement"];
    all.extend_from_slice(args);
    let mut command = shared.command(&all);
    if let Some(gateway) = gateway {
        command.env("QRPARK_CITY_PAYMENTS_URL", &gateway.url);
    }
    command.output().expect("run qrpark settlement")
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs delivery rounds through every backoff until the outbox is empty; returns the
/// attempts made.
async fn deliver_until_done(app: &TestApp) -> usize {
    let mut attempts = 0;
    for round in 0..MAX_ATTEMPTS {
        let made = deliver(app).await;
        attempts += made;
        if made == 0 {
            break;
        }
        app.clock.advance(backoff(round));
    }
    attempts
}

async fn given_up_deliveries_go_to_review_and_the_payment_office_decides(
    app: TestApp,
    gateway: Gateway,
) {
    let op = app.operator("Review Parking").await;
    let qrs = lot_of(&app, &op, &["A-1", "A-2"]).await;
    let driver = app.driver_token("driver-1");
    let first = park_two_hours(&app, &driver, "park-1", &qrs[0]).await;
    let second = park_two_hours(&app, &driver, "park-2", &qrs[1]).await;
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let first_ref = first["settlement"]["reference"].as_str().unwrap();
    let second_ref = second["settlement"]["reference"].as_str().unwrap();
    let before = qrpark::store::ledger::totals(&app.db).await.unwrap();
    assert_eq!(before, vec![("CNY".to_owned(), 5000, 5000)]);

    // Both fail 16 times (503 and, the last time of one, a timeout after charging).
    let attempts = usize::try_from(MAX_ATTEMPTS).unwrap();
    gateway.script(
        Kind::Payment,
        std::iter::repeat_n(Reply::Fail(503), 2 * attempts - 1).chain([Reply::TimeOut(
            std::time::Duration::from_millis(3 * super::GATEWAY_TIMEOUT_MS),
        )]),
    );
    let began = app.now();
    let mut made = 0;
    for round in 0..MAX_ATTEMPTS {
        made += deliver(&app).await;
        let view = session_view(&app, &driver, first_id).await;
        let expected = if round + 1 < MAX_ATTEMPTS {
            "pending"
        } else {
            "review"
        };
        assert_eq!(
            view["settlement"]["status"],
            expected,
            "after attempt {}",
            round + 1
        );
        app.clock.advance(backoff(round));
    }
    assert_eq!(made, 2 * attempts);
    let waited = app.now() - began;
    assert!(
        waited >= TimeDelta::seconds(18_494),
        "the 15 waits add up to about 5 h 8 min: {waited}"
    );
    for id in [first_id, second_id] {
        let view = session_view(&app, &driver, id).await;
        assert_eq!(view["settlement"]["status"], "review", "{view}");
    }
    assert_eq!(deliver(&app).await, 0, "review is not retried by itself");
    // Never reversed: no posting since the stops, the driver owes nothing.
    assert_eq!(
        qrpark::store::ledger::totals(&app.db).await.unwrap(),
        before
    );
    let owed = app.get("/v1/me/arrears", Some(&driver)).await;
    assert_eq!(owed.body["items"], serde_json::json!([]));
    let reviews = app.audit_payloads("settlement.review").await;
    assert_eq!(reviews.len(), 2);
    assert!(
        reviews[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 16 attempts"),
        "{reviews:?}"
    );
    // The driver cannot pay it again: it may have been charged.
    let pay = post_keyed(
        &app,
        &format!("/v1/me/arrears/{first_id}/pay"),
        &driver,
        Some("pay-1"),
        None,
    )
    .await;
    assert_problem(&pay, StatusCode::CONFLICT, "settlement_in_review");
    let charged: Vec<&str> = [first_ref, second_ref]
        .into_iter()
        .filter(|r| gateway.did(r))
        .collect();
    assert_eq!(charged.len(), 1, "the timeout charged one of them");
    let (charged_ref, uncharged_ref) = if charged[0] == first_ref {
        (first_ref, second_ref)
    } else {
        (second_ref, first_ref)
    };

    // The payment office.
    let shared = Shared::of(&app).await;
    let listed = succeeded(&settlement(&shared, None, &["list"]));
    assert!(
        listed.contains(first_ref) && listed.contains(second_ref),
        "{listed}"
    );
    let listed = succeeded(&settlement(
        &shared,
        None,
        &["list", "--status", "review", "--json"],
    ));
    let lines: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == "review" && l["attempts"] == 16)
    );

    // Retry needs the gateway: without it, it would settle unpaid.
    let refused = settlement(&shared, None, &["retry", charged_ref]);
    assert!(!refused.status.success());
    // With it: the same round and key, and the gateway charges nothing more.
    succeeded(&settlement(
        &shared,
        Some(&gateway),
        &["retry", charged_ref],
    ));
    let sent = app.audit_payloads("settlement.sent_again").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["by"], "payment_office");
    assert_eq!(sent[0]["from"], "review");
    assert_eq!(sent[0]["payment_round"], 1);
    // The command line stamps its writes with the system clock: catch up with it.
    app.clock.set(chrono::Utc::now() + TimeDelta::seconds(1));
    let driver = app.driver_token("driver-1");
    assert_eq!(deliver(&app).await, 1);
    assert!(
        gateway
            .keys_for(Kind::Payment, charged_ref)
            .iter()
            .all(|k| k == charged_ref)
    );

    // The other was never charged: resolved as arrears, with a note.
    let empty = settlement(
        &shared,
        None,
        &["resolve", uncharged_ref, "--as", "arrears", "--note", ""],
    );
    assert!(!empty.status.success(), "a note is required");
    let wrong = settlement(
        &shared,
        None,
        &["resolve", uncharged_ref, "--as", "refunded", "--note", "x"],
    );
    assert!(!wrong.status.success(), "a payment is not refunded");
    succeeded(&settlement(
        &shared,
        None,
        &[
            "resolve",
            uncharged_ref,
            "--as",
            "arrears",
            "--note",
            "the gateway's report shows no charge",
        ],
    ));
    let again = settlement(
        &shared,
        None,
        &[
            "resolve",
            uncharged_ref,
            "--as",
            "settled",
            "--note",
            "again",
        ],
    );
    assert!(!again.status.success(), "only review is resolved");
    let resolved = app.audit_payloads("settlement.resolved").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["as"], "arrears");
    assert_eq!(resolved[0]["note"], "the gateway's report shows no charge");
    assert_eq!(resolved[0]["reference"], uncharged_ref);
    let owed = app.get("/v1/me/arrears", Some(&driver)).await;
    assert_eq!(
        owed.body["items"][0]["reference"], uncharged_ref,
        "{}",
        owed.text
    );
    let (charged_id, uncharged_id) = if charged_ref == first_ref {
        (first_id, second_id)
    } else {
        (second_id, first_id)
    };
    let view = session_view(&app, &driver, charged_id).await;
    assert_eq!(view["settlement"]["status"], "settled");
    let view = session_view(&app, &driver, uncharged_id).await;
    assert_eq!(view["settlement"]["status"], "arrears");

    // A refund whose delivery gives up goes to review too, and is resolved as refunded.
    gateway.script(
        Kind::Refund,
        std::iter::repeat_n(Reply::Fail(503), attempts),
    );
    let made = refund(&app, &op, charged_id, Some("r-1"), "5.00", "barrier stuck").await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let refund_ref = made.body["reference"].as_str().unwrap().to_owned();
    assert_eq!(deliver_until_done(&app).await, attempts);
    let listed = succeeded(&settlement(
        &shared,
        None,
        &["list", "--status", "review", "--json"],
    ));
    assert!(listed.contains(&refund_ref), "{listed}");
    succeeded(&settlement(
        &shared,
        None,
        &[
            "resolve",
            &refund_ref,
            "--as",
            "refunded",
            "--note",
            "paid back at the desk",
        ],
    ));
    let resolved = app.audit_payloads("refund.resolved").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["to"], "refunded");
    assert_eq!(resolved[0]["note"], "paid back at the desk");
    let view = session_view(&app, &driver, charged_id).await;
    assert_eq!(view["refunds"][0]["status"], "refunded", "{view}");
    assert_eq!(view["settlement"]["refunded"], "5.00");

    assert_eq!(gateway.done(Kind::Payment), 1, "charged once in all");
    assert_eq!(gateway.done(Kind::Refund), 0);
    super::print_reconciliation("after review and the payment office", &app.db).await;
}
