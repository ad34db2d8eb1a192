import ArgumentParser

/// What the side-by-side commands share: the lab, its audit log, the two tools compared and the
/// plan the devpod worlds follow.
struct LabOptions: ParsableArguments {
    @Option(help: "The admin kubeconfig of the lab.")
    var kubeconfig: String

    @Option(help: "The lab API server's audit log (AUDIT_LOG in the lab's cluster.env).")
    var auditLog: String

    @Option(help: "The repave binary (a release build).")
    var repave: String

    @Option(help: "The kubectl script.")
    var script = "bench/kubectl-runbook.sh"

    @Option(help: "The plan the devpod worlds follow.")
    var plan = "plans/devpod-home.yaml"

    @Option(help: "The kubectl the script runs and that is compared (its file name should be kubectl: the user agent is made from it).")
    var kubectl = "kubectl"
}
