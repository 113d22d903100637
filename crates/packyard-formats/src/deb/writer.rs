//! Writes `.deb` files directly (deb(5)), for fixtures and generated benchmark inputs.
//!
//! The result is what `dpkg-deb --build` makes: `debian-binary`, a `control.tar.*` holding
//! `./control`, and a `data.tar.*` holding the given files under `./`.

use super::path::Compression;

/// A file to put into the package's data archive.
pub struct DataFile<'a> {
    /// Path without the leading `./`, such as `usr/bin/hello`.
    pub path: &'a str,
    pub contents: &'a [u8],
    pub mode: u32,
}

/// Builds a `.deb` with `control` as its control file and `files` as its contents; the
/// control member is compressed with `compression`, the data member with gzip.
pub fn build_deb(control: &str, files: &[DataFile<'_>], compression: Compression) -> Vec<u8> {
    let control_member = control_member(control, compression);
    let data_tar = tar_of(files);
    let data_member = compress_member(&data_tar, Compression::Gzip);

    let mut out = b"!<arch>\n".to_vec();
    ar_member(&mut out, "debian-binary", b"2.0\n");
    ar_member(
        &mut out,
        &format!("control.tar{}", compression.suffix()),
        &control_member,
    );
    ar_member(&mut out, "data.tar.gz", &data_member);
    out
}

/// The compressed `control.tar` member holding `control` as `./control`.
pub fn control_member(control: &str, compression: Compression) -> Vec<u8> {
    let control_tar = tar_of(&[DataFile {
        path: "control",
        contents: control.as_bytes(),
        mode: 0o644,
    }]);
    compress_member(&control_tar, compression)
}

/// The 60-byte header of an ar member of `size` bytes.
pub fn ar_header(name: &str, size: u64) -> String {
    format!(
        "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
        0, 0, 0, "100644"
    )
}

/// Appends one ar member: a 60-byte header, the data, and a newline pad to an even offset.
pub fn ar_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(ar_header(name, data.len() as u64).as_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

fn tar_of(files: &[DataFile<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    // Directories first, parents before children, as dpkg needs them to unpack.
    let mut dirs: Vec<&str> = files
        .iter()
        .flat_map(|f| f.path.match_indices('/').map(|(i, _)| &f.path[..i]))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Directory);
        builder
            .append_data(&mut header, format!("./{dir}/"), &[][..])
            .expect("writing a tar to a Vec cannot fail");
    }
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.contents.len() as u64);
        header.set_mode(file.mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, format!("./{}", file.path), file.contents)
            .expect("writing a tar to a Vec cannot fail");
    }
    builder
        .into_inner()
        .expect("writing a tar to a Vec cannot fail")
}

/// Compresses `data` as a member of that compression, for tests that craft members.
pub fn compress_member(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => crate::chunked::gzip_member(data),
        Compression::Zstd => crate::chunked::zstd_frame(data),
        Compression::Xz => crate::chunked::xz_stream(data),
    }
}
