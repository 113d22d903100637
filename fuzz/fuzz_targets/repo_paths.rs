//! Every path grammar a request is parsed with before any handler runs: the repository tree
//! (APT, YUM, PyPI, npm, raw files), and the registry's names, tags, digests and ranges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::{
    deb::AptPath, npm::NpmPath, oci, pypi::PypiPath, repo_path::RepoPath, rpm::YumPath,
};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let _ = RepoPath::parse(path);
    let _ = AptPath::parse(path);
    let _ = YumPath::parse(path);
    let _ = PypiPath::parse(path);
    let _ = NpmPath::parse(path);
    let _ = oci::is_valid_name(path);
    let _ = oci::is_valid_tag(path);
    let _ = oci::sha256_of_digest(path);
    let _ = oci::parse_chunk_range(path);
});
