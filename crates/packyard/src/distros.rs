//! The distribution versions packages are pushed to, with ids that never change.
//!
//! Ids are part of the API (`package[distro_version_id]`) and are stored in every package row,
//! so a released id is never reused or renumbered: new releases get new ids at the end of
//! their block. Blocks: 1-9 generic, 10-99 Debian, 100-299 Ubuntu, 300-319 Enterprise Linux,
//! 320-339 Oracle Linux, 340-349 Amazon Linux, 350-369 SLES, 370-399 openSUSE, 400-599 Fedora
//! (400 + release).

use packyard_api::{DistributionFamily, DistributionVersion};

pub use crate::formats::PackageFormat;

/// One distribution version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distro {
    pub id: i64,
    /// `debian`, `ubuntu`, `el`, `fedora` ... or `any` / `rpm_any`.
    pub os: &'static str,
    /// The path segment after the OS: the codename apt uses as the suite (`bookworm`) for deb,
    /// the release (`9`, `15.6`) for rpm.
    pub dist: &'static str,
    pub version_number: &'static str,
    pub display_name: &'static str,
    pub format: PackageFormat,
}

const fn deb(
    id: i64,
    os: &'static str,
    dist: &'static str,
    version_number: &'static str,
    display_name: &'static str,
) -> Distro {
    Distro {
        id,
        os,
        dist,
        version_number,
        display_name,
        format: PackageFormat::Deb,
    }
}

const fn rpm(
    id: i64,
    os: &'static str,
    version: &'static str,
    display_name: &'static str,
) -> Distro {
    Distro {
        id,
        os,
        dist: version,
        version_number: version,
        display_name,
        format: PackageFormat::Rpm,
    }
}

pub const DISTROS: &[Distro] = &[
    Distro {
        id: 5,
        os: "anyfile",
        dist: "1",
        version_number: "1",
        display_name: "1",
        format: PackageFormat::AnyFile,
    },
    Distro {
        id: 6,
        os: "python",
        dist: "1",
        version_number: "1",
        display_name: "1",
        format: PackageFormat::Python,
    },
    Distro {
        id: 7,
        os: "node",
        dist: "1",
        version_number: "1",
        display_name: "1",
        format: PackageFormat::Node,
    },
    Distro {
        id: 8,
        os: "oci",
        dist: "1",
        version_number: "1",
        display_name: "1",
        format: PackageFormat::Oci,
    },
    deb(1, "any", "any", "", "any"),
    deb(10, "debian", "buster", "10", "10 buster"),
    deb(11, "debian", "bullseye", "11", "11 bullseye"),
    deb(12, "debian", "bookworm", "12", "12 bookworm"),
    deb(13, "debian", "trixie", "13", "13 trixie"),
    deb(14, "debian", "forky", "14", "14 forky"),
    deb(19, "debian", "sid", "", "sid"),
    deb(100, "ubuntu", "bionic", "18.04", "18.04 Bionic Beaver"),
    deb(101, "ubuntu", "cosmic", "18.10", "18.10 Cosmic Cuttlefish"),
    deb(102, "ubuntu", "disco", "19.04", "19.04 Disco Dingo"),
    deb(103, "ubuntu", "eoan", "19.10", "19.10 Eoan Ermine"),
    deb(104, "ubuntu", "focal", "20.04", "20.04 Focal Fossa"),
    deb(105, "ubuntu", "groovy", "20.10", "20.10 Groovy Gorilla"),
    deb(106, "ubuntu", "hirsute", "21.04", "21.04 Hirsute Hippo"),
    deb(107, "ubuntu", "impish", "21.10", "21.10 Impish Indri"),
    deb(108, "ubuntu", "jammy", "22.04", "22.04 Jammy Jellyfish"),
    deb(109, "ubuntu", "kinetic", "22.10", "22.10 Kinetic Kudu"),
    deb(110, "ubuntu", "lunar", "23.04", "23.04 Lunar Lobster"),
    deb(111, "ubuntu", "mantic", "23.10", "23.10 Mantic Minotaur"),
    deb(112, "ubuntu", "noble", "24.04", "24.04 Noble Numbat"),
    deb(113, "ubuntu", "oracular", "24.10", "24.10 Oracular Oriole"),
    deb(114, "ubuntu", "plucky", "25.04", "25.04 Plucky Puffin"),
    deb(115, "ubuntu", "questing", "25.10", "25.10 Questing Quokka"),
    deb(116, "ubuntu", "resolute", "26.04", "26.04 Resolute Raccoon"),
    rpm(2, "rpm_any", "rpm_any", "rpm_any"),
    rpm(306, "el", "6", "6"),
    rpm(307, "el", "7", "7"),
    rpm(308, "el", "8", "8"),
    rpm(309, "el", "9", "9"),
    rpm(310, "el", "10", "10"),
    rpm(327, "ol", "7", "7"),
    rpm(328, "ol", "8", "8"),
    rpm(329, "ol", "9", "9"),
    rpm(330, "ol", "10", "10"),
    rpm(340, "amzn", "2", "2"),
    rpm(341, "amzn", "2023", "2023"),
    rpm(350, "sles", "12.5", "12.5"),
    rpm(360, "sles", "15.0", "15.0"),
    rpm(361, "sles", "15.1", "15.1"),
    rpm(362, "sles", "15.2", "15.2"),
    rpm(363, "sles", "15.3", "15.3"),
    rpm(364, "sles", "15.4", "15.4"),
    rpm(365, "sles", "15.5", "15.5"),
    rpm(366, "sles", "15.6", "15.6"),
    rpm(367, "sles", "15.7", "15.7"),
    rpm(370, "opensuse", "15.0", "15.0"),
    rpm(371, "opensuse", "15.1", "15.1"),
    rpm(372, "opensuse", "15.2", "15.2"),
    rpm(373, "opensuse", "15.3", "15.3"),
    rpm(374, "opensuse", "15.4", "15.4"),
    rpm(375, "opensuse", "15.5", "15.5"),
    rpm(376, "opensuse", "15.6", "15.6"),
    rpm(442, "fedora", "42", "42"),
    rpm(443, "fedora", "43", "43"),
    rpm(444, "fedora", "44", "44"),
    rpm(445, "fedora", "45", "45"),
];

pub fn by_id(id: i64) -> Option<&'static Distro> {
    DISTROS.iter().find(|d| d.id == id)
}

/// `OS/DIST` of a distribution version id, or the id itself when it is unknown.
pub fn path_of(id: i64) -> String {
    by_id(id).map_or_else(|| id.to_string(), |d| format!("{}/{}", d.os, d.dist))
}

pub fn by_os_dist(os: &str, dist: &str) -> Option<&'static Distro> {
    DISTROS.iter().find(|d| d.os == os && d.dist == dist)
}

/// Resolves `OS/DIST` as the CLI and the yank path give it; DIST may be the codename or the
/// version number.
pub fn by_path(os: &str, dist: &str) -> Option<&'static Distro> {
    by_os_dist(os, dist).or_else(|| {
        DISTROS
            .iter()
            .find(|d| d.os == os && !d.version_number.is_empty() && d.version_number == dist)
    })
}

fn os_display_name(os: &str) -> &'static str {
    match os {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "el" => "Enterprise Linux",
        "ol" => "Oracle Linux",
        "amzn" => "Amazon Linux",
        "sles" => "SUSE Linux Enterprise Server",
        "opensuse" => "openSUSE",
        "fedora" => "Fedora",
        "anyfile" => "Any file",
        "python" => "Python",
        "node" => "Node.js",
        "oci" => "Container images",
        _ => "Any",
    }
}

/// One package type's list in `GET /api/v1/distributions.json`.
pub fn families(format: PackageFormat) -> Vec<DistributionFamily> {
    let mut families: Vec<DistributionFamily> = Vec::new();
    for distro in DISTROS.iter().filter(|d| d.format == format) {
        let version = DistributionVersion {
            id: distro.id,
            display_name: distro.display_name.to_owned(),
            index_name: distro.dist.to_owned(),
            version_number: distro.version_number.to_owned(),
        };
        match families.iter_mut().find(|f| f.index_name == distro.os) {
            Some(family) => family.versions.push(version),
            None => families.push(DistributionFamily {
                display_name: os_display_name(distro.os).to_owned(),
                index_name: distro.os.to_owned(),
                versions: vec![version],
            }),
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_pairs_resolve() {
        for (i, a) in DISTROS.iter().enumerate() {
            assert!(
                DISTROS[i + 1..]
                    .iter()
                    .all(|b| b.id != a.id && (b.os, b.dist) != (a.os, a.dist))
            );
            assert_eq!(by_id(a.id), Some(a));
        }
        assert_eq!(by_path("ubuntu", "22.04").map(|d| d.dist), Some("jammy"));
        assert_eq!(by_path("debian", "bookworm").map(|d| d.id), Some(12));
        assert_eq!(
            by_path("el", "9").map(|d| d.format),
            Some(PackageFormat::Rpm)
        );
    }
}
