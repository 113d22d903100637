//! Every log line of the in-process servers, checked as it is written: no token value the
//! tests made (`secret`) and no private key may appear in one. Events are kept at debug level
//! for Packyard and its HTTP layers, beyond what a deployment logs by default, so that turning
//! on debug logging leaks nothing either. A leak fails the test whose server is dropped next.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

static SECRETS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
static LEAKS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// A token value the self-test leaks on purpose; caught like any other, counted apart.
const CANARY: &str = "x3KQ9vF2mZb8LwT1yR6pN4sD7hJ0cA5eG_uV-iO2kP8qW1zX";
static CANARY_CAUGHT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn secrets() -> &'static Mutex<HashSet<String>> {
    SECRETS.get_or_init(Mutex::default)
}

/// Installs the checking subscriber, once per test binary.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "info,packyard=debug,tower_http=debug,hyper=info,sqlx=info",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(|| Checker)
            .with_ansi(false)
            .try_init();
    });
}

/// Remembers a token value the test made, so that any log line holding it is a leak.
pub fn secret(value: &str) {
    secrets().lock().unwrap().insert(value.to_owned());
}

/// The leaks seen so far, emptied.
pub fn take_leaks() -> Vec<String> {
    std::mem::take(&mut *LEAKS.lock().unwrap())
}

struct Checker;

impl Write for Checker {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let leaked = {
            let secrets = secrets().lock().unwrap();
            // Token values are runs of URL-safe characters; look each run up.
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .filter(|run| run.len() >= 32)
                .find(|run| secrets.contains(*run))
                .map(str::to_owned)
        };
        match leaked.as_deref() {
            Some(CANARY) => CANARY_CAUGHT.store(true, std::sync::atomic::Ordering::SeqCst),
            Some(_) => LEAKS.lock().unwrap().push(line.into_owned()),
            None if line.contains("PRIVATE KEY") => LEAKS.lock().unwrap().push(line.into_owned()),
            None => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_leaked_token_is_caught() {
    install();
    secret(CANARY);
    tracing::info!(path = %format!("/priv/{CANARY}/admin/x/gpgkey"), "a careless line");
    assert!(CANARY_CAUGHT.load(std::sync::atomic::Ordering::SeqCst));
}
