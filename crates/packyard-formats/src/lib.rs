//! Pure parsers and renderers for package files and repository indexes.
//!
//! Nothing here touches a database, the network, the clock or async code: every function reads
//! from a `Read` (or a byte slice) and returns values or text, so each can be tested and fuzzed
//! alone. The server decides when and where the results are stored.

pub mod anyfile;
pub mod chunked;
pub mod deb;
pub mod digest;
pub mod markup;
pub mod npm;
pub mod oci;
pub mod pypi;
pub mod repo_path;
pub mod rpm;
pub mod sort_key;
