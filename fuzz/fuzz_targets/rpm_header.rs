//! A pushed `.rpm`: the lead and both headers, their declared sizes checked against the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::rpm::{Limits, read_package};

fuzz_target!(|data: &[u8]| {
    let _ = read_package(
        std::io::Cursor::new(data),
        data.len() as u64,
        &Limits::default(),
    );
});
