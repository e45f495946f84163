//! The OCI image config of the result.
//!
//! The config starts from the base image's own config (as the engine
//! resolved it), so env, PATH, rootfs and history of the base carry over,
//! and the spec's `[image]` settings are applied on top, the way a
//! Dockerfile's ENV/USER/ENTRYPOINT/… lines would be.

use serde_json::{json, Map, Value};

use crate::plan::ConfigPatch;

/// `Env` of an image config JSON (empty when absent or unparsable).
pub fn config_env(config: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(config)
        .ok()
        .and_then(|v| v.get("config")?.get("Env")?.as_array().cloned())
        .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// A label of an image config, if set.
pub fn config_label(config: &[u8], key: &str) -> Option<String> {
    serde_json::from_slice::<Value>(config).ok()?.get("config")?.get("Labels")?.get(key)?.as_str().map(String::from)
}

/// The result's image config: base config + the spec's settings + one
/// history entry per layer strata added.
///
/// `created` (RFC 3339) is `SOURCE_DATE_EPOCH`, for reproducible images: it
/// dates the image and strata's history entries. Without it the config
/// has no time of its own (the base's `created` is dropped), as the
/// Dockerfile frontend's has none: BuildKit's exporter dates each history
/// entry by its layer's creation and the image by the newest layer. So a
/// rebuild that changes nothing gives the same image, not one dated now.
pub fn runtime_config(
    base: Option<&[u8]>,
    patch: &ConfigPatch,
    history: &[String],
    platform: &crate::platform::Platform,
    created: Option<&str>,
) -> Value {
    let mut img: Value = base.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_else(|| json!({}));
    if !img.is_object() {
        img = json!({});
    }
    let obj = img.as_object_mut().expect("object");
    obj.insert("architecture".into(), json!(platform.architecture));
    obj.insert("os".into(), json!(platform.os));
    if !platform.variant.is_empty() {
        obj.insert("variant".into(), json!(platform.variant));
    }
    match created {
        Some(c) => obj.insert("created".into(), json!(c)),
        None => obj.remove("created"),
    };
    obj.entry("rootfs").or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let config = obj.entry("config").or_insert_with(|| json!({}));
    if !config.is_object() {
        *config = json!({});
    }
    let c = config.as_object_mut().expect("object");

    let mut env: Vec<String> =
        c.get("Env").and_then(Value::as_array).map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect()).unwrap_or_default();
    if !patch.path_prepend.is_empty() {
        let base_path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH=").map(String::from))
            .unwrap_or_else(|| crate::plan::DEFAULT_PATH.trim_start_matches("PATH=").to_string());
        set_env(&mut env, "PATH", &format!("{}:{base_path}", patch.path_prepend.join(":")));
    }
    for (k, v) in &patch.env {
        set_env(&mut env, k, v);
    }
    c.insert("Env".into(), json!(env));
    c.insert("User".into(), json!(patch.user));
    c.insert("WorkingDir".into(), json!(patch.workdir));
    if let Some(ep) = &patch.entrypoint {
        c.insert("Entrypoint".into(), json!(ep));
        // As in a Dockerfile: a new ENTRYPOINT drops the base image's CMD.
        if patch.cmd.is_none() {
            c.insert("Cmd".into(), Value::Null);
        }
    }
    if let Some(cmd) = &patch.cmd {
        c.insert("Cmd".into(), json!(cmd));
    }
    if let Some(init) = &patch.init {
        // tini in front of whatever the entrypoint is (the spec's or the
        // base image's); the base CMD stays the arguments.
        let mut ep = init.clone();
        if let Some(Value::Array(old)) = c.get("Entrypoint") {
            ep.extend(old.iter().filter_map(|v| v.as_str().map(String::from)));
        }
        c.insert("Entrypoint".into(), json!(ep));
    }
    if !patch.expose.is_empty() {
        let ports = c.entry("ExposedPorts").or_insert_with(|| json!({}));
        if !ports.is_object() {
            *ports = json!({});
        }
        for p in &patch.expose {
            let key = if p.contains('/') { p.clone() } else { format!("{p}/tcp") };
            ports.as_object_mut().expect("object").insert(key, json!({}));
        }
    }
    if !patch.labels.is_empty() {
        let labels = c.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &patch.labels {
            labels.as_object_mut().expect("object").insert(k.clone(), json!(v));
        }
    }
    if let Some(h) = &patch.healthcheck {
        let mut hc = Map::new();
        let mut test = vec!["CMD".to_string()];
        test.extend(h.cmd.iter().cloned());
        hc.insert("Test".into(), json!(test));
        if let Some(i) = h.interval.as_deref().and_then(crate::timefmt::duration_ns) {
            hc.insert("Interval".into(), json!(i));
        }
        if let Some(t) = h.timeout.as_deref().and_then(crate::timefmt::duration_ns) {
            hc.insert("Timeout".into(), json!(t));
        }
        if let Some(r) = h.retries {
            hc.insert("Retries".into(), json!(r));
        }
        c.insert("Healthcheck".into(), Value::Object(hc));
    }
    if let Some(s) = &patch.stopsignal {
        c.insert("StopSignal".into(), json!(s));
    }

    let hist = obj.entry("history").or_insert_with(|| json!([]));
    if !hist.is_array() {
        *hist = json!([]);
    }
    let entries = hist.as_array_mut().expect("array");
    for h in history {
        let mut e = json!({"created_by": format!("strata: {h}"), "comment": "strata"});
        if let Some(c) = created {
            e["created"] = json!(c);
        }
        entries.push(e);
    }
    img
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.starts_with(&prefix)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_inherits_and_overrides() {
        let base = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin:/bin","LANG=C"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"import"}]}"#;
        let patch = ConfigPatch {
            env: vec![("LANG".into(), "C.UTF-8".into()), ("X".into(), "1".into())],
            path_prepend: vec!["/opt/venv/bin".into()],
            user: "1000:1000".into(),
            workdir: "/app".into(),
            entrypoint: Some(vec!["python".into()]),
            expose: vec!["8000".into()],
            ..Default::default()
        };
        let platform = crate::platform::parse("linux/amd64").unwrap();
        let c = runtime_config(Some(base), &patch, &["app: copy a".into()], &platform, Some("1970-01-01T00:00:00Z"));
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
        assert_eq!(c["config"]["Env"], json!(["PATH=/opt/venv/bin:/usr/bin:/bin", "LANG=C.UTF-8", "X=1"]));
        assert_eq!(c["config"]["Cmd"], Value::Null);
        assert_eq!(c["config"]["ExposedPorts"], json!({"8000/tcp": {}}));
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:aa"]));
        assert_eq!(c["history"].as_array().unwrap().len(), 2);
    }

    /// Without SOURCE_DATE_EPOCH nothing in the config is dated: not the
    /// image (the base's time is dropped), not strata's history entries.
    /// The exporter dates them from the layers, so a rebuild that changes
    /// nothing gives the same config bytes.
    #[test]
    fn config_has_no_time_of_its_own_without_an_epoch() {
        let base =
            br#"{"created":"2024-05-01T10:00:00Z","config":{},"history":[{"created":"2024-05-01T10:00:00Z","created_by":"import"}]}"#;
        let platform = crate::platform::parse("linux/amd64").unwrap();
        let c = runtime_config(Some(base), &ConfigPatch::default(), &["app: copy a".into()], &platform, None);
        assert_eq!(c.get("created"), None);
        assert_eq!(c["history"][0]["created"], "2024-05-01T10:00:00Z", "the base's own history keeps its times");
        assert_eq!(c["history"][1].get("created"), None);
    }
}
