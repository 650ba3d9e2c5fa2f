//! What operators may know of drivers: a pseudonym per operator, never the city identity;
//! auditors and the driver keep the subject.

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, TestOperator, both_backends};
use crate::sessions::{parking_lot, start};

both_backends!(operators_see_a_pseudonym_of_their_own_and_auditors_the_subject,);

/// The pseudonym `op` is shown for the driver `subject`.
pub fn pseudonym(app: &TestApp, op: &TestOperator, subject: &str) -> String {
    qrpark::domain::pseudonym::pseudonym(&app.state.pseudonym_key, op.id, subject)
}

async fn operators_see_a_pseudonym_of_their_own_and_auditors_the_subject(app: TestApp) {
    let (east, west) = (app.operator("East").await, app.operator("West").await);
    let (_, east_spaces) = parking_lot(&app, &east, &["E-1", "E-2"]).await;
    let (_, west_spaces) = parking_lot(&app, &west, &["W-1"]).await;
    let subject = "city|4711-ana";
    let driver = app.driver_token(subject);
    let other = app.driver_token("city|0815-ben");
    let mut started = Vec::new();
    for (key, token, qr) in [
        ("p1", &driver, &east_spaces[0].1),
        ("p2", &other, &east_spaces[1].1),
        ("p3", &driver, &west_spaces[0].1),
    ] {
        let answer = start(&app, token, key, qr).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        started.push(answer.body["id"].as_str().unwrap().to_owned());
    }

    let list = |op: &TestOperator| {
        let key = op.key.clone();
        let app = &app;
        async move {
            let answer = app.get("/v1/operator/sessions", Some(&key)).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            assert!(
                !answer.text.contains("4711"),
                "the subject leaks: {}",
                answer.text
            );
            answer.body["sessions"].as_array().unwrap().clone()
        }
    };
    let east_view = list(&east).await;
    let west_view = list(&west).await;
    let driver_of = |sessions: &[serde_json::Value], id: &str| {
        sessions
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["driver"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let east_ana = driver_of(&east_view, &started[0]);
    let east_ben = driver_of(&east_view, &started[1]);
    let west_ana = driver_of(&west_view, &started[2]);
    assert!(
        east_ana.starts_with("d_") && east_ana.len() == 34,
        "{east_ana}"
    );
    assert_eq!(east_ana, pseudonym(&app, &east, subject));
    assert_ne!(east_ana, east_ben, "two drivers, two pseudonyms");
    assert_ne!(
        east_ana, west_ana,
        "two operators cannot join their records"
    );
    // Stable: the same again, and the same in the stop answer.
    assert_eq!(driver_of(&list(&east).await, &started[0]), east_ana);
    app.clock.advance(TimeDelta::minutes(40));
    let stopped = app
        .call(
            Method::POST,
            &format!("/v1/operator/sessions/{}/stop", started[0]),
            Some(&east.key),
            Some(json!({"reason": "blocking the exit"})),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["driver"], east_ana.as_str());
    assert!(!stopped.text.contains("4711"), "{}", stopped.text);

    // The driver's own view, and the auditors' export, keep the subject.
    let own = app
        .get(&format!("/v1/sessions/{}", started[0]), Some(&driver))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let auditor = app.state.demo_idp.as_ref().unwrap().issue(
        "auditor-1",
        &["auditor"],
        "qrpark",
        std::time::Duration::from_secs(3600),
    );
    let export = app
        .get(
            "/v1/audit/sessions?from=2026-09-01T00:00:00Z&to=2026-10-01T00:00:00Z&format=jsonl",
            Some(&auditor),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    let record: serde_json::Value =
        serde_json::from_str(export.text.lines().next().unwrap()).unwrap();
    assert_eq!(record["driver"], subject);
}
