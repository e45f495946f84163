//! uv for the builder, as a pinned download: PyPI's wheel of
//! `UV_VERSION` for the target platform, checked by sha256 and fetched by
//! the engine, its static binary and its dist-info (for the builder's
//! SBOM) unpacked by the image's python3. No venv, no pip run: a cold
//! build saves the ~6 s `pip install uv` takes.
//!
//! Two tables: glibc images get the manylinux wheels, musl (apk) images
//! the musllinux ones (aarch64, armv7l and riscv64 wheels carry a static
//! binary tagged for both). The URLs and hashes are PyPI's for uv 0.13.9.

use crate::plan::{Pinned, PinnedFile};

const fn wheel(arch: &'static str, url: &'static str, sha256: &'static str) -> PinnedFile {
    PinnedFile { arch, version: super::UV_VERSION, url, sha256 }
}

macro_rules! url {
    ($path:literal) => {
        concat!("https://files.pythonhosted.org/packages/", $path)
    };
}

const AARCH64: PinnedFile = wheel(
    "arm64",
    url!("57/15/94b6cd62ac3ff6550288328e8035288875197cbc183f51554b266a69877b/uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl"),
    "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
);
const ARMV7: PinnedFile = wheel(
    "arm/v7",
    url!("23/c0/fc8cf5f3169501e3356d69c771168d8de45a823835099c75c987afb18a16/uv-0.13.9-py3-none-manylinux_2_17_armv7l.manylinux2014_armv7l.musllinux_1_1_armv7l.whl"),
    "7ec1e1dd9b6cb335c301afdf877989df384227313981850755a59561f75e4ab8",
);
const ARMV6: PinnedFile = wheel(
    "arm/v6",
    url!("f9/f1/0bb95394ef73f480ac3a66d8c570a1eb22187c331b6a9e3ef6c953f885dd/uv-0.13.9-py3-none-linux_armv6l.whl"),
    "56ec37616c00220032fc7b8c9d0ef51367fd0d70d9cd6ddd841660f949f84fed",
);
const RISCV64: PinnedFile = wheel(
    "riscv64",
    url!("ae/01/a21cd70ccda3156aea014b43a0885c122b3d25e642230c9f61fdf71096e0/uv-0.13.9-py3-none-manylinux_2_31_riscv64.musllinux_1_1_riscv64.whl"),
    "6d5114bba238adddacb32fb11904f2b3ff4e988f8e9ff0d8d3b5e9822cf836b8",
);

/// A platform without a wheel fetches this, which does not exist: the
/// build fails naming it.
const UNKNOWN: &str = "https://files.pythonhosted.org/packages/strata-has-no-uv-0.13.9-wheel-for-{arch}.whl";

pub const UV_GLIBC: Pinned = Pinned {
    name: "uv",
    filename: "uv.whl",
    files: &[
        wheel(
            "amd64",
            url!("3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
        ),
        AARCH64,
        ARMV7,
        ARMV6,
        wheel(
            "386",
            url!("4a/b4/1f3ec785273abd4e4964e6c9083d79dd269ebeac146511488524c18eebeb/uv-0.13.9-py3-none-manylinux_2_17_i686.manylinux2014_i686.whl"),
            "db5c8df7145c21ffea9c0f74e38823bac3af60cbadf0e26b8633f08627b17bab",
        ),
        wheel(
            "ppc64le",
            url!("cb/25/96924e14d96384ba0052f83600b08719209a92dd677faa49d9c237a27722/uv-0.13.9-py3-none-manylinux_2_17_ppc64le.manylinux2014_ppc64le.whl"),
            "c5dbdb7c8737cd183a9dce95b39cfd1f3d54ec2a27a1bb58f160293f9ba2c805",
        ),
        wheel(
            "s390x",
            url!("01/06/9c617c17b105570423765227a033c7ead19b7dcffe7baa56d7caf804a3f3/uv-0.13.9-py3-none-manylinux_2_17_s390x.manylinux2014_s390x.whl"),
            "a6e845f387e4ed55bb59342957a9179e24a631fcc7668bda3426ae1cef8ed4b9",
        ),
        RISCV64,
    ],
    unknown_arch_url: UNKNOWN,
};

pub const UV_MUSL: Pinned = Pinned {
    name: "uv",
    filename: "uv.whl",
    files: &[
        wheel(
            "amd64",
            url!("fe/fe/794884de0efd3ac77a427cab21aa72c0483e100c55a42cd5cbb02c141b84/uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl"),
            "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
        ),
        AARCH64,
        ARMV7,
        wheel(
            "386",
            url!("86/ca/d5e53883246d8b1e40cbb48234a79e85cc45a0faa95913db306bc0012731/uv-0.13.9-py3-none-musllinux_1_1_i686.whl"),
            "a2ee66fe8b6608e1482ab1bde5799da04705c1cb40324c7f66054ecf46ae6e40",
        ),
        RISCV64,
    ],
    unknown_arch_url: UNKNOWN,
};

/// Python (stdlib only) that unpacks `uv` and its dist-info from the
/// mounted wheel into `UV_HOME` (`bin/uv`, `lib/python3/site-packages`).
pub fn unpack_script(wheel: &str) -> String {
    let home = super::UV_HOME;
    format!(
        r#"import os, shutil, zipfile
site = "{home}/lib/python3/site-packages"
os.makedirs("{home}/bin", exist_ok=True)
with zipfile.ZipFile("{wheel}") as z:
    for n in z.namelist():
        if n.endswith(".data/scripts/uv"):
            with z.open(n) as src, open("{home}/bin/uv", "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif n.split("/", 1)[0].endswith(".dist-info") and not n.endswith("/"):
            z.extract(n, site)
os.chmod("{home}/bin/uv", 0o755)
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wheel_is_the_pinned_version_for_its_platform() {
        for (table, libc) in [(&UV_GLIBC, "manylinux"), (&UV_MUSL, "musllinux")] {
            for f in table.files {
                let name = f.url.rsplit('/').next().unwrap();
                assert!(name.starts_with(&format!("uv-{}-py3-none-", super::super::UV_VERSION)), "{name}");
                assert!(name.contains(libc) || name.contains("linux_armv6l"), "{libc}: {name}");
                let arch = match f.arch {
                    "amd64" => "x86_64",
                    "arm64" => "aarch64",
                    "arm/v7" => "armv7l",
                    "arm/v6" => "armv6l",
                    "386" => "i686",
                    other => other,
                };
                assert!(name.contains(arch), "{}: {name}", f.arch);
                assert_eq!(f.sha256.len(), 64);
            }
        }
    }
}
