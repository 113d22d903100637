//! Inputs the fuzzers (`scripts/fuzz`) found to fail a parser, kept so they never do again.
//! Each must be refused with an error, not a panic, an endless loop or unbounded memory.

use std::io::Cursor;

fn input(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn rpm_header_entries_pointing_outside_the_header_are_malformed() {
    for name in [
        "rpm-entry-offset-outside-header.rpm",
        "rpm-entry-outside-data-2.rpm",
    ] {
        let data = input(name);
        let read = packyard_formats::rpm::read_package(
            Cursor::new(&data),
            data.len() as u64,
            &packyard_formats::rpm::Limits::default(),
        );
        assert!(
            matches!(read, Err(packyard_formats::rpm::RpmError::Malformed(_))),
            "{name}: {read:?}"
        );
    }
}
