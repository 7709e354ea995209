//! A node as `kubectl get nodes -o json` shows it, read the same way by the bootstrap stage's
//! probe (which cordons and uncordons) and by `jeeves check` (which reports it).

use serde_json::Value;

/// The annotation on a node Jeeves cordoned (for an upgrade), removed when it uncordons it.
pub const CORDONED: &str = "jeeves.io/cordoned";

/// `spec.unschedulable`: cordoned, by whoever.
pub fn cordoned(node: &Value) -> bool {
    node["spec"]["unschedulable"] == true
}

/// Carries Jeeves' mark (`CORDONED`): Jeeves cordoned it and has not uncordoned it since.
pub fn marked(node: &Value) -> bool {
    node["metadata"]["annotations"].get(CORDONED).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_cordon_and_the_mark_apart() {
        let node = json!({
            "metadata": {"annotations": {CORDONED: "upgrade"}},
            "spec": {"unschedulable": true},
        });
        assert!(cordoned(&node) && marked(&node));
        let by_hand = json!({"metadata": {"annotations": {"other": "x"}}, "spec": {}});
        assert!(!cordoned(&by_hand) && !marked(&by_hand));
        assert!(!cordoned(&json!({})) && !marked(&json!({})));
    }
}
