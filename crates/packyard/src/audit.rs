//! Recording changes in the audit log: who (an API user, or a local operator), from where,
//! what, on which repository and target, and how it went. Details never hold a secret: no
//! token value, password or key material goes in, only names, fingerprints and counts.

use std::net::IpAddr;

use serde_json::Value;

use crate::db;

/// Who made a change.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A user of the API, by name.
    User(String),
    /// An operator command run on a machine with the configuration, by login name.
    Local(String),
    /// The server on its own schedule (the daily retention run), by what it ran.
    System(&'static str),
}

impl Actor {
    /// The operator running this process's command.
    pub fn local() -> Actor {
        let name = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "operator".into());
        Actor::Local(name)
    }

    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Local(_) => "local",
            Actor::System(_) => "system",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Actor::User(name) | Actor::Local(name) => name,
            Actor::System(what) => what,
        }
    }
}

/// One change, as it goes into the log.
#[derive(Clone)]
pub struct Event {
    pub actor: Actor,
    pub ip: Option<IpAddr>,
    pub action: &'static str,
    /// `OWNER/REPO`.
    pub repository: Option<String>,
    /// `OS/DIST`, a file name, a fingerprint or a token name: what in the repository.
    pub target: Option<String>,
    pub outcome: Outcome,
    pub details: Value,
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Ok,
    Refused,
    Failed,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

impl Event {
    pub fn new(actor: Actor, action: &'static str) -> Event {
        Event {
            actor,
            ip: None,
            action,
            repository: None,
            target: None,
            outcome: Outcome::Ok,
            details: Value::Object(Default::default()),
        }
    }

    pub fn ip(mut self, ip: IpAddr) -> Event {
        self.ip = Some(ip);
        self
    }

    pub fn repository(mut self, owner: &str, name: &str) -> Event {
        self.repository = Some(format!("{owner}/{name}"));
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Event {
        self.target = Some(target.into());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Event {
        self.outcome = outcome;
        self
    }

    pub fn details(mut self, details: Value) -> Event {
        self.details = details;
        self
    }

    /// Marks the event failed (or refused, for a client's mistake) with `error` in its details.
    pub fn result<T, E: std::fmt::Display>(
        mut self,
        result: &Result<T, E>,
        refused: bool,
    ) -> Event {
        if let Err(e) = result {
            self.outcome = if refused {
                Outcome::Refused
            } else {
                Outcome::Failed
            };
            if let Value::Object(map) = &mut self.details {
                map.insert("error".into(), Value::String(e.to_string()));
            }
        }
        self
    }
}

/// Writes `event`. A failure to write is logged, not returned: the change it describes has
/// happened either way.
pub async fn record(db: &db::Db, event: Event) {
    if let Err(e) = db::audit::insert(db, &new_event(&event)).await {
        tracing::error!(error = %format!("{e:#}"), action = event.action, "writing an audit event failed");
    }
}

/// Records `event` in `tx`, so it commits with the change it reports (one commit, not two).
pub async fn record_tx(tx: &mut db::Tx, event: &Event) -> anyhow::Result<()> {
    db::audit::insert_tx(tx, &new_event(event)).await
}

fn new_event(event: &Event) -> db::audit::NewEvent<'_> {
    db::audit::NewEvent {
        at: db::now(),
        actor_kind: event.actor.kind(),
        actor: event.actor.name(),
        ip_address: event.ip.map(|ip| ip.to_string()),
        action: event.action,
        repository: event.repository.as_deref(),
        target: event.target.as_deref(),
        outcome: event.outcome.name(),
        details: event.details.to_string(),
    }
}

/// How long events are kept.
pub const KEEP_DAYS: i64 = 400;

/// A Unix time as UTC date and time, `2026-11-29 11:17:45`.
pub fn datetime(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
