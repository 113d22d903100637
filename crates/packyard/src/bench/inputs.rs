//! Benchmark inputs, written directly: `.deb` archives with realistic control data, and
//! `.rpm` files built with the `rpm` crate. Generating 100,000 of either takes seconds to
//! minutes, not the hours `dpkg-deb` or `rpmbuild` would.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use packyard_formats::deb::{
    Compression, DataFile, ar_header, ar_member, build_deb, control_member,
};

/// The name of the `index`-th generated package.
pub fn name(index: usize) -> String {
    format!("bench-pkg{index:06}")
}

fn deb_control(index: usize) -> String {
    let name = name(index);
    format!(
        "Package: {name}\nVersion: 1.{index}-1\nArchitecture: amd64\nMaintainer: Bench <bench@example.invalid>\n\
         Installed-Size: {size}\nDepends: libc6 (>= 2.34), libssl3 (>= 3.0.0), zlib1g (>= 1:1.2.0) | zlib-ng\n\
         Recommends: ca-certificates\nSection: utils\nPriority: optional\nHomepage: https://example.invalid/{name}\n\
         Description: generated package number {index}\n A package generated for benchmarks, with a description\n \
         of several lines like most real packages have.\n .\n It installs a few small files.\n",
        size = 40 + index % 100
    )
}

/// Writes `NAME_1.INDEX-1_amd64.deb`; returns its path.
pub fn write_deb(dir: &Path, index: usize) -> Result<PathBuf> {
    let name = name(index);
    let script = format!("#!/bin/sh\necho {name}\n");
    let readme = format!("{name} is a generated package.\n");
    let files = [
        DataFile {
            path: &format!("usr/bin/{name}"),
            contents: script.as_bytes(),
            mode: 0o755,
        },
        DataFile {
            path: &format!("usr/share/doc/{name}/README"),
            contents: readme.as_bytes(),
            mode: 0o644,
        },
    ];
    let bytes = build_deb(&deb_control(index), &files, Compression::Gzip);
    let path = dir.join(format!("{name}_1.{index}-1_amd64.deb"));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes `NAME-1.INDEX-1.x86_64.rpm`; returns its path.
pub fn write_rpm(dir: &Path, index: usize) -> Result<PathBuf> {
    let name = name(index);
    let version = format!("1.{index}");
    let package = rpm::PackageBuilder::new(&name, &version, "MIT", "x86_64", "generated package for benchmarks")
        .release("1")
        .description("A package generated for benchmarks, with a description\nof several lines like most real packages have.")
        .requires(rpm::Dependency::greater_eq("glibc", "2.34"))
        .requires(rpm::Dependency::any("openssl-libs"))
        .with_file_contents(format!("#!/bin/sh\necho {name}\n"), rpm::FileOptions::new(format!("/usr/bin/{name}")).mode(0o100755))?
        .with_file_contents(format!("{name}\n"), rpm::FileOptions::new(format!("/usr/share/doc/{name}/README")))?
        .build()?;
    let path = dir.join(format!("{name}-{version}-1.x86_64.rpm"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    package.write(&mut file)?;
    Ok(path)
}

/// Writes a `.deb` of `NAME_1.0_amd64` that Packyard accepts, whose data member is `data_size`
/// bytes of filler (not a tar: only installing would read it), written in blocks so files of
/// gigabytes never sit in memory.
pub fn write_large_deb(path: &Path, name: &str, data_size: u64) -> Result<()> {
    use std::io::Write;
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Bench <bench@example.invalid>\n\
         Installed-Size: {}\nSection: utils\nPriority: optional\nDescription: a large generated package\n \
         Its data member is filler.\n",
        data_size / 1024
    );
    let mut head = b"!<arch>\n".to_vec();
    ar_member(&mut head, "debian-binary", b"2.0\n");
    ar_member(
        &mut head,
        "control.tar.gz",
        &control_member(&control, Compression::Gzip),
    );
    head.extend_from_slice(ar_header("data.tar", data_size).as_bytes());
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(&head)?;
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut left = data_size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    if data_size % 2 == 1 {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
