//! OS package names of other distributions as Debian's. init writes a
//! Debian base (`python:X.Y-slim-DEBIAN`) whatever the Dockerfile's base
//! was, so an Alpine `apk add postgresql-dev` or a Fedora `dnf install
//! libpq-devel` must become the Debian package with the same files, or
//! nothing (what Debian's base or build-essential already has). A name
//! init does not know is dropped and said in a note: apt would fail the
//! whole build on it.

use super::dockerfile::OsFamily;

/// What a foreign package is on Debian.
#[derive(Debug, PartialEq, Eq)]
enum Debian {
    /// This Debian package (the same name or another).
    Is(&'static str),
    /// Nothing to install: the base, glibc or build-essential has it, or
    /// it is the other distribution's plumbing (`musl-dev`, `shadow`).
    Nothing,
    /// init does not know it.
    Unknown,
}

/// Alpine names (`apk`) and the Debian package holding the same files.
/// Fedora names go through the same table after `-devel` → `-dev`.
const ALPINE: &[(&str, Option<&str>)] = &[
    // toolchain; the C library and kernel headers are build-essential's
    ("build-base", Some("build-essential")),
    ("alpine-sdk", Some("build-essential")),
    ("gcc", Some("gcc")),
    ("g++", Some("g++")),
    ("gcc-c++", Some("g++")),
    ("make", Some("make")),
    ("cmake", Some("cmake")),
    ("autoconf", Some("autoconf")),
    ("automake", Some("automake")),
    ("libtool", Some("libtool")),
    ("pkgconf", Some("pkg-config")),
    ("pkgconfig", Some("pkg-config")),
    ("pkg-config", Some("pkg-config")),
    ("cargo", Some("cargo")),
    ("rust", Some("rustc")),
    ("musl-dev", None),
    ("libc-dev", None),
    ("glibc-devel", None),
    ("linux-headers", None),
    ("kernel-headers", None),
    ("python3-dev", Some("python3-dev")),
    ("python3-devel", Some("python3-dev")),
    // databases
    ("postgresql-dev", Some("libpq-dev")),
    ("libpq-dev", Some("libpq-dev")),
    ("postgresql-libs", Some("libpq5")),
    ("libpq", Some("libpq5")),
    ("postgresql-client", Some("postgresql-client")),
    ("postgresql", Some("postgresql-client")),
    ("mariadb-dev", Some("default-libmysqlclient-dev")),
    ("mariadb-connector-c-dev", Some("default-libmysqlclient-dev")),
    ("mysql-dev", Some("default-libmysqlclient-dev")),
    ("mariadb-connector-c", Some("libmariadb3")),
    ("mariadb-libs", Some("libmariadb3")),
    ("mariadb-client", Some("default-mysql-client")),
    ("mysql-client", Some("default-mysql-client")),
    ("sqlite", Some("sqlite3")),
    ("sqlite-dev", Some("libsqlite3-dev")),
    ("sqlite-libs", None),
    ("unixodbc-dev", Some("unixodbc-dev")),
    // libraries native wheels build against, and their runtime halves
    ("libffi-dev", Some("libffi-dev")),
    ("libffi", None),
    ("openssl-dev", Some("libssl-dev")),
    ("libressl-dev", Some("libssl-dev")),
    ("openssl", Some("openssl")),
    ("libressl", Some("openssl")),
    ("openssl-libs", None),
    ("zlib-dev", Some("zlib1g-dev")),
    ("zlib", None),
    ("jpeg-dev", Some("libjpeg62-turbo-dev")),
    ("libjpeg-turbo-dev", Some("libjpeg62-turbo-dev")),
    ("jpeg", Some("libjpeg62-turbo")),
    ("libjpeg", Some("libjpeg62-turbo")),
    ("libjpeg-turbo", Some("libjpeg62-turbo")),
    ("libpng-dev", Some("libpng-dev")),
    ("libpng", Some("libpng16-16")),
    ("freetype-dev", Some("libfreetype-dev")),
    ("freetype", Some("libfreetype6")),
    ("lcms2-dev", Some("liblcms2-dev")),
    ("lcms2", Some("liblcms2-2")),
    ("tiff-dev", Some("libtiff-dev")),
    ("libtiff-dev", Some("libtiff-dev")),
    ("tiff", Some("libtiff6")),
    ("libwebp-dev", Some("libwebp-dev")),
    ("libwebp", Some("libwebp7")),
    ("libxml2-dev", Some("libxml2-dev")),
    ("libxml2", Some("libxml2")),
    ("libxslt-dev", Some("libxslt1-dev")),
    ("libxslt", Some("libxslt1.1")),
    ("yaml-dev", Some("libyaml-dev")),
    ("libyaml-dev", Some("libyaml-dev")),
    ("yaml", Some("libyaml-0-2")),
    ("pcre-dev", Some("libpcre3-dev")),
    ("pcre", Some("libpcre3")),
    ("pcre2-dev", Some("libpcre2-dev")),
    ("pcre2", Some("libpcre2-8-0")),
    ("openldap-dev", Some("libldap2-dev")),
    ("cyrus-sasl-dev", Some("libsasl2-dev")),
    ("krb5-dev", Some("libkrb5-dev")),
    ("libsodium-dev", Some("libsodium-dev")),
    ("libsodium", Some("libsodium23")),
    ("libevent-dev", Some("libevent-dev")),
    ("cairo-dev", Some("libcairo2-dev")),
    ("cairo", Some("libcairo2")),
    ("pango", Some("libpango-1.0-0")),
    ("gdk-pixbuf", Some("libgdk-pixbuf-2.0-0")),
    ("geos-dev", Some("libgeos-dev")),
    ("geos", Some("libgeos-c1v5")),
    ("gdal-dev", Some("libgdal-dev")),
    ("xmlsec-dev", Some("libxmlsec1-dev")),
    ("libmagic", Some("libmagic1")),
    ("file", Some("file")),
    ("libstdc++", None),
    ("libgcc", None),
    // tools with the same name
    ("gettext", Some("gettext")),
    ("tzdata", Some("tzdata")),
    ("ffmpeg", Some("ffmpeg")),
    ("imagemagick", Some("imagemagick")),
    ("ghostscript", Some("ghostscript")),
    ("poppler-utils", Some("poppler-utils")),
    ("graphviz", Some("graphviz")),
    ("jq", Some("jq")),
    ("rsync", Some("rsync")),
    ("zip", Some("zip")),
    ("openssh-client", Some("openssh-client")),
    ("nodejs", Some("nodejs")),
    ("npm", Some("npm")),
    ("tini", Some("tini")),
    ("dumb-init", Some("dumb-init")),
    ("su-exec", Some("gosu")),
    ("mailcap", Some("mailcap")),
    ("netcat-openbsd", Some("netcat-openbsd")),
    ("procps", Some("procps")),
    ("procps-ng", Some("procps")),
    // tools init drops anyway (the image build's, not the app's)
    ("ca-certificates", Some("ca-certificates")),
    ("curl", Some("curl")),
    ("wget", Some("wget")),
    ("git", Some("git")),
    ("gnupg", Some("gnupg")),
    ("unzip", Some("unzip")),
    ("vim", Some("vim")),
    ("nano", Some("nano")),
    ("less", Some("less")),
    ("sudo", Some("sudo")),
    // what every Debian image has
    ("shadow", None),
    ("shadow-utils", None),
    ("bash", None),
    ("coreutils", None),
    ("findutils", None),
    ("grep", None),
    ("sed", None),
    ("tar", None),
    ("gzip", None),
    ("util-linux", None),
    ("which", None),
    ("musl", None),
];

/// Names older Debian and Ubuntu releases install that the base init
/// writes (Debian 12, bookworm) does not: virtual or renamed since. A
/// Dockerfile on `python:3.9-slim` (bullseye) with `apt-get install
/// netcat` fails on bookworm with "has no installation candidate".
const BOOKWORM: &[(&str, &str)] = &[
    ("netcat", "netcat-openbsd"),
    ("libgl1-mesa-glx", "libgl1"),
    ("libssl1.1", "libssl3"),
    ("libffi7", "libffi8"),
    ("libtiff5", "libtiff6"),
    ("libwebp6", "libwebp7"),
    ("libreadline7", "libreadline8"),
    ("libicu67", "libicu72"),
    ("libmariadbclient-dev", "libmariadb-dev"),
    ("libmysqlclient-dev", "default-libmysqlclient-dev"),
    ("python-dev", "python3-dev"),
];

/// The Debian package for `name` as `family` (Alpine or Fedora) calls it.
fn debian(family: OsFamily, name: &str) -> Debian {
    let key = match family {
        OsFamily::Debian | OsFamily::Alpine => name.to_string(),
        // Fedora's `X-devel` is Debian's and Alpine's `X-dev`; `X-libs` the runtime part.
        OsFamily::Fedora => name.strip_suffix("-devel").map(|b| format!("{b}-dev")).unwrap_or_else(|| name.to_string()),
    };
    // `py3-*` (Alpine) and `python3-*` (Fedora) are the distribution's
    // Python modules: the venv installs what the app needs.
    if (key.starts_with("py3-") || key.starts_with("python3-")) && key != "python3-dev" {
        return Debian::Nothing;
    }
    // Alpine's versioned names: `postgresql16-client`, `postgresql15-dev`.
    let unversioned: String = match key.strip_prefix("postgresql") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            format!("postgresql{}", rest.trim_start_matches(|c: char| c.is_ascii_digit()))
        }
        _ => key.clone(),
    };
    match ALPINE.iter().find(|(a, _)| *a == unversioned) {
        Some((_, Some(d))) => Debian::Is(d),
        Some((_, None)) => Debian::Nothing,
        None => Debian::Unknown,
    }
}

/// `names` of `family` as Debian packages, and the ones init does not know.
pub fn translate(family: OsFamily, names: &[String]) -> (Vec<String>, Vec<String>) {
    if family == OsFamily::Debian {
        let mut out: Vec<String> = Vec::new();
        for n in names {
            let d = BOOKWORM.iter().find(|(old, _)| old == n).map(|(_, new)| new.to_string()).unwrap_or_else(|| n.clone());
            if !out.contains(&d) {
                out.push(d);
            }
        }
        return (out, Vec::new());
    }
    let (mut out, mut unknown) = (Vec::new(), Vec::new());
    for n in names {
        // a pin (`gcc=12.2`, `libpq-devel-15.4`) is the other distribution's version
        let bare = n.split(['=', '<', '>', '~']).next().unwrap_or(n);
        match debian(family, bare) {
            Debian::Is(d) => {
                if !out.iter().any(|o| o == d) {
                    out.push(d.to_string());
                }
            }
            Debian::Nothing => {}
            Debian::Unknown => unknown.push(n.clone()),
        }
    }
    (out, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpine_and_fedora_names_become_debian_ones() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (out, unknown) = translate(
            OsFamily::Alpine,
            &names(&["gcc", "musl-dev", "postgresql-dev", "postgresql-libs", "shadow", "postgresql16-client", "py3-pip", "frobnicate"]),
        );
        assert_eq!(out, ["gcc", "libpq-dev", "libpq5", "postgresql-client"]);
        assert_eq!(unknown, ["frobnicate"]);
        let (out, unknown) =
            translate(OsFamily::Fedora, &names(&["gcc-c++", "postgresql-devel", "libffi-devel", "python3-devel", "which"]));
        assert_eq!(out, ["g++", "libpq-dev", "libffi-dev", "python3-dev"]);
        assert!(unknown.is_empty());
        let (out, _) = translate(OsFamily::Debian, &names(&["libpq-dev", "frobnicate"]));
        assert_eq!(out, ["libpq-dev", "frobnicate"], "Debian names stay as written");
        // unless bookworm has them no more (a bullseye or Ubuntu Dockerfile)
        let (out, _) = translate(OsFamily::Debian, &names(&["netcat", "libgl1-mesa-glx", "libpq5", "libmysqlclient-dev"]));
        assert_eq!(out, ["netcat-openbsd", "libgl1", "libpq5", "default-libmysqlclient-dev"]);
    }
}
