//! Saved plans (`plan --out`, `show`, `up --plan`) with the real terraform binary on the local
//! configuration: what was approved is applied, and a plan the stack or the settings have moved
//! away from is refused (exit 2) before anything changes.

use crate::common;

use common::Test;

fn tfstate(t: &Test) -> String {
    std::fs::read_to_string(t.path("terraform/lab/terraform.tfstate")).unwrap_or_default()
}

#[test]
fn a_saved_plan_is_applied_as_approved_and_refused_once_anything_moved() {
    let t = Test::new();
    let plan = t.path("approved.plan");
    let p = plan.to_str().unwrap();

    // Saved on an empty stack: three creates, the file private, the review readable.
    t.run(&["plan", "--only", "terraform", "--out", p])
        .expect(0);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let show = t.run(&["show", p]).expect(0);
    for needle in [
        "Saved plan for pipeline `lab` (chat.jeeves.test)",
        "[terraform] plan: 3 changes",
        "[terraform]   create terraform_data.controller",
        "jeeves up --plan",
    ] {
        assert!(show.stdout.contains(needle), "{needle}:\n{}", show.stdout);
    }

    // Another run applies, then destroys: the same three creates would be planned again, but
    // the state moved under the saved plan, and terraform itself refuses it.
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["down", "--yes", "--keep-dns"]).expect(0);
    let stale = t.run(&["up", "--plan", p]).expect(2);
    assert!(
        stale.stderr.contains("terraform refused the saved plan")
            && stale.stderr.contains("Saved plan is stale"),
        "{}",
        stale.stderr
    );
    assert!(!tfstate(&t).contains("terraform_data"), "nothing applied");

    // A fresh saved plan is applied as it is: what it showed, and the inventory.
    t.run(&["plan", "--only", "terraform", "--out", p])
        .expect(0);
    let applied = t.run(&["--output", "json", "up", "--plan", p]).expect(0);
    assert_eq!(applied.stage_result("terraform"), "changed");
    assert_eq!(applied.planned("terraform").len(), 3);
    assert_eq!(
        t.state()["inventory"]["controller"]["public_ip"],
        "10.77.0.10"
    );

    // Applied once: again, the fresh plan has nothing of it, and says so per change.
    let again = t.run(&["up", "--plan", p]).expect(2);
    assert!(
        again.stderr.contains("a fresh plan differs")
            && again
                .stderr
                .contains("terraform: - create terraform_data.controller"),
        "{}",
        again.stderr
    );

    // Settings moved since the plan: named, nothing applied.
    t.run(&["plan", "--only", "terraform", "--out", p])
        .expect(0);
    let pipeline = t.path("pipelines/lab.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let fewer = text.replace(
        "  { hostname = \"worker-2\", public_ip = \"10.77.0.12\", private_ip = \"10.77.0.12\" },\n",
        "",
    );
    assert_ne!(text, fewer);
    std::fs::write(&pipeline, fewer).unwrap();
    let before = tfstate(&t);
    let moved = t.run(&["up", "--plan", p]).expect(2);
    assert!(
        moved.stderr.contains("the settings moved")
            && moved.stderr.contains("terraform: terraform.vars.workers"),
        "{}",
        moved.stderr
    );
    assert_eq!(tfstate(&t), before, "nothing applied");

    // Not a saved plan: a usage error naming the file.
    std::fs::write(t.path("junk.plan"), "{}").unwrap();
    let junk = t
        .run(&["up", "--plan", t.path("junk.plan").to_str().unwrap()])
        .expect(2);
    assert!(
        junk.stderr.contains("junk.plan: not a saved plan"),
        "{}",
        junk.stderr
    );
    // --plan is the whole selection.
    t.run(&["up", "--plan", p, "--only", "terraform"]).expect(2);
}
