//! Reproducibility: `SOURCE_DATE_EPOCH` gives the same image digest.

use super::common::*;

#[test]
fn source_date_epoch_gives_the_same_image() {
    gate!();
    let p = Project::from_example("hello");
    let sde = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000", "--provenance=false"];
    p.build(&sde).assert_ok();
    let first = p.inspect("{{.Id}}");
    assert_eq!(p.inspect("{{.Created}}"), "2023-11-14T22:13:20Z");
    p.build(&sde).assert_ok();
    assert_eq!(p.inspect("{{.Id}}"), first, "same SOURCE_DATE_EPOCH, same image digest");
    p.build(&["--build-arg", "SOURCE_DATE_EPOCH=1700000001", "--provenance=false"]).assert_ok();
    assert_ne!(p.inspect("{{.Id}}"), first);
}

/// Without SOURCE_DATE_EPOCH a rebuild that changes nothing gives the same
/// image, as a Dockerfile's does: the config is dated by its newest layer
/// (the exporter's rule), not by the build's clock. A new image id per
/// no-change build meant a new manifest to export, push and deploy.
#[test]
fn a_rebuild_that_changes_nothing_gives_the_same_image() {
    gate!();
    let p = Project::from_example("hello");
    let quiet = ["--provenance=false"];
    p.build(&quiet).assert_ok();
    let first = p.inspect("{{.Id}}");
    let created = p.inspect("{{.Created}}");
    let year: u32 = created[..4].parse().unwrap_or(0);
    assert!(year >= 2024, "dated by a layer strata built, not the epoch or the base: {created}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.build(&quiet).assert_ok();
    assert_eq!(p.inspect("{{.Id}}"), first, "no change, same image");
    assert_eq!(p.inspect("{{.Created}}"), created);
}
