//! Users and tokens through the binary: the admin `standalone` creates on its first start,
//! `users create | list | delete | reset-password`, logging in to the served REST API, and
//! user tokens and the worker token each refused where the other belongs.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::fixture::{Home, Standalone};

/// An HTTP/1.0 request; answers the status and the body.
pub(crate) fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut request = format!("{method} /{path} HTTP/1.0\r\nHost: {host}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// `POST /auth/token`: the status and the token, if one was given.
pub(crate) fn login(base: &str, username: &str, password: &str) -> (u16, Option<String>) {
    let body = json!({"username": username, "password": password}).to_string();
    let (status, text) = http("POST", &format!("{base}/auth/token"), &[], Some(&body));
    let token = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(String::from));
    (status, token)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Starts `standalone` and answers it, its base URL and what it printed before it was up.
fn standalone(home: &Home) -> (Standalone, String, String) {
    let mut child = home
        .command()
        .args(["standalone", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let mut health_url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = line.trim().strip_prefix("health:") {
            health_url = Some(url.trim().to_string());
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let health_url = health_url.unwrap_or_else(|| panic!("no health address in {printed}"));
    let base = health_url
        .strip_suffix("/api/v2/monitor/health")
        .unwrap()
        .to_string();
    (Standalone { child, health_url }, base, printed)
}

#[test]
fn standalone_creates_the_admin_once_and_its_password_logs_in() {
    let home = Home::new();
    let (mut first, base, printed) = standalone(&home);
    let file = home.path().join("standalone_admin_password.txt");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 16, "a random password: {password:?}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        printed.contains(&password),
        "printed once on the first start: {printed}"
    );
    assert!(printed.contains(&file.display().to_string()), "{printed}");

    let (status, token) = login(&base, "admin", &password);
    assert_eq!(status, 201);
    let token = token.expect("a token");
    let (status, body) = http(
        "GET",
        &format!("{base}/api/v2/version"),
        &[("Authorization", &bearer(&token))],
        None,
    );
    assert_eq!(status, 200, "{body}");
    // The REST API needs a token; health does not.
    let (status, _) = http("GET", &format!("{base}/api/v2/version"), &[], None);
    assert_eq!(status, 401);
    let (status, body) = http("GET", &first.health_url, &[], None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("metadatabase"), "{body}");
    // The secret that signs tokens was generated into the configuration file.
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(home.path().join("updraft.toml")).unwrap())
            .unwrap();
    let secret = config["api"]["jwt_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    assert!(first.sigterm().success());

    // The next start creates and prints nothing new, and the token still works (same
    // secret, read from the file).
    let (_second, base, printed) = standalone(&home);
    assert!(!printed.contains(&password), "{printed}");
    assert!(printed.contains(&file.display().to_string()), "{printed}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        password,
        "the file is not rewritten"
    );
    let users = home.json(&["users", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 1, "{users:#}");
    assert_eq!(users[0]["username"], "admin");
    assert_eq!(users[0]["role"], "Admin");
    assert!(users[0]["last_login"].is_string(), "{users:#}");
    let (status, body) = http(
        "GET",
        &format!("{base}/api/v2/version"),
        &[("Authorization", &bearer(&token))],
        None,
    );
    assert_eq!(status, 200, "{body}");
}

/// Runs `updraft ARGS` with `stdin` as standard input.
fn with_stdin(home: &Home, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = home
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn fails_with(home: &Home, args: &[&str], message: &str) {
    let out = home.run(args);
    assert!(!out.status.success(), "updraft {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(message), "updraft {args:?}: {stderr}");
}

#[test]
fn users_create_list_reset_password_and_delete() {
    let home = Home::new();
    let out = home.ok(&[
        "users",
        "create",
        "--username",
        "alice",
        "--role",
        "op",
        "--password",
        "first password",
        "--email",
        "alice@example.com",
        "--firstname",
        "Alice",
    ]);
    assert!(
        out.contains(r#"User "alice" created with role "Op""#),
        "{out}"
    );
    // The password from standard input, as a script would give it.
    let out = with_stdin(
        &home,
        &["users", "create", "-u", "bob", "-r", "Viewer"],
        "bob's password\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = home.ok(&[
        "users",
        "create",
        "-u",
        "carol",
        "-r",
        "User",
        "--use-random-password",
    ]);
    let carol_password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the random password is printed")
        .to_string();

    fails_with(
        &home,
        &["users", "create", "-u", "alice", "-r", "Admin", "-p", "x"],
        "already exists",
    );
    fails_with(
        &home,
        &["users", "create", "-u", "dave", "-r", "root", "-p", "x"],
        "unknown role \"root\": use one of Viewer, User, Op, Admin",
    );
    fails_with(&home, &["users", "delete", "-u", "nobody"], "no user");

    let users = home.json(&["users", "list"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"], "{users:#}");
    assert_eq!(users[0]["role"], "Op");
    assert_eq!(users[0]["email"], "alice@example.com");
    assert_eq!(users[0]["first_name"], "Alice");
    assert_eq!(users[1]["role"], "Viewer");
    let table = home.ok(&["users", "list"]);
    assert!(table.contains("alice@example.com"), "{table}");

    let out = home.ok(&[
        "users",
        "reset-password",
        "--username",
        "alice",
        "--password",
        "second password",
    ]);
    assert!(out.contains("alice"), "{out}");

    // Existing users: standalone creates no admin; the passwords work as set.
    let (_standalone, base, _) = standalone(&home);
    assert!(!home.path().join("standalone_admin_password.txt").exists());
    assert_eq!(login(&base, "alice", "first password").0, 401);
    assert_eq!(login(&base, "alice", "second password").0, 201);
    assert_eq!(login(&base, "bob", "bob's password").0, 201);
    assert_eq!(login(&base, "carol", &carol_password).0, 201);

    let out = home.ok(&["users", "delete", "--email", "ALICE@example.com"]);
    assert!(out.contains("alice"), "{out}");
    assert_eq!(login(&base, "alice", "second password").0, 401);
    let users = home.json(&["users", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 2, "{users:#}");
}

#[test]
fn user_tokens_and_the_worker_token_each_work_only_on_their_own_api() {
    const WORKER_TOKEN: &str = "worker-secret-for-this-test";
    let home = Home::new();
    home.ok(&["users", "create", "-u", "ann", "-r", "Admin", "-p", "pw"]);
    let server = home.role(
        &["api-server", "--host", "127.0.0.1", "--port", "0"],
        &[("UPDRAFT_API__WORKER_TOKEN", WORKER_TOKEN)],
    );
    let base = server.url.clone().unwrap();
    let (status, token) = login(&base, "ann", "pw");
    assert_eq!(status, 201, "{}", server.log());
    let user_token = token.unwrap();

    let execution = format!("{base}/execution/v1/variables");
    let (status, body) = http(
        "GET",
        &execution,
        &[("Authorization", &bearer(WORKER_TOKEN))],
        None,
    );
    assert_eq!(status, 200, "the worker token works on its API: {body}");
    let (status, _) = http(
        "GET",
        &execution,
        &[("Authorization", &bearer(&user_token))],
        None,
    );
    assert_eq!(status, 401, "a user token on the execution API");

    let version = format!("{base}/api/v2/version");
    let (status, body) = http(
        "GET",
        &version,
        &[("Authorization", &bearer(&user_token))],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(
        "GET",
        &version,
        &[("Authorization", &bearer(WORKER_TOKEN))],
        None,
    );
    assert_eq!(status, 401, "the worker token on the REST API");

    // Health stays public and answered once; unknown paths are still 404.
    let (status, _) = http("GET", &format!("{base}/api/v2/monitor/health"), &[], None);
    assert_eq!(status, 200);
    let (status, _) = http("GET", &format!("{base}/api/v2/nothing"), &[], None);
    assert_eq!(status, 404);
    // The api-server generated the secret into its home's configuration.
    let text = std::fs::read_to_string(home.path().join("updraft.toml")).unwrap();
    assert!(text.contains("jwt_secret"), "{text}");
}
