//! Package actions: push, show (and versions), destroy.

pub mod destroy;
pub mod list;
pub mod promote;
pub mod push;
pub mod show;
pub mod wait;
pub mod yank;

/// `?scope=@acme` on a destroy or promote: a scoped npm package's file is named with its
/// scope apart (`node/1/demo-1.0.0.tgz?scope=%40acme`), as package_cloud sends it.
#[derive(serde::Deserialize)]
pub struct ScopeQuery {
    scope: Option<String>,
}

impl ScopeQuery {
    /// The stored file name the path's `filename` and the scope make.
    pub fn filename(&self, filename: String) -> String {
        match self.scope.as_deref().filter(|s| s.starts_with('@')) {
            Some(scope) => format!("{scope}/{filename}"),
            None => filename,
        }
    }
}
