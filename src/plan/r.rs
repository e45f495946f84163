//! R: CRAN packages installed into a library the runtime copies.

use crate::spec::RLang;

use super::caches::{cache_id, sanitize_id};
use super::paths::list_span;
use super::shell::shell_quote;
use super::{run, FileSource, Mount, Op, Sharing, R_LIBS, R_REPOS_MOUNT};

/// CRAN packages into R_LIBS. `install.packages` only warns when a package
/// fails, so the script checks every package loads afterwards.
pub(super) fn install(r: &RLang, image: &str) -> Op {
    let mut mounts = vec![Mount::Cache {
        target: "/var/cache/strata-r".into(),
        id: cache_id("r-downloads", &sanitize_id(image)),
        sharing: Sharing::Locked,
        owner: None,
        mode: None,
    }];
    let mut urls = Vec::new();
    for repo in &r.repos {
        match repo.value.strip_prefix("context:") {
            Some(name) => {
                let target = format!("{R_REPOS_MOUNT}/{name}");
                mounts.push(Mount::Source { target: target.clone(), from: FileSource::Named(name.to_string()), writable: false });
                urls.push(format!("file://{target}"));
            }
            None => urls.push(repo.value.clone()),
        }
    }
    if urls.is_empty() {
        urls.push("https://cloud.r-project.org".into());
    }
    // Names and URLs were validated (no quotes or spaces), so they can be
    // written into the R string literals.
    let pkgs: Vec<String> = r.cran.iter().map(|c| format!("'{}'", c.value)).collect();
    let repos: Vec<String> = urls.iter().map(|u| format!("'{u}'")).collect();
    let code = format!(
        "p <- c({p}); install.packages(p, lib='{R_LIBS}', repos=c({r}), destdir='/var/cache/strata-r'); \
         for (x in p) if (!requireNamespace(x, lib.loc='{R_LIBS}', quietly=TRUE)) stop('R package ', x, ' failed to install')",
        p = pkgs.join(", "),
        r = repos.join(", ")
    );
    run(
        format!("r: install {}", r.cran.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join(" ")),
        format!("set -e; mkdir -p {R_LIBS}; Rscript -e {}", shell_quote(&code)),
        mounts,
        vec![],
        list_span(&r.cran),
    )
}
