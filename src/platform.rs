//! Platform strings (`linux/amd64`, `linux/arm/v7`), as plain data: the
//! LLB's protobuf form is `llb`'s business (`From` conversions there).

/// OS/ARCH[/VARIANT].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

/// Parses OS/ARCH[/VARIANT].
pub fn parse(s: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = s.trim().split('/').collect();
    let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
        return Err(format!("invalid platform \"{s}\": expected OS/ARCH[/VARIANT], e.g. linux/amd64"));
    }
    Ok(Platform {
        os: parts[0].to_string(),
        architecture: parts[1].to_string(),
        variant: parts.get(2).map(|v| v.to_string()).unwrap_or_default(),
    })
}

/// The inverse of `parse`, as BuildKit's `platforms.Format` writes it.
pub fn format(p: &Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format(self))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for s in ["linux/amd64", "linux/arm/v7", "linux/386"] {
            assert_eq!(super::format(&super::parse(s).unwrap()), s);
        }
        assert!(super::parse("linux").is_err());
        assert!(super::parse("linux/amd64;rm").is_err());
    }
}
