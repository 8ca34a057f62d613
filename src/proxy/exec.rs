//! The outcome of an agent's `exec` in the page (`ExecOutcome`) and how it is handed to an
//! agent within a byte budget: an oversized result is cut, and saved in full to a file whose
//! path the answer names (old saved results are pruned).

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use serde_json::json;

/// Result of an `exec` in the page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecOutcome {
    pub execution_id: String,
    pub success: bool,
    /// The JSON-encoded result value (when `success`).
    pub result: Option<serde_json::Value>,
    /// The JS error message (when not `success`).
    pub error: Option<String>,
    pub duration_ms: u64,
    pub page_id: Option<String>,
}

/// Default budget for an exec result handed to an agent (bytes of JSON).
pub const EXEC_RESULT_BUDGET: usize = 16 * 1024;

impl ExecOutcome {
    /// The outcome as JSON for an agent: a `result` whose JSON is longer than `budget` bytes is
    /// replaced by its first `budget` bytes (as a string) plus a note, and the full result is
    /// written to `<dir>/<execution_id>-<millis>.json`, whose path is returned as
    /// `result_file`. A failed write is reported in the note (the truncated result stays).
    pub fn budgeted(&self, budget: usize, dir: &Path) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        let Some(result) = &self.result else {
            return v;
        };
        let text = result.to_string();
        if text.len() <= budget {
            return v;
        }
        let mut cut = budget.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        v["result"] = json!(&text[..cut]);
        v["result_truncated"] = json!(true);
        v["result_bytes"] = json!(text.len());
        let stamp = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let id: String = self
            .execution_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{id}-{stamp}.json"));
        prune_old_results(dir, Duration::from_secs(24 * 3600));
        let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &text));
        v["note"] = match written {
            Ok(()) => {
                v["result_file"] = json!(path.display().to_string());
                json!(format!(
                    "result is {} bytes, over the {budget}-byte budget: `result` holds the first {cut} bytes of its JSON; the full result is in {}",
                    text.len(),
                    path.display()
                ))
            }
            Err(e) => json!(format!(
                "result is {} bytes, over the {budget}-byte budget: truncated; saving the full result to {} failed: {e}",
                text.len(),
                path.display()
            )),
        };
        v
    }
}

/// Removes saved exec results (`exec-*.json`) at least `age` old from `dir` (best effort).
fn prune_old_results(dir: &Path, age: Duration) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("exec-") && name.ends_with(".json")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d >= age);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_results_over_budget_are_cut_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = ExecOutcome {
            execution_id: "exec-7".into(),
            success: true,
            result: Some(json!({"big": "é".repeat(5000)})),
            error: None,
            duration_ms: 1,
            page_id: None,
        };
        let v = o.budgeted(1000, dir.path());
        assert_eq!(v["result_truncated"], true);
        assert!(v["result"].as_str().unwrap().len() <= 1000);
        let file = v["result_file"].as_str().unwrap();
        let full: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(full, o.result.clone().unwrap());
        assert!(v["note"].as_str().unwrap().contains(file));
        // Old results are pruned, other files left alone.
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        prune_old_results(dir.path(), Duration::ZERO);
        assert!(!Path::new(file).exists());
        assert!(dir.path().join("keep.txt").exists());
        o.result = Some(json!(42));
        let v = o.budgeted(1000, dir.path());
        assert_eq!(v["result"], 42);
        assert!(v.get("result_truncated").is_none());
    }
}
