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
