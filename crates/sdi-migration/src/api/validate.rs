//! Request validation — pure, so every rule is table-tested with its exact message.

use crate::jobs::MigrationRequest;

/// Longest job timeout accepted (a week): beyond it a timer would be meaningless.
pub const MAX_TIMEOUT: i64 = 7 * 24 * 3600;

/// DNS-1123 subdomain (pod and node names): ≤ 253, lowercase alphanumerics, `-` and `.`.
fn is_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// DNS-1123 label (namespaces): a subdomain of one part, ≤ 63.
fn is_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_subdomain(s)
}

/// Every problem with the request, joined; `Ok` when there is none. The original
/// controller's rules (required fields, source ≠ target, timeout ≥ 0) come first.
pub fn migration_request(r: &MigrationRequest) -> Result<(), String> {
    let mut problems = Vec::new();
    let fields = [
        ("pod_name", &r.pod_name, is_subdomain as fn(&str) -> bool, "a DNS-1123 subdomain"),
        ("pod_namespace", &r.pod_namespace, is_label, "a DNS-1123 label"),
        ("source_node", &r.source_node, is_subdomain, "a DNS-1123 subdomain"),
        ("target_node", &r.target_node, is_subdomain, "a DNS-1123 subdomain"),
    ];
    for (name, value, valid, shape) in fields {
        if value.trim().is_empty() {
            problems.push(format!("{name} is required"));
        } else if !valid(value) {
            problems.push(format!("{name} {value:?} is not {shape} (lowercase letters, digits, '-', '.')"));
        }
    }
    if !r.source_node.is_empty() && r.source_node == r.target_node {
        problems.push("source_node and target_node must be different".into());
    }
    if r.timeout < 0 {
        problems.push(format!("timeout must be >= 0 seconds, got {}", r.timeout));
    } else if r.timeout > MAX_TIMEOUT {
        problems.push(format!("timeout must be at most {MAX_TIMEOUT} seconds, got {}", r.timeout));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> MigrationRequest {
        MigrationRequest {
            pod_name: "tensorflow-pod".into(),
            pod_namespace: "default".into(),
            source_node: "node-1".into(),
            target_node: "node-2".into(),
            preserve_pv: false,
            force_restart: false,
            timeout: 600,
            strategy: None,
            checkpoint: None,
        }
    }

    type Case = (fn(&mut MigrationRequest), &'static str);

    #[test]
    fn every_rule_with_its_message() {
        let table: Vec<Case> = vec![
            (|r| r.pod_name.clear(), "pod_name is required"),
            (|r| r.pod_namespace = "  ".into(), "pod_namespace is required"),
            (|r| r.source_node.clear(), "source_node is required"),
            (|r| r.target_node.clear(), "target_node is required"),
            (|r| r.target_node = "node-1".into(), "source_node and target_node must be different"),
            (|r| r.timeout = -1, "timeout must be >= 0 seconds, got -1"),
            (|r| r.timeout = MAX_TIMEOUT + 1, "timeout must be at most 604800 seconds, got 604801"),
            (
                |r| r.pod_name = "../nodes/x".into(),
                "pod_name \"../nodes/x\" is not a DNS-1123 subdomain (lowercase letters, digits, '-', '.')",
            ),
            (
                |r| r.pod_namespace = "a.b".into(),
                "pod_namespace \"a.b\" is not a DNS-1123 label (lowercase letters, digits, '-', '.')",
            ),
        ];
        for (mutate, want) in table {
            let mut r = ok();
            mutate(&mut r);
            assert_eq!(migration_request(&r), Err(want.to_string()));
        }
        assert_eq!(migration_request(&ok()), Ok(()));
        let mut r = ok();
        r.timeout = 0;
        assert_eq!(migration_request(&r), Ok(()), "0 means the default");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let mut r = ok();
        r.pod_name.clear();
        r.timeout = -5;
        assert_eq!(migration_request(&r), Err("pod_name is required; timeout must be >= 0 seconds, got -5".into()));
    }
}
