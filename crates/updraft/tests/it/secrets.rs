//! Connections, variables and secrets from the CLI: `connections add|get|list|delete|export|
//! import`, `variables import|export`, `rotate-fernet-key`, encryption at rest, `conn`
//! templates, environment connections and masking in task logs.

use serde_json::{json, Value};

use crate::fixture::{state_of, Home};

const KEY_1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const SECRET: &str = "hunter2-very-secret";

fn with_key(home: &Home, key: &str) {
    std::fs::write(
        home.path().join("updraft.toml"),
        format!("[core]\nfernet_key = \"{key}\"\n"),
    )
    .unwrap();
}

/// `(password, is_encrypted)` of a connection as the SQLite file holds it.
fn raw_password(home: &Home, conn_id: &str) -> (String, bool) {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    db.query_row(
        "SELECT password, is_encrypted FROM connection WHERE conn_id = ?1",
        [conn_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn fails(home: &Home, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(!out.status.success(), "updraft {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn connections_are_added_read_listed_and_deleted() {
    let home = Home::new();
    with_key(&home, KEY_1);
    let uri = format!("postgresql://etl:{SECRET}@db.example:5432/sales?sslmode=require");
    let out = home.ok(&["connections", "add", "db", "--conn-uri", &uri]);
    assert_eq!(
        out.trim(),
        "Successfully added `conn_id`=db : postgres://etl:***@db.example:5432/sales?sslmode=require"
    );
    let got = home.json(&["connections", "get", "db"]);
    assert_eq!(got["conn_type"], "postgres");
    assert_eq!(got["password"], SECRET);
    assert_eq!(got["extra"], r#"{"sslmode":"require"}"#);
    // Encrypted at rest.
    let (stored, encrypted) = raw_password(&home, "db");
    assert!(encrypted && !stored.contains(SECRET), "{stored}");

    home.ok(&[
        "connections",
        "add",
        "api",
        "--conn-type",
        "http",
        "--conn-host",
        "api.example",
        "--conn-password",
        "pw-12345",
        "--conn-extra",
        r#"{"api_key": "k-123456"}"#,
        "--conn-description",
        "the API",
    ]);
    home.ok(&[
        "connections",
        "add",
        "js",
        "--conn-json",
        r#"{"conn_type": "redis", "port": 6379}"#,
    ]);
    let list = home.json(&["connections", "list"]);
    let text = list.to_string();
    assert!(
        !text.contains(SECRET) && !text.contains("pw-12345") && !text.contains("k-123456"),
        "{text}"
    );
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conn_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["api", "db", "js"]);
    assert_eq!(list[0]["description"], "the API");
    assert_eq!(list[2]["port"], 6379);

    let err = fails(
        &home,
        &["connections", "add", "db", "--conn-uri", "mysql://h"],
    );
    assert!(err.contains("already exists"), "{err}");
    let err = fails(
        &home,
        &[
            "connections",
            "add",
            "x",
            "--conn-uri",
            "mysql://h",
            "--conn-host",
            "h",
        ],
    );
    assert!(
        err.contains("not compatible") && err.contains("--conn-host"),
        "{err}"
    );
    let err = fails(&home, &["connections", "add", "x"]);
    assert!(err.contains("--conn-type"), "{err}");
    let err = fails(
        &home,
        &[
            "connections",
            "add",
            "x",
            "--conn-uri",
            "mysql://h:notaport",
        ],
    );
    assert!(err.contains("port"), "{err}");
    assert!(fails(&home, &["connections", "get", "x"]).contains("not found"));

    home.ok(&["connections", "delete", "db"]);
    assert!(fails(&home, &["connections", "delete", "db"]).contains("Did not find"));
    assert_eq!(
        home.json(&["connections", "list"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn connections_export_and_import_in_every_format() {
    let home = Home::new();
    with_key(&home, KEY_1);
    let uri = format!("mysql://u:{SECRET}@h:3306/db");
    home.ok(&["connections", "add", "a", "--conn-uri", &uri]);
    home.ok(&[
        "connections",
        "add",
        "b",
        "--conn-type",
        "http",
        "--conn-host",
        "https://x.example",
        "--conn-extra",
        r#"{"k": 1}"#,
    ]);
    let before = home.json(&["connections", "list"]);
    for (file, extra) in [
        ("c.json", vec![]),
        ("c.yaml", vec![]),
        ("c.env", vec![]),
        ("j.env", vec!["--serialization-format", "json"]),
    ] {
        let path = home.path().join(file);
        let path = path.to_str().unwrap();
        let mut args = vec!["connections", "export", path];
        args.extend(extra);
        home.ok(&args);
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(SECRET), "{file}: {text}");
        home.ok(&["connections", "delete", "a"]);
        home.ok(&["connections", "delete", "b"]);
        home.ok(&["connections", "import", path]);
        assert_eq!(home.json(&["connections", "list"]), before, "{file}");
        assert_eq!(
            home.json(&["connections", "get", "a"])["password"],
            SECRET,
            "{file}"
        );
    }
    // Existing connections are left alone unless --overwrite.
    let path = home.path().join("new.json");
    std::fs::write(&path, r#"{"a": "mysql://other@h2"}"#).unwrap();
    let out = home.ok(&["connections", "import", path.to_str().unwrap()]);
    assert!(
        out.contains("Could not import connection a: connection already exists."),
        "{out}"
    );
    assert_eq!(home.json(&["connections", "get", "a"])["host"], "h");
    home.ok(&[
        "connections",
        "import",
        path.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(home.json(&["connections", "get", "a"])["host"], "h2");
    // Standard output.
    let out = home.ok(&["connections", "export", "-"]);
    let exported: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(exported["a"]["login"], "other");
}

#[test]
fn variables_import_and_export() {
    let home = Home::new();
    with_key(&home, KEY_1);
    home.ok(&["variables", "set", "existing", "old"]);
    let file = home.path().join("vars.json");
    std::fs::write(
        &file,
        json!({
            "plain": "text",
            "object": {"a": [1, 2]},
            "described": {"value": "v", "description": "what it is"},
            "existing": "new",
        })
        .to_string(),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let err = fails(&home, &["variables", "import", file, "-a", "fail"]);
    assert!(err.contains("existing"), "{err}");
    assert_eq!(home.ok(&["variables", "get", "existing"]).trim(), "old");
    assert_eq!(home.ok(&["variables", "list"]).matches("plain").count(), 0);
    let out = home.ok(&[
        "variables",
        "import",
        file,
        "--action-on-existing-key",
        "skip",
    ]);
    assert!(
        out.contains("3 of 4 variables successfully updated"),
        "{out}"
    );
    assert_eq!(home.ok(&["variables", "get", "existing"]).trim(), "old");
    home.ok(&["variables", "import", file]);
    assert_eq!(home.ok(&["variables", "get", "existing"]).trim(), "new");
    let object: Value = serde_json::from_str(&home.ok(&["variables", "get", "object"])).unwrap();
    assert_eq!(object, json!({"a": [1, 2]}));

    let out_file = home.path().join("out.json");
    let out = home.ok(&["variables", "export", out_file.to_str().unwrap()]);
    assert!(out.contains("4 variables successfully exported"), "{out}");
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(
        exported,
        json!({
            "plain": "text",
            "object": {"a": [1, 2]},
            "described": {"value": "v", "description": "what it is"},
            "existing": "new",
        })
    );
}

#[test]
fn rotating_the_fernet_key_re_encrypts_everything_with_the_new_key() {
    let home = Home::new();
    with_key(&home, KEY_1);
    let uri = format!("mysql://u:{SECRET}@h");
    home.ok(&["connections", "add", "db", "--conn-uri", &uri]);
    home.ok(&["variables", "set", "token", SECRET]);
    let (before, _) = raw_password(&home, "db");

    // Only the new key: the old values cannot be read.
    with_key(&home, KEY_2);
    let err = fails(&home, &["connections", "get", "db"]);
    assert!(err.contains("decrypt") || err.contains("fernet"), "{err}");

    with_key(&home, &format!("{KEY_2},{KEY_1}"));
    let out = home.ok(&["rotate-fernet-key"]);
    assert!(out.contains("1 connections and 1 variables"), "{out}");
    let (after, encrypted) = raw_password(&home, "db");
    assert!(encrypted && after != before);

    with_key(&home, KEY_2);
    assert_eq!(home.json(&["connections", "get", "db"])["password"], SECRET);
    assert_eq!(home.ok(&["variables", "get", "token"]).trim(), SECRET);

    std::fs::write(
        home.path().join("updraft.toml"),
        "[core]\nfernet_key = \"not-a-key\"\n",
    )
    .unwrap();
    let err = fails(&home, &["connections", "list"]);
    assert!(
        err.contains("core.fernet_key") && !err.contains("not-a-key"),
        "{err}"
    );
}

#[test]
fn templates_read_connections_and_task_logs_mask_their_secrets() {
    let home = Home::new();
    with_key(&home, KEY_1);
    let uri = format!("postgres://etl:{SECRET}@db.example:5432/sales");
    home.ok(&["connections", "add", "db", "--conn-uri", &uri]);
    home.ok(&["variables", "set", "api_token", "token-value-42"]);
    home.ok(&["variables", "set", "region", "eu-west-1"]);
    home.write_dag(
        "uses_conn.yaml",
        r#"
dag_id: uses_conn
tasks:
  - task_id: show
    bash_command: |
      echo "host={{ conn.db.host }} port={{ conn.db.port }} login={{ conn.db.login }}"
      echo "password={{ conn.db.password }}"
      echo "uri={{ conn.db.get_uri() }}"
      echo "token={{ var.value.api_token }} region={{ var.value.region }}"
      echo "env={{ conn.from_env.host }} {{ conn.from_env.password }} {{ conn.from_env.extra_dejson.api_key }}"
"#,
    );
    let out = home
        .command()
        .args(["dags", "test", "uses_conn", "--output", "json"])
        .env(
            "AIRFLOW_CONN_FROM_ENV",
            r#"{"conn_type": "http", "host": "env.example", "password": "env-password-7", "extra": {"api_key": "env-api-key-9"}}"#,
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let states: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&states, "show"), "success", "{states:#}");
    let run_id = states["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "uses_conn", run_id, "show"]);
    for secret in [SECRET, "token-value-42", "env-password-7", "env-api-key-9"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    for line in [
        "{stdout} host=db.example port=5432 login=etl",
        "{stdout} password=***",
        "{stdout} uri=postgres://etl:***@db.example:5432/sales",
        "{stdout} token=*** region=eu-west-1",
        "{stdout} env=env.example *** ***",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
}

#[test]
fn a_missing_connection_fails_the_task_with_its_name() {
    let home = Home::new();
    home.write_dag(
        "missing.yaml",
        "dag_id: missing\ntasks:\n  - task_id: t\n    bash_command: echo {{ conn.nowhere.host }}\n",
    );
    let out = home.run(&["dags", "test", "missing", "--output", "json"]);
    let states: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&states, "t"), "failed", "{states:#}");
    let log = home.ok(&[
        "tasks",
        "logs",
        "missing",
        states["run_id"].as_str().unwrap(),
        "t",
    ]);
    assert!(log.contains("connection `nowhere` is not defined"), "{log}");
}

#[test]
fn standalone_generates_a_fernet_key_once_and_encrypts_with_it() {
    let home = Home::new();
    std::fs::write(
        home.path().join("updraft.toml"),
        "# mine\n[core]\nparallelism = 4\n",
    )
    .unwrap();
    let mut standalone = home.standalone();
    standalone.sigterm();
    let config = std::fs::read_to_string(home.path().join("updraft.toml")).unwrap();
    assert!(
        config.starts_with("# mine\n[core]\nparallelism = 4\nfernet_key = \""),
        "{config}"
    );
    let table: toml::Table = config.parse().unwrap();
    let key = table["core"]["fernet_key"].as_str().unwrap().to_string();
    // The next start keeps it.
    let mut standalone = home.standalone();
    standalone.sigterm();
    let again: toml::Table = std::fs::read_to_string(home.path().join("updraft.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(again["core"]["fernet_key"].as_str(), Some(key.as_str()));
    let uri = format!("mysql://u:{SECRET}@h");
    home.ok(&["connections", "add", "db", "--conn-uri", &uri]);
    let (stored, encrypted) = raw_password(&home, "db");
    assert!(encrypted && !stored.contains(SECRET));
}
