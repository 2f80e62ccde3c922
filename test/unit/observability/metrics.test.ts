import { expect } from "chai";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import { OperatorMetrics, type MetricsSource } from "../../../src/observability/metrics.js";

function source(policies: ClusterSecurityPolicy[], over: Partial<MetricsSource> = {}): MetricsSource {
  return {
    policies: () => policies,
    queueDepth: () => 3,
    runningFor: () => [1_500, 500],
    activeWorkers: () => 2,
    maxConcurrentReconciles: () => 4,
    isLeader: () => true,
    cacheSynced: () => true,
    ...over,
  };
}

const policy: ClusterSecurityPolicy = {
  apiVersion: "security.csp-operator.io/v1alpha1",
  kind: "ClusterSecurityPolicy",
  metadata: { name: "baseline" },
  spec: {
    mode: "Enforce",
    exemptions: [{ findingId: "X", reason: "r", expires: "2030-01-01T00:00:00Z" }],
  },
  status: {
    summary: { namespaces: 2, managedObjects: 5, drifted: 2, findings: 3 },
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Reconciled",
        message: "",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
    ],
    findings: [
      { id: "A", severity: "High", resource: "ClusterRole/x", message: "m", area: "rbac" },
      { id: "B", severity: "High", resource: "ns/secret-name-in-team-a", message: "m", area: "rbac" },
      { id: "C", severity: "Low", resource: "r", message: "m", area: "somethingNew" },
    ],
  },
};

describe("OperatorMetrics", () => {
  it("exports controller-runtime names with their labels, computed at scrape time", async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.attach(source([policy]));
    const obs = m.controllerObserver();
    obs.queue?.added();
    obs.queue?.started(20);
    obs.reconciled("baseline", "success", 120);
    obs.reconciled("baseline", "error", 30);
    obs.queue?.retried();
    const text = await m.registry.metrics();
    expect(text).to.contain(
      'controller_runtime_reconcile_total{controller="clustersecuritypolicy",result="success"} 1',
    );
    expect(text).to.contain(
      'controller_runtime_reconcile_total{controller="clustersecuritypolicy",result="error"} 1',
    );
    expect(text).to.contain(
      'controller_runtime_reconcile_errors_total{controller="clustersecuritypolicy"} 1',
    );
    expect(text).to.contain(
      'controller_runtime_reconcile_time_seconds_count{controller="clustersecuritypolicy"} 2',
    );
    expect(text).to.contain(
      'controller_runtime_max_concurrent_reconciles{controller="clustersecuritypolicy"} 4',
    );
    expect(text).to.contain('controller_runtime_active_workers{controller="clustersecuritypolicy"} 2');
    expect(text).to.contain(
      'workqueue_depth{name="clustersecuritypolicy",controller="clustersecuritypolicy"} 3',
    );
    expect(text).to.contain(
      'workqueue_adds_total{name="clustersecuritypolicy",controller="clustersecuritypolicy"} 1',
    );
    expect(text).to.contain(
      'workqueue_retries_total{name="clustersecuritypolicy",controller="clustersecuritypolicy"} 1',
    );
    expect(text).to.contain(
      'workqueue_unfinished_work_seconds{name="clustersecuritypolicy",controller="clustersecuritypolicy"} 2',
    );
    expect(text).to.contain(
      'workqueue_longest_running_processor_seconds{name="clustersecuritypolicy",controller="clustersecuritypolicy"} 1.5',
    );
    expect(text).to.contain('leader_election_master_status{name="csp-operator-leader"} 1');
  });

  it("per-policy product metrics with bounded labels (never an object name)", async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.attach(source([policy]));
    const text = await m.registry.metrics();
    expect(text).to.contain('csp_policy_drifted_objects{policy="baseline"} 2');
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="High",area="rbac"} 2');
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="Low",area="Other"} 1');
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="Critical",area="all"} 0');
    expect(text).to.contain('csp_policy_condition{policy="baseline",type="Ready",status="True"} 1');
    expect(text).to.contain('csp_policy_condition{policy="baseline",type="Ready",status="False"} 0');
    expect(text).to.contain(
      'csp_exemption_expiry_timestamp_seconds{policy="baseline",exemption="0",area=""} 1893456000',
    );
    expect(text).to.not.contain("secret-name-in-team-a");
  });

  it("a deleted policy's corrections and state go with it (pruned only from a synced cache)", async () => {
    const policies = [policy, { ...policy, metadata: { name: "gone" } }];
    let synced = true;
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.attach(source(policies, { cacheSynced: () => synced }));
    m.event("gone", "DriftCorrected", "Corrected 2 object(s): NetworkPolicy a/b (Missing) x2");
    m.event("baseline", "DriftCorrected", "Corrected 1 object(s): NetworkPolicy a/b (Modified)");
    m.controllerObserver().reconciled("gone", "success", 5);
    let text = await m.registry.metrics();
    expect(text).to.contain('csp_corrections_total{policy="gone",kind="NetworkPolicy",reason="Missing"} 2');
    expect(text).to.contain('csp_policy_last_successful_reconcile_timestamp_seconds{policy="gone"}');
    policies.pop();
    synced = false; // an unsynced cache says nothing about what was deleted
    text = await m.registry.metrics();
    expect(text).to.contain('csp_corrections_total{policy="gone"');
    synced = true;
    text = await m.registry.metrics();
    expect(text).to.not.contain('policy="gone"');
    expect(text).to.contain(
      'csp_corrections_total{policy="baseline",kind="NetworkPolicy",reason="Modified"} 1',
    );
    // Recreated under the same name: starts from nothing.
    policies.push({ ...policy, metadata: { name: "gone" } });
    text = await m.registry.metrics();
    expect(text).to.not.contain('csp_corrections_total{policy="gone"');
    expect(text).to.not.contain('csp_policy_last_successful_reconcile_timestamp_seconds{policy="gone"}');
  });

  it("a deleted policy disappears from the next scrape", async () => {
    const policies = [policy];
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.attach(source(policies));
    expect(await m.registry.metrics()).to.contain('csp_policy_drifted_objects{policy="baseline"}');
    policies.pop();
    expect(await m.registry.metrics()).to.not.contain('policy="baseline"');
  });

  it("findings past the bounded status list are exported as area=unlisted: sums are the true totals", async () => {
    const listed = Array.from({ length: 50 }, (_, i) => ({
      id: `RBAC-${i}`,
      severity: "High" as const,
      resource: `ClusterRole/r${i}`,
      message: "m",
      area: "rbac",
    }));
    const big = {
      ...policy,
      status: {
        ...policy.status,
        findings: listed,
        summary: {
          namespaces: 1,
          managedObjects: 1,
          drifted: 0,
          findings: 127,
          findingsBySeverity: { High: 120, Low: 7 },
        },
      },
    };
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.attach(source([big]));
    const text = await m.registry.metrics();
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="High",area="rbac"} 50');
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="High",area="unlisted"} 70');
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="Low",area="unlisted"} 7');
    expect(text).to.contain('csp_policy_findings{policy="baseline",severity="Critical",area="all"} 0');
    expect(text).to.not.contain('severity="Medium",area="unlisted"');
  });

  it("counts corrections by kind and reason from DriftCorrected events, folding unknown values", async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.event(
      "baseline",
      "DriftCorrected",
      "Corrected 3 object(s): NetworkPolicy team-a/csp-x (Missing), Namespace team-a (Modified) x6, Gizmo a/b (Weird), and 4 more",
    );
    const text = await m.registry.metrics();
    expect(text).to.contain(
      'csp_corrections_total{policy="baseline",kind="NetworkPolicy",reason="Missing"} 1',
    );
    expect(text).to.contain('csp_corrections_total{policy="baseline",kind="Namespace",reason="Modified"} 6');
    expect(text).to.contain('csp_corrections_total{policy="baseline",kind="Other",reason="Other"} 5');
    expect(text).to.not.contain("team-a");
  });

  it("exports the key-rotation phase and its times from the persisted state, on the leader only", async () => {
    const enc: ClusterSecurityPolicy = {
      ...policy,
      metadata: { name: "enc" },
      spec: { ...policy.spec, encryption: {} },
    };
    let leader = true;
    let policies = [enc];
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.attach(source([], { policies: () => policies, isLeader: () => leader }));
    m.rotation("enc", {
      phase: "NewKeyLoaded",
      phaseSince: "1970-01-01T00:33:20Z",
      completedAt: "1970-01-01T00:16:40Z",
    });
    let text = await m.registry.metrics();
    expect(text).to.contain('csp_encryption_rotation_phase{policy="enc",phase="NewKeyLoaded"} 1');
    expect(text).to.contain('csp_encryption_rotation_phase{policy="enc",phase="Stable"} 0');
    expect(text).to.contain('csp_encryption_rotation_phase_since_timestamp_seconds{policy="enc"} 2000');
    expect(text).to.contain('csp_encryption_last_rotation_completed_timestamp_seconds{policy="enc"} 1000');
    // A second process fed the same persisted state (a new leader) exports exactly the same series.
    const other = new OperatorMetrics({ defaultMetrics: false });
    other.attach(source([enc]));
    other.rotation("enc", {
      phase: "NewKeyLoaded",
      phaseSince: "1970-01-01T00:33:20Z",
      completedAt: "1970-01-01T00:16:40Z",
    });
    const rotationLines = (s: string) => s.split("\n").filter((l) => l.startsWith("csp_encryption_"));
    expect(rotationLines(await other.registry.metrics())).to.deep.equal(rotationLines(text));
    // No completed rotation yet: no completion series.
    m.rotation("enc", { phase: "Stable", phaseSince: "1970-01-01T00:50:00Z" });
    text = await m.registry.metrics();
    expect(text).to.contain('csp_encryption_rotation_phase{policy="enc",phase="Stable"} 1');
    expect(text).to.not.contain("csp_encryption_last_rotation_completed_timestamp_seconds{");
    // A follower's values would go stale: none.
    leader = false;
    expect(await m.registry.metrics()).to.not.contain("csp_encryption_rotation_phase{");
    leader = true;
    // Encryption removed from the spec, or no state (Audit mode): none.
    policies = [{ ...enc, spec: { ...policy.spec } }];
    expect(await m.registry.metrics()).to.not.contain("csp_encryption_rotation_phase{");
    policies = [enc];
    m.rotation("enc", undefined);
    expect(await m.registry.metrics()).to.not.contain("csp_encryption_rotation_phase{");
    // Events no longer move the gauges.
    m.event("enc", "EncryptionStep", "Promoted: key-2 is now primary");
    expect(await m.registry.metrics()).to.not.contain("csp_encryption_rotation_phase{");
  });

  it("counts REST requests by code, method and host", async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    m.request("patch", "127.0.0.1:6443", "200");
    m.request("GET", "127.0.0.1:6443", "<error>");
    const text = await m.registry.metrics();
    expect(text).to.contain('rest_client_requests_total{code="200",method="PATCH",host="127.0.0.1:6443"} 1');
    expect(text).to.contain(
      'rest_client_requests_total{code="<error>",method="GET",host="127.0.0.1:6443"} 1',
    );
  });
});
