//! `users create | list | delete | reset-password` (Airflow's verbs and flags): the users of
//! the REST API and the UI, with Argon2id password hashes. Also the `admin` user that
//! `standalone` creates on its first start.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde::Serialize;
use updraft_rest_api::auth::{password, Role};
use updraft_store::{StoreError, UserRecord};

use crate::app::App;
use crate::cli::OutputArg;
use crate::output::{print, time};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create(CreateArgs),
    /// List the users.
    List(OutputArg),
    /// Delete a user (by username or email).
    Delete(WhoArgs),
    /// Set a user's password (by username or email).
    ResetPassword {
        #[command(flatten)]
        who: WhoArgs,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(short, long)]
    pub username: String,
    /// Admin, Op, User or Viewer.
    #[arg(short, long)]
    pub role: String,
    #[arg(short, long)]
    pub email: Option<String>,
    #[arg(short, long)]
    pub firstname: Option<String>,
    #[arg(short, long)]
    pub lastname: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password. Without it (and without --use-random-password), it is asked for on the
    /// terminal, or read from the first line of standard input.
    #[arg(short, long, conflicts_with = "use_random_password")]
    pub password: Option<String>,
    /// Generate a random password and print it.
    #[arg(long)]
    pub use_random_password: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct WhoArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub email: Option<String>,
}

pub async fn run(app: App, cmd: &UsersCommand) -> Result<ExitCode> {
    match cmd {
        UsersCommand::Create(args) => create(&app, args).await?,
        UsersCommand::List(out) => list(&app, out).await?,
        UsersCommand::Delete(who) => {
            let user = find(&app, who).await?;
            if !app.store.delete_user(&user.username).await? {
                bail!("no user {:?}", user.username);
            }
            println!("User {:?} deleted", user.username);
        }
        UsersCommand::ResetPassword { who, password } => {
            let mut user = find(&app, who).await?;
            let (new_password, generated) = choose_password(password)?;
            user.password_hash = hash(&new_password).await?;
            app.store.update_user(user.clone()).await?;
            println!("User {:?} password reset", user.username);
            if generated {
                println!("password: {new_password}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(app: &App, args: &CreateArgs) -> Result<()> {
    let username = args.username.trim();
    if username.is_empty() || username.chars().any(char::is_whitespace) {
        bail!(
            "invalid username {:?}: a name without spaces",
            args.username
        );
    }
    let role = parse_role(&args.role)?;
    let (new_password, generated) = choose_password(&args.password)?;
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let user = UserRecord {
        username: username.to_string(),
        password_hash: hash(&new_password).await?,
        role: role.as_str().to_string(),
        email: text(&args.email),
        first_name: text(&args.firstname),
        last_name: text(&args.lastname),
        active: true,
        created_at: Utc::now(),
        last_login: None,
    };
    match app.store.create_user(user).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => bail!("user {username:?} already exists"),
        Err(e) => return Err(e.into()),
    }
    println!("User {username:?} created with role {:?}", role.as_str());
    if generated {
        println!("password: {new_password}");
    }
    Ok(())
}

#[derive(Serialize)]
struct UserRow<'a> {
    username: &'a str,
    email: Option<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    role: &'a str,
    active: bool,
    created_at: String,
    last_login: Option<String>,
}

async fn list(app: &App, out: &OutputArg) -> Result<()> {
    let users = app.store.list_users().await?;
    let shown: Vec<UserRow> = users
        .iter()
        .map(|u| UserRow {
            username: &u.username,
            email: u.email.as_deref(),
            first_name: u.first_name.as_deref(),
            last_name: u.last_name.as_deref(),
            role: &u.role,
            active: u.active,
            created_at: time(Some(u.created_at)),
            last_login: u.last_login.map(|t| time(Some(t))),
        })
        .collect();
    let rows = shown
        .iter()
        .map(|u| {
            vec![
                u.username.to_string(),
                u.email.unwrap_or_default().to_string(),
                u.first_name.unwrap_or_default().to_string(),
                u.last_name.unwrap_or_default().to_string(),
                u.role.to_string(),
                u.active.to_string(),
                u.last_login.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print(
        out.output,
        &shown,
        &[
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "active",
            "last_login",
        ],
        rows,
    )
}

fn parse_role(name: &str) -> Result<Role> {
    Role::parse(name).with_context(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {name:?}: use one of {}", names.join(", "))
    })
}

/// The user named by `--username` or `--email`.
async fn find(app: &App, who: &WhoArgs) -> Result<UserRecord> {
    if let Some(username) = &who.username {
        return app
            .store
            .get_user(username)
            .await?
            .with_context(|| format!("no user {username:?}"));
    }
    let Some(email) = &who.email else {
        bail!("name the user with --username or --email");
    };
    let mut matching: Vec<UserRecord> = app
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .collect();
    match matching.len() {
        0 => bail!("no user with email {email:?}"),
        1 => Ok(matching.remove(0)),
        n => bail!("{n} users have email {email:?}: name one with --username"),
    }
}

/// The password to set, and whether it was generated (then it is printed).
fn choose_password(args: &PasswordArgs) -> Result<(String, bool)> {
    if args.use_random_password {
        return Ok((random_password(), true));
    }
    let password = match &args.password {
        Some(password) => password.clone(),
        None if std::io::stdin().is_terminal() => prompt_twice()?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok((password, false))
}

fn prompt_twice() -> Result<String> {
    let first = prompt("Password: ")?;
    let second = prompt("Repeat for confirmation: ")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Reads a line from the terminal without echoing it.
fn prompt(label: &str) -> Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{label}")?;
    stderr.flush()?;
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    writeln!(stderr)?;
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns the terminal's echo off on standard input while it lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios value we own; on failure the
        // terminal is left as it was.
        unsafe {
            let mut original: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut original) != 0 {
                return EchoOff(None);
            }
            let mut quiet = original;
            quiet.c_lflag &= !libc::ECHO;
            quiet.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(0, libc::TCSANOW, &quiet) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(original))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(original) = &self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, original);
            }
        }
    }
}

/// 24 random characters from an alphabet without look-alikes (≈ 138 bits).
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Argon2id takes tens of milliseconds of CPU: off the async workers.
async fn hash(password: &str) -> Result<String> {
    let password = password.to_string();
    let hashed = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .context("the password hashing task failed")??;
    Ok(hashed)
}

/// The file `standalone` writes the admin's first password to.
pub fn standalone_password_file(app: &App) -> PathBuf {
    app.home.join("standalone_admin_password.txt")
}

/// On the first start of `standalone` (no user at all): creates `admin` (role Admin) with a
/// random password and writes it to `$UPDRAFT_HOME/standalone_admin_password.txt` (mode
/// 0600), as Airflow's standalone does. Answers what to print: the password the first time,
/// where the file is afterwards.
pub async fn ensure_standalone_admin(app: &App) -> Result<String> {
    let file = standalone_password_file(app);
    if !app.store.list_users().await?.is_empty() {
        return Ok(if file.exists() {
            format!(
                "Log in as admin with the password in {} (`updraft users reset-password -u admin` sets another)\n",
                file.display()
            )
        } else {
            String::new()
        });
    }
    let new_password = random_password();
    app.store
        .create_user(UserRecord {
            username: "admin".into(),
            password_hash: hash(&new_password).await?,
            role: Role::Admin.as_str().into(),
            email: None,
            first_name: None,
            last_name: None,
            active: true,
            created_at: Utc::now(),
            last_login: None,
        })
        .await
        .context("cannot create the admin user")?;
    let saved = write_private(&file, &format!("{new_password}\n"));
    let mut message =
        format!("Created user admin (role Admin) with password: {new_password}\n  (shown once; ");
    match saved {
        Ok(()) => message.push_str(&format!("also saved in {})\n", file.display())),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot save the admin password");
            message.push_str("it could not be saved: note it now)\n");
        }
    }
    Ok(message)
}

/// Writes `text` to `file`, readable and writable by the owner only.
fn write_private(file: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    // An existing file keeps its mode on open: make sure it is private before writing.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    out.write_all(text.as_bytes())?;
    Ok(())
}
