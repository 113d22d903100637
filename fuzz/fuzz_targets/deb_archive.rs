//! A pushed `.deb`: the ar container, `control.tar.*` decompressed within limits, the control
//! paragraph validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::deb::{Limits, read_control};

fuzz_target!(|data: &[u8]| {
    let _ = read_control(
        std::io::Cursor::new(data),
        data.len() as u64,
        &Limits::default(),
    );
});
