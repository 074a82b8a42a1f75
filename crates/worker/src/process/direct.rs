//! Starting a command without `bash` when bash would do nothing but start it.
//!
//! A non-interactive `bash -c` given one simple command of plain words (no quoting, expansion,
//! redirection, pipe, list, assignment or comment) whose first word is no builtin or keyword
//! looks the program up on `PATH` and `exec`s it in place of itself. Doing that lookup and exec
//! here skips bash's own start-up, which is about as much CPU as a short task's whole process.
//! GNU make takes the same shortcut for recipe lines without shell syntax.
//!
//! The program sees what it would have seen under bash: the same arguments, process, process
//! group and pipes, and the environment bash would have passed on (`PWD`, `SHLVL` and `_` set,
//! an `OLDPWD` naming no directory dropped: see [`Direct::apply`]). Anything that could make
//! bash behave otherwise sends the command to bash: a `BASH_ENV` file, exported shell functions
//! (`BASH_FUNC_…`), a `PATH` with relative entries, a program that is not found (bash reports
//! that, exit 127), and any failure to start the program directly.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::Command;

/// Bash 5's builtins and reserved words (`compgen -b -k`): a command starting with one of them
/// needs bash.
const SHELL_WORDS: &str = ". : [ alias bg bind break builtin caller cd command compgen complete \
    compopt continue declare dirs disown echo enable eval exec exit export false fc fg getopts \
    hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray \
    readonly return set shift shopt source suspend test times trap true type typeset ulimit \
    umask unalias unset wait if then else elif fi case esac for select while until do done in \
    function time coproc";

/// Builtins whose program of the same name behaves identically when given no arguments.
const SAME_AS_PROGRAM_WITHOUT_ARGUMENTS: &[&str] = &["true", "false"];

/// A command that can be started without bash.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Direct {
    program: PathBuf,
    /// The first word as written: bash passes it, not the path found, as `argv[0]`.
    arg0: String,
    args: Vec<String>,
    pwd: PathBuf,
    shlvl: String,
    keep_oldpwd: bool,
}

impl Direct {
    /// The program to start: a path as the command wrote it, or where `PATH` led.
    pub(super) fn program(&self) -> &Path {
        &self.program
    }

    /// The working directory, as the program sees it in `PWD`.
    pub(super) fn pwd(&self) -> &Path {
        &self.pwd
    }

    /// Adds `argv[0]`, the arguments, and the environment bash would have passed on, to a
    /// command of [`Self::program`] whose other settings (and the task's variables) are
    /// already made. Bash sets `PWD` to the working directory (keeping an inherited value that
    /// names the same directory), normalises `SHLVL` (raised at start-up, lowered again when it
    /// execs the last command), exports `_` as the program's path, and drops an `OLDPWD` that
    /// names no directory.
    pub(super) fn apply(&self, command: &mut Command) {
        command
            .arg0(&self.arg0)
            .args(&self.args)
            .env("PWD", &self.pwd)
            .env("SHLVL", &self.shlvl)
            .env("_", &self.program);
        if !self.keep_oldpwd {
            command.env_remove("OLDPWD");
        }
    }
}

impl Direct {
    /// The complete environment the program gets under [`Self::apply`]: the worker's own,
    /// the task's variables over it, then what bash passes on. `None` when a variable of the
    /// worker is not UTF-8 (the fork server takes text).
    pub(super) fn environment(
        &self,
        task_env: &[(String, String)],
    ) -> Option<Vec<(String, String)>> {
        let worker = worker_env().as_ref()?;
        let mut env: Vec<(String, String)> = Vec::with_capacity(worker.len() + task_env.len() + 3);
        let mut set = |key: &str, value: String| match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key.to_owned(), value)),
        };
        for (key, value) in worker.iter().chain(task_env) {
            set(key, value.clone());
        }
        set("PWD", self.pwd.to_str()?.to_owned());
        set("SHLVL", self.shlvl.clone());
        set("_", self.program.to_str()?.to_owned());
        if !self.keep_oldpwd {
            env.retain(|(k, _)| k != "OLDPWD");
        }
        Some(env)
    }
}

/// The worker's whole environment, read once; `None` when a variable is not UTF-8.
fn worker_env() -> &'static Option<Vec<(String, String)>> {
    static WORKER_ENV: OnceLock<Option<Vec<(String, String)>>> = OnceLock::new();
    WORKER_ENV.get_or_init(|| {
        std::env::vars_os()
            .map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    })
}

/// How bash would run `command`, given the variables the task adds to the worker's
/// environment and its working directory; `None` when only bash can run it.
pub(super) fn plan(command: &str, env: &[(String, String)], cwd: Option<&Path>) -> Option<Direct> {
    let words = plain_words(command)?;
    let (first, args) = words.split_first()?;
    let is_builtin = SHELL_WORDS.split_whitespace().any(|word| word == *first);
    if is_builtin && !(args.is_empty() && SAME_AS_PROGRAM_WITHOUT_ARGUMENTS.contains(first)) {
        return None;
    }
    if first.starts_with('%') {
        // A job specification to bash (`%1` is `fg %1`).
        return None;
    }
    let var = |name: &str| lookup(env, name);
    if var("BASH_ENV").is_some_and(|v| !v.is_empty())
        || exports_functions(env)
        || sets_bash_variables(env)
    {
        return None;
    }
    let dir = working_dir(cwd)?;
    // A path is started as written (the child changes to the working directory first), so a
    // script's interpreter sees the same `$0` as under bash.
    let program = if first.contains('/') {
        is_executable(&dir.join(first)).then(|| PathBuf::from(*first))?
    } else {
        find_on_path(first, &var("PATH")?)?
    };
    Some(Direct {
        program,
        arg0: (*first).to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        pwd: pwd(var("PWD"), &dir)?,
        shlvl: shell_level(var("SHLVL"))?,
        keep_oldpwd: var("OLDPWD").is_some_and(|old| !old.is_empty() && dir.join(old).is_dir()),
    })
}

/// The words of a command made only of characters that mean nothing to bash, or `None`. `=`
/// is allowed after the first word only (before, it is an assignment); `,`, `:`, `@` and `+`
/// are special only in builtins or inside expansions, which are excluded, and `%` only at the
/// start of a command (a job specification, left to bash by [`plan`]).
fn plain_words(command: &str) -> Option<Vec<&str>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:+@%=".contains(c);
    let words: Vec<&str> = command
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let all_plain = words.iter().all(|w| w.chars().all(plain));
    let first_is_command = words.first().is_some_and(|w| !w.contains('='));
    (all_plain && first_is_command).then_some(words)
}

/// What a task inherits from the worker, read once: a worker never changes its own
/// environment or working directory, and reading them per task showed in profiles.
struct Inherited {
    vars: Vec<(&'static str, OsString)>,
    exports_functions: bool,
    sets_bash_variables: bool,
    cwd: Option<PathBuf>,
}

/// The variables [`plan`] consults.
const CONSULTED: [&str; 5] = ["PATH", "PWD", "SHLVL", "OLDPWD", "BASH_ENV"];

fn inherited() -> &'static Inherited {
    static INHERITED: OnceLock<Inherited> = OnceLock::new();
    INHERITED.get_or_init(|| Inherited {
        vars: CONSULTED
            .iter()
            .filter_map(|name| Some((*name, std::env::var_os(name)?)))
            .collect(),
        exports_functions: std::env::vars_os()
            .any(|(key, _)| key.to_str().is_some_and(is_function)),
        sets_bash_variables: BASH_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some()),
        cwd: std::env::current_dir().ok(),
    })
}

fn is_function(key: &str) -> bool {
    key.starts_with("BASH_FUNC_")
}

/// Variables that change how bash runs (`SHELLOPTS=xtrace`, `POSIXLY_CORRECT`) or that bash
/// resets or drops before the program sees them (`IFS`, `PPID`, `RANDOM`, …): with any of
/// them in the environment, only bash gives the program what bash would.
const BASH_VARIABLES: &[&str] = &[
    "SHELLOPTS",
    "BASHOPTS",
    "POSIXLY_CORRECT",
    "IFS",
    "LINENO",
    "OPTIND",
    "OPTERR",
    "BASH",
    "EPOCHSECONDS",
    "EPOCHREALTIME",
    "PPID",
    "BASHPID",
    "RANDOM",
    "SRANDOM",
    "HISTCMD",
    "BASH_ARGV0",
    "BASH_COMMAND",
    "BASH_SUBSHELL",
    "BASH_VERSINFO",
    "COMP_WORDBREAKS",
];

fn sets_bash_variables(env: &[(String, String)]) -> bool {
    env.iter()
        .any(|(key, _)| BASH_VARIABLES.contains(&key.as_str()))
        || inherited().sets_bash_variables
}

/// The value a variable has in the task's process: the task's own, else the worker's.
fn lookup(env: &[(String, String)], name: &str) -> Option<OsString> {
    debug_assert!(
        CONSULTED.contains(&name),
        "{name} is not read from the worker"
    );
    env.iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| OsString::from(value))
        .or_else(|| {
            let worker = &inherited().vars;
            worker
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
}

fn exports_functions(env: &[(String, String)]) -> bool {
    env.iter().any(|(key, _)| is_function(key)) || inherited().exports_functions
}

/// The task's working directory as an absolute path.
fn working_dir(cwd: Option<&Path>) -> Option<PathBuf> {
    let here = inherited().cwd.as_ref()?;
    Some(cwd.map_or_else(|| here.clone(), |dir| here.join(dir)))
}

/// Bash's search: the first executable regular file in `PATH`'s directories. A relative or
/// empty entry (the current directory) is left to bash.
fn find_on_path(name: &str, path: &OsString) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::split_paths(path).collect();
    if dirs.iter().any(|dir| !dir.is_absolute()) {
        return None;
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// An inherited `PWD` naming the same directory is kept; otherwise the physical path.
fn pwd(inherited: Option<OsString>, dir: &Path) -> Option<PathBuf> {
    let dir_meta = std::fs::metadata(dir).ok()?;
    let same = |path: &Path| {
        path.is_absolute()
            && std::fs::metadata(path)
                .is_ok_and(|m| m.dev() == dir_meta.dev() && m.ino() == dir_meta.ino())
    };
    match inherited.map(PathBuf::from) {
        Some(path) if same(&path) => Some(path),
        _ => std::fs::canonicalize(dir).ok(),
    }
}

/// What bash leaves in `SHLVL` after raising it at start-up and lowering it for the exec: a
/// level from 0 to 998 stays, anything else (unset, not a number, negative) is 0; `None` for
/// 999 and above, where bash prints a warning first.
fn shell_level(inherited: Option<OsString>) -> Option<String> {
    let level = inherited
        .and_then(|v| v.to_str()?.trim().parse::<i64>().ok())
        .filter(|level| *level >= 0)
        .unwrap_or(0);
    (level < 999).then(|| level.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn path_env() -> Vec<(String, String)> {
        env(&[("PATH", "/usr/local/bin:/usr/bin:/bin")])
    }

    #[test]
    fn plain_commands_run_directly() {
        let direct = plan("true", &path_env(), None).expect("plain");
        assert!(direct.program.ends_with("true"));
        assert!(direct.args.is_empty());
        let direct =
            plan("  env  -u X=y\tA=b ", &path_env(), Some(Path::new("/tmp"))).expect("plain");
        assert!(direct.program.ends_with("env"));
        assert_eq!(direct.args, ["-u", "X=y", "A=b"]);
        assert_eq!(
            direct.pwd,
            std::fs::canonicalize("/tmp").unwrap_or_default()
        );
    }

    #[test]
    fn shell_syntax_and_builtins_go_to_bash() {
        for command in [
            "",
            "   ",
            "echo hi",
            "true --help",
            "false 1",
            "cd /tmp",
            "exit 3",
            "A=1 env",
            "env $HOME",
            "env 'quoted'",
            "env \"quoted\"",
            "env a\\ b",
            "env ~",
            "env *",
            "env a?",
            "env [ab]",
            "env {a,b}",
            "env; env",
            "env && env",
            "env | cat",
            "env > out",
            "env < in",
            "env # comment",
            "env `id`",
            "env !",
            "env\nenv",
            "env é",
            "%1",
            "no-such-program-anywhere",
        ] {
            assert_eq!(plan(command, &path_env(), None), None, "{command:?}");
        }
    }

    #[test]
    fn environments_that_change_bash_go_to_bash() {
        let with = |extra: &[(&str, &str)]| {
            let mut vars = path_env();
            vars.extend(env(extra));
            plan("true", &vars, None)
        };
        assert_eq!(with(&[("BASH_ENV", "/etc/profile")]), None);
        assert_eq!(with(&[("BASH_FUNC_true%%", "() { false; }")]), None);
        assert_eq!(with(&[("PATH", "bin:/usr/bin")]), None);
        assert_eq!(with(&[("PATH", ":/usr/bin")]), None);
        assert_eq!(with(&[("SHELLOPTS", "xtrace")]), None);
        assert_eq!(with(&[("POSIXLY_CORRECT", "1")]), None);
        assert_eq!(with(&[("IFS", ",")]), None);
        assert_eq!(with(&[("SHLVL", "999")]), None);
        assert!(with(&[("BASH_ENV", "")]).is_some());
    }

    #[test]
    fn paths_resolve_against_the_working_directory() {
        let direct = plan("./true", &path_env(), Some(Path::new("/usr/bin"))).expect("found");
        assert_eq!(direct.program, Path::new("./true"), "started as written");
        assert_eq!(plan("./true", &path_env(), Some(Path::new("/"))), None);
    }

    #[test]
    fn shell_level_is_what_bash_passes_on() {
        let level = |v: Option<&str>| shell_level(v.map(OsString::from));
        assert_eq!(level(None).as_deref(), Some("0"));
        assert_eq!(level(Some("3")).as_deref(), Some("3"));
        assert_eq!(level(Some("abc")).as_deref(), Some("0"));
        assert_eq!(level(Some("-5")).as_deref(), Some("0"));
        assert_eq!(level(Some("998")).as_deref(), Some("998"));
        assert_eq!(level(Some("999")), None, "bash warns");
    }
}
