//! The binary itself: operator keys from the command line, configuration errors, serve's
//! refusal to start without a city identity provider.

use std::process::{Command, Output};

use qrpark::identity::operator_key;
use qrpark::store::{Db, operators};

use crate::helpers::TempDir;

fn qrpark(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args(args)
        .current_dir(&dir.0)
        .env_remove("QRPARK_DATABASE_URL")
        .env_remove("QRPARK_BIND")
        .env(
            "QRPARK_DATABASE_URL",
            format!("sqlite://{}", dir.0.join("cli.db").display()),
        )
        .output()
        .expect("run qrpark")
}

#[tokio::test]
async fn operator_create_json_and_key_rotation() {
    let dir = TempDir::new();
    let out = qrpark(&dir, &["operator", "create", "Metro Parking", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(fields, vec!["api_key", "id"]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(operator_key::looks_like_key(&key));

    let again = qrpark(&dir, &["operator", "create", "Metro Parking"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let issued = qrpark(&dir, &["operator", "key", "Metro Parking", "--json"]);
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let issued: serde_json::Value = serde_json::from_slice(&issued.stdout).unwrap();
    let second = issued["api_key"].as_str().unwrap().to_owned();
    assert_ne!(second, key);
    let key_id = issued["key_id"].as_str().unwrap().to_owned();

    let url = format!("sqlite://{}", dir.0.join("cli.db").display());
    let db = Db::connect(&url, 1).await.unwrap();
    assert!(
        operators::authenticate(&db, &operator_key::hash(&second))
            .await
            .unwrap()
            .is_some()
    );

    let id = created["id"].as_str().unwrap();
    let revoked = qrpark(&dir, &["operator", "key", id, "--revoke", &key_id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        operators::authenticate(&db, &operator_key::hash(&second))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        operators::authenticate(&db, &operator_key::hash(&key))
            .await
            .unwrap()
            .is_some()
    );
    db.close().await;
}

#[test]
fn bad_settings_are_named() {
    let dir = TempDir::new();
    let out = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args(["migrate"])
        .current_dir(&dir.0)
        .env("QRPARK_BIND", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bind"), "{stderr}");

    let out = qrpark(&dir, &["--database-url", "mysql://x/y", "migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
}

#[test]
fn flags_win_over_environment_and_file() {
    let dir = TempDir::new();
    std::fs::write(
        dir.0.join("qrpark.toml"),
        "database_url = \"mysql://from-file\"\n",
    )
    .unwrap();
    // The file alone is used...
    let out = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .arg("migrate")
        .current_dir(&dir.0)
        .env_remove("QRPARK_DATABASE_URL")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
    // ...the environment beats the file...
    let env_db = format!("sqlite://{}", dir.0.join("env.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .arg("migrate")
        .current_dir(&dir.0)
        .env("QRPARK_DATABASE_URL", &env_db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.0.join("env.db").exists());
    // ...and a flag beats both.
    let flag_db = format!("sqlite://{}", dir.0.join("flag.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args(["--database-url", &flag_db, "migrate"])
        .current_dir(&dir.0)
        .env("QRPARK_DATABASE_URL", &env_db)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.0.join("flag.db").exists());
}

#[test]
fn serve_refuses_to_start_without_city_identity() {
    let dir = TempDir::new();
    let out = qrpark(&dir, &["serve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("city_jwks") && stderr.contains("QRPARK_CITY_JWKS"),
        "{stderr}"
    );
}

#[test]
fn demo_serves_and_stops_gracefully_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args(["--bind", "127.0.0.1:0", "demo"])
        .current_dir(&dir.0)
        .env(
            "QRPARK_DATABASE_URL",
            format!("sqlite://{}", dir.0.join("demo.db").display()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("qrpark demo is running at ")
                .map(str::to_owned)
        })
        .expect("the demo prints its URL");
    let rest: Vec<String> = lines.by_ref().take(12).map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("Demo operator API key: qrpk_")),
        "{rest:?}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, reqwest::StatusCode::OK);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "qrpark exited with {exit} after SIGTERM");
}

#[test]
fn tariff_check_names_every_problem_and_summarises_a_good_tariff() {
    let dir = TempDir::new();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/tariffs/beijing-on-street.json"
    );
    let out = qrpark(&dir, &["tariff", "check", fixture]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid") && stdout.contains("CNY"),
        "{stdout}"
    );

    let bad = dir.0.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"currency":"CNY","rules":[{"name":"a","price":{"flat":1}},{"name":"a","from":"7:00","price":{"free":true}}]}"#,
    )
    .unwrap();
    let out = qrpark(&dir, &["tariff", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for path in [
        "$.rules[0].price.flat:",
        "$.rules[1].name:",
        "$.rules[1].from:",
    ] {
        assert!(stdout.contains(path), "{path} missing from {stdout}");
    }
}

#[test]
fn quote_prints_the_breakdown() {
    let dir = TempDir::new();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/tariffs/beijing-on-street.json"
    );
    // Local times in the lot's zone; the same as the spec's 10:00-12:00 example: 25.00.
    let args = [
        "quote",
        "--tariff",
        fixture,
        "--timezone",
        "Asia/Shanghai",
        "--start",
        "2026-09-29T10:00",
        "--end",
        "2026-09-29T12:00",
    ];
    let out = qrpark(&dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("day") && stdout.contains("2026-09-29T10:00:00+08:00"),
        "{stdout}"
    );
    let total = stdout.lines().last().unwrap();
    assert!(
        total.contains("total") && total.contains("25.00 CNY"),
        "{total}"
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = qrpark(&dir, &json_args);
    let fee: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fee["total"], "25.00");

    // A local time inside the spring-forward gap does not exist.
    let gap = qrpark(
        &dir,
        &[
            "quote",
            "--tariff",
            fixture,
            "--timezone",
            "Europe/Berlin",
            "--start",
            "2026-03-29T02:30",
            "--end",
            "2026-03-29T04:00",
        ],
    );
    assert!(!gap.status.success());
    assert!(String::from_utf8_lossy(&gap.stderr).contains("does not exist"));
}

#[tokio::test]
async fn qr_sheet_writes_every_space_of_a_lot() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("cli.db").display());
    let db = Db::connect(&url, 2).await.unwrap();
    db.migrate().await.unwrap();
    let config = qrpark::config::Config {
        database_url: url,
        // Where the command line below finds the key-encryption key (its working folder).
        data_dir: dir.0.join("qrpark-data"),
        ..Default::default()
    };
    let state = qrpark::cli::serve::state(config, db.clone()).await.unwrap();
    let seeded = qrpark::cli::demo::seed(&state).await.unwrap();
    db.close().await;

    let out = dir.0.join("sheet.pdf");
    let run = qrpark(
        &dir,
        &[
            "qr-sheet",
            &seeded.lot_id.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let pdf = std::fs::read(&out).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let text = crate::helpers::pdf_text(&pdf);
    for code in ["A-001", "A-006", "B-002"] {
        assert!(text.contains(code), "{code} missing");
    }
    let missing = qrpark(
        &dir,
        &[
            "qr-sheet",
            &uuid::Uuid::now_v7().to_string(),
            "--out",
            "x.pdf",
        ],
    );
    assert!(!missing.status.success());
}

#[tokio::test]
async fn audit_plate_prints_the_keyed_hash_the_chain_holds() {
    let dir = TempDir::new();
    let migrated = qrpark(&dir, &["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let out = qrpark(&dir, &["audit", "plate", "沪a 123-45"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let (plate, hmac) = line.trim_end().split_once('\t').expect("plate TAB hash");
    assert_eq!(plate, "沪A12345");
    let url = format!("sqlite://{}", dir.0.join("cli.db").display());
    let db = Db::connect(&url, 1).await.unwrap();
    let kek = qrpark::secrets::Kek::read(&dir.0.join("qrpark-data/key-encryption-key")).unwrap();
    let key = qrpark::secrets::server_secret(&db, &kek, qrpark::secrets::PLATE_KEY)
        .await
        .unwrap();
    db.close().await;
    let expected = qrpark::domain::plate::Plate::parse("沪A12345")
        .unwrap()
        .keyed_hash(&key);
    assert_eq!(hmac, qrpark::domain::audit::hex(&expected));
    let refused = qrpark(&dir, &["audit", "plate", "not a plate!"]);
    assert!(!refused.status.success());
}

/// `qrpark ARGS` with a city identity configured, so that `serve` gets past that check.
fn qrpark_with_city(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let clock = std::sync::Arc::new(qrpark::clock::SystemClock);
    let idp = qrpark::identity::demo_idp::DemoIdp::generate(clock);
    let jwks = dir.0.join("city-jwks.json");
    std::fs::write(&jwks, serde_json::to_string(&idp.jwks()).unwrap()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_qrpark"));
    command
        .args(args)
        .current_dir(&dir.0)
        .env_remove("QRPARK_PUBLIC_URL")
        .env(
            "QRPARK_DATABASE_URL",
            format!("sqlite://{}", dir.0.join("cli.db").display()),
        )
        .env("QRPARK_BIND", "127.0.0.1:0")
        .env("QRPARK_CITY_JWKS", &jwks)
        .env(
            "QRPARK_CITY_ISSUER",
            qrpark::identity::demo_idp::DemoIdp::ISSUER,
        );
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run qrpark")
}

#[test]
fn urls_crossing_the_network_must_be_https() {
    let dir = TempDir::new();
    for (setting, value) in [
        (
            "QRPARK_CITY_PAYMENTS_URL",
            "http://pay.city.example/settlements",
        ),
        (
            "QRPARK_CITY_LOGIN_URL",
            "http://login.city.example/authorize",
        ),
    ] {
        let out = qrpark_with_city(&dir, &["migrate"], &[(setting, value)]);
        assert!(!out.status.success(), "{setting}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = setting.trim_start_matches("QRPARK_").to_lowercase();
        assert!(
            stderr.contains(&name) && stderr.contains("https://"),
            "{stderr}"
        );
        // On loopback, plain http is fine (a gateway stand-in on the same machine).
        let local = value
            .replace("pay.city.example", "127.0.0.1:9")
            .replace("login.city.example", "localhost");
        let out = qrpark_with_city(&dir, &["migrate"], &[(setting, &local)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `serve` prints its public URL into QR codes: https, unless on loopback.
    let out = qrpark_with_city(
        &dir,
        &["serve"],
        &[("QRPARK_PUBLIC_URL", "http://parking.example")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("public_url") && stderr.contains("https://"),
        "{stderr}"
    );
    // Bound to every interface without a public URL, the default http://0.0.0.0:... is refused.
    let out = qrpark_with_city(&dir, &["serve"], &[("QRPARK_BIND", "0.0.0.0:0")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("QRPARK_PUBLIC_URL"), "{stderr}");
}

/// The demo operator and its key, as fixtures/demo.json publishes them.
fn demo_operator() -> (String, String) {
    let demo: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/demo.json")).unwrap();
    (
        demo["operator"]["name"].as_str().unwrap().to_owned(),
        demo["operator"]["api_key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn serve_refuses_the_published_demo_key_until_it_is_revoked() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("cli.db").display());
    let db = Db::connect(&url, 1).await.unwrap();
    db.migrate().await.unwrap();
    let (name, key) = demo_operator();
    let (operator, demo_key) =
        operators::create(&db, &name, &operator_key::hash(&key), chrono::Utc::now())
            .await
            .unwrap();

    let out = qrpark_with_city(&dir, &["serve"], &[]);
    assert!(
        !out.status.success(),
        "serve started with the demo key valid"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fixtures/demo.json"), "{stderr}");
    let revoke = format!(
        "qrpark operator key {} --revoke {}",
        operator.operator_id, demo_key.operator_key_id
    );
    assert!(stderr.contains(&revoke), "{stderr}");

    // The command it prints does the job.
    let args: Vec<&str> = revoke.split(' ').skip(1).collect();
    let out = qrpark(&dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    qrpark::cli::demo::refuse_published_key(&db)
        .await
        .expect("no published key opens the database any more");
}

#[test]
fn demo_refuses_a_database_with_other_operators() {
    let dir = TempDir::new();
    let out = qrpark(&dir, &["operator", "create", "Metro Parking"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_qrpark"))
        .args(["--bind", "127.0.0.1:0", "demo"])
        .current_dir(&dir.0)
        .env(
            "QRPARK_DATABASE_URL",
            format!("sqlite://{}", dir.0.join("cli.db").display()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let began = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("`qrpark demo` started on a database with another operator");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("other than the demo") && stderr.contains("Metro Parking"),
        "{stderr}"
    );
}
