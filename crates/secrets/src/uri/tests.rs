//! The URI and JSON forms against what Airflow reads and writes.

use super::*;

fn conn(f: impl FnOnce(&mut ConnectionRecord)) -> ConnectionRecord {
    let mut c = ConnectionRecord {
        conn_id: "c".into(),
        ..ConnectionRecord::default()
    };
    f(&mut c);
    c
}

#[test]
fn a_full_uri_reads_into_every_field() {
    let c = from_uri(
        "c",
        "mysql://login:pass%2Fword%40x@Db.Example.COM:3306/my%20schema?charset=utf8&ssl=",
    )
    .unwrap();
    assert_eq!(
        c,
        conn(|c| {
            c.conn_type = "mysql".into();
            c.login = Some("login".into());
            c.password = Some("pass/word@x".into());
            // Python lower-cases host names.
            c.host = Some("db.example.com".into());
            c.port = Some(3306);
            c.schema = Some("my schema".into());
            c.extra = Some(r#"{"charset":"utf8","ssl":""}"#.into());
        })
    );
}

#[test]
fn conn_type_is_normalized_and_a_protocol_stays_with_the_host() {
    let c = from_uri("c", "google-cloud-platform://").unwrap();
    assert_eq!(c.conn_type, "google_cloud_platform");
    assert_eq!(c.host, None);
    assert_eq!(
        from_uri("c", "postgresql://h").unwrap().conn_type,
        "postgres"
    );
    let c = from_uri("c", "http://https://user:pw@api.example:8443/v1").unwrap();
    assert_eq!(c.conn_type, "http");
    assert_eq!(c.host.as_deref(), Some("https://api.example"));
    assert_eq!(c.port, Some(8443));
    assert_eq!(c.schema.as_deref(), Some("v1"));
    // A URL in the query is not a protocol.
    let c = from_uri("c", "http://h/?next=http://other").unwrap();
    assert_eq!(c.host.as_deref(), Some("h"));
    assert_eq!(c.extra.as_deref(), Some(r#"{"next":"http://other"}"#));
}

#[test]
fn extra_as_a_whole_and_blank_login_or_password() {
    let c = from_uri(
        "c",
        "aws://?__extra__=%7B%22region%22%3A+%22eu%22%2C+%22retries%22%3A+3%7D",
    )
    .unwrap();
    assert_eq!(
        c.extra.as_deref(),
        Some(r#"{"region": "eu", "retries": 3}"#)
    );
    let c = from_uri("c", "ftp://:secret@h").unwrap();
    assert_eq!(
        (c.login.as_deref(), c.password.as_deref()),
        (Some(""), Some("secret"))
    );
    let c = from_uri("c", "ftp://user@h").unwrap();
    assert_eq!((c.login.as_deref(), c.password), (Some("user"), None));
}

#[test]
fn sockets_ipv6_and_bad_ports() {
    let c = from_uri("c", "postgres://u@%2Ftmp%2FPG.sock/db").unwrap();
    assert_eq!(c.host.as_deref(), Some("/tmp/PG.sock"));
    let c = from_uri("c", "postgres://[::1]:5432/db").unwrap();
    assert_eq!((c.host.as_deref(), c.port), (Some("::1"), Some(5432)));
    assert_eq!(
        from_uri("c", "mysql://u:p@h:99999").unwrap_err(),
        ConnectionFormError::Port("99999".into())
    );
    assert!(from_uri("c", "mysql://h:-1").is_err());
    let err = from_uri("c", "not a uri at all:hunter22@x").unwrap_err();
    assert!(matches!(err, ConnectionFormError::Uri(_)));
    let err = from_uri("c", "my sql://u:hunter22@h").unwrap_err();
    assert!(!err.to_string().contains("hunter22"), "{err}");
}

#[test]
fn uris_are_written_as_airflow_writes_them() {
    let c = conn(|c| {
        c.conn_type = "google_cloud_platform".into();
        c.login = Some("us er".into());
        c.password = Some("p@ss:w/rd?&=%+~".into());
        c.host = Some("h.example".into());
        c.port = Some(1234);
        c.schema = Some("a/b".into());
        c.extra = Some(r#"{"k": "v w", "x": "1&2"}"#.into());
    });
    assert_eq!(
        to_uri(&c),
        "google-cloud-platform://us%20er:p%40ss%3Aw%2Frd%3F%26%3D%25%2B~@h.example:1234/a%2Fb?k=v+w&x=1%262"
    );
    // Not a flat object of strings: goes whole; no schema: `/?`.
    let c = conn(|c| {
        c.conn_type = "aws".into();
        c.extra = Some(r#"{"retries": 3}"#.into());
    });
    assert_eq!(to_uri(&c), "aws:///?__extra__=%7B%22retries%22%3A+3%7D");
    // A port without host or credentials.
    let c = conn(|c| {
        c.conn_type = "redis".into();
        c.port = Some(6379);
    });
    assert_eq!(to_uri(&c), "redis://@:6379");
    let c = conn(|c| {
        c.conn_type = "http".into();
        c.host = Some("https://api.example".into());
    });
    assert_eq!(to_uri(&c), "http://https://api.example");
    let c = conn(|c| {
        c.conn_type = "mysql".into();
        c.login = Some("u".into());
        c.password = Some("p@ss".into());
        c.host = Some("h".into());
    });
    assert_eq!(to_uri_redacted(&c), "mysql://u:***@h");
}

#[test]
fn uris_round_trip_with_any_characters() {
    let nasty = "ü 漢字 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    let cases = [
        conn(|c| {
            c.conn_type = "postgres".into();
            c.login = Some(nasty.into());
            c.password = Some(nasty.into());
            c.host = Some("db.internal".into());
            c.port = Some(5432);
            c.schema = Some(nasty.into());
            c.extra = Some(serde_json::json!({"sslmode": nasty, "k": "v"}).to_string());
        }),
        conn(|c| {
            c.conn_type = "my_type".into();
            c.login = Some("me".into());
            c.password = Some("pw-without-host".into());
            c.extra = Some(serde_json::json!({"nested": {"a": [1, 2]}}).to_string());
        }),
        conn(|c| {
            c.conn_type = "http".into();
            c.host = Some("https://api.example".into());
            c.login = Some("u".into());
        }),
        conn(|c| c.conn_type = "fs".into()),
    ];
    for c in cases {
        let uri = to_uri(&c);
        let back = from_uri("c", &uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(back, c, "{uri}");
    }
}

#[test]
fn the_json_form_reads_and_writes() {
    let c = from_json(
        "c",
        r#"{"conn_type": "postgresql", "host": "h", "login": "u", "password": "p",
            "schema": "s", "port": "5432", "extra": {"sslmode": "require"},
            "description": "d"}"#,
    )
    .unwrap();
    assert_eq!(
        c,
        conn(|c| {
            c.conn_type = "postgres".into();
            c.host = Some("h".into());
            c.login = Some("u".into());
            c.password = Some("p".into());
            c.schema = Some("s".into());
            c.port = Some(5432);
            c.extra = Some(r#"{"sslmode":"require"}"#.into());
            c.description = Some("d".into());
        })
    );
    assert_eq!(
        to_json(&c),
        serde_json::json!({"conn_type": "postgres", "host": "h", "login": "u", "password": "p",
            "schema": "s", "port": 5432, "extra": {"sslmode": "require"}, "description": "d"})
    );
    assert_eq!(from_json("c", &to_json(&c).to_string()).unwrap(), c);
    assert_eq!(
        parse("c", " {\"conn_type\": \"x\"}").unwrap().conn_type,
        "x"
    );
    assert_eq!(parse("c", "x://h").unwrap().host.as_deref(), Some("h"));
}

#[test]
fn bad_json_forms_say_what_is_wrong() {
    let err = from_json("c", r#"{"conn_type": "x", "port": "abc"}"#).unwrap_err();
    assert_eq!(err, ConnectionFormError::Port("\"abc\"".into()));
    let err = from_json("c", r#"{"conn_type": "x", "hots": "h"}"#).unwrap_err();
    assert!(err.to_string().contains("\"hots\""), "{err}");
    let err = from_json("c", r#"{"conn_type": 3}"#).unwrap_err();
    assert!(err.to_string().contains("conn_type"), "{err}");
    assert!(from_json("c", "[1]").is_err());
    assert!(from_json("c", "{").is_err());
}
