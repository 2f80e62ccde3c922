/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * Several operator processes with --leader-elect, each on its own token of the csp-operator ServiceAccount
 * bound exactly as config/rbac says. Who wrote what is read from the API server's audit log: every token
 * carries its own credential id (JTI), so writes are counted per process. Timings are shortened
 * (lease 6 s, renew deadline 4 s, retry 1 s) to keep the suite fast; the algorithm is the same.
 * The Lease itself is attacked too: an `edit` user in csp-system is refused by the admission policy
 * csp-operator-leader-lease, and with that policy removed an admin forges the holder and deletes the Lease
 * while drift is created all the time; the audit log must show no two replicas writing at once.
 */
import { expect } from "chai";
import { copyFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  LEADER_ELECT_ARGS,
  leaseHolder,
  spawnOperator,
  TEST_LEASE as LEASE,
  type OperatorProcess,
} from "../support/operatorprocess.js";

const SA_USER = "system:serviceaccount:csp-system:csp-operator";
const ELECTION = new Set(["leases", "tokenreviews", "subjectaccessreviews"]);

type Proc = OperatorProcess & { jti: string };

/** The JTI of the token in a kubeconfig (the credential id the audit log names). */
async function tokenJti(kubeconfig: string): Promise<string> {
  const kc = parse(await readFile(kubeconfig, "utf8")) as { users: { user: { token: string } }[] };
  const payload = kc.users[0]!.user.token.split(".")[1]!;
  return (JSON.parse(Buffer.from(payload, "base64url").toString()) as { jti: string }).jti;
}

describe("leader election (two operator processes on the real API server)", function () {
  this.timeout(180_000);
  const cp = useControlPlane({ name: "leaderelection" });
  const ok = kubectlOk(cp);
  const procs: Proc[] = [];

  async function startOperator(name: string): Promise<Proc> {
    const kubeconfig = join(cp().dir, `${name}.kubeconfig`);
    // A fresh token (its own JTI, the audit log's credential id) per process.
    await copyFile(await cp().serviceAccountKubeconfig("csp-system", "csp-operator"), kubeconfig);
    const p = Object.assign(spawnOperator(name, kubeconfig, LEADER_ELECT_ARGS), {
      jti: await tokenJti(kubeconfig),
    });
    procs.push(p);
    return p;
  }

  const holder = () => leaseHolder(ok);

  /** Mutating requests other than leader election's own, per token JTI, received at or after `since`. */
  const writesSince = async (since: number) => {
    const per = new Map<string, string[]>();
    for (const e of await cp().auditEvents()) {
      const user = e["user"] as { username?: string; extra?: Record<string, string[]> } | undefined;
      if (user?.username !== SA_USER) continue;
      const verb = String(e["verb"]);
      if (!["create", "update", "patch", "delete", "deletecollection"].includes(verb)) continue;
      const ref = e["objectRef"] as { resource?: string; namespace?: string; name?: string } | undefined;
      if (ELECTION.has(ref?.resource ?? "")) continue;
      if (Date.parse(String(e["requestReceivedTimestamp"])) < since) continue;
      const cred = user.extra?.["authentication.kubernetes.io/credential-id"]?.[0] ?? "?";
      const jti = cred.replace(/^JTI=/, "");
      per.set(jti, [
        ...(per.get(jti) ?? []),
        `${verb} ${ref?.resource}/${ref?.name} ${e["responseStatus"] ? (e["responseStatus"] as { code?: number }).code : ""}`,
      ]);
    }
    return per;
  };

  const policy = (name: string, ns: string) =>
    JSON.stringify({
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      metadata: { name },
      spec: { namespaces: { selector: { matchLabels: { "le-test": ns } } } },
    });
  const childCount = async (ns: string) =>
    (
      await ok([
        "get",
        "networkpolicy",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/managed-by=csp-operator",
        "-o",
        "name",
      ])
    )
      .split("\n")
      .filter(Boolean).length;

  before(async function () {
    this.timeout(60_000);
    await installCrd(cp());
    await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    for (const ns of ["le-one", "le-two", "le-three"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, `le-test=${ns}`]);
    }
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed")
      for (const p of procs)
        process.stderr.write(`--- ${p.name} (${p.exit ?? "running"}):\n${p.log.slice(-3000)}\n`);
  });

  after(async () => {
    for (const p of procs) if (p.exit === undefined) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  });

  it("exactly one of two replicas writes; SIGKILL, SIGSTOP and SIGTERM of the leader hand over safely", async () => {
    const a = await startOperator("op-a");
    const b = await startOperator("op-b");
    const byName = (n: string) => procs.find((p) => p.name === n)!;
    const t0 = Date.now();
    const first = await eventually("a leader", async () => (await holder()) || undefined, 60_000);
    expect(["op-a", "op-b"]).to.include(first);
    await ok(["apply", "-f", "-"], policy("le-one", "le-one"));
    await eventually("children in le-one", async () => (await childCount("le-one")) > 0, 60_000);
    // The follower's caches are warm as well: it logged sync but never started workers.
    const follower = first === "op-a" ? b : a;
    const leader = byName(first);
    await eventually("both synced", () =>
      Promise.resolve(a.log.includes("became leader") || follower.log.includes("leader observed")),
    );
    let writes = await writesSince(t0);
    expect([...writes.keys()], JSON.stringify([...writes])).to.deep.equal([leader.jti]);
    expect(follower.log).to.not.match(/starting workers/);

    // --- SIGKILL the leader: the follower takes over within lease duration + retry (+ scheduling slack).
    const killedAt = Date.now();
    leader.child.kill("SIGKILL");
    await leader.exited;
    await eventually("the follower leads", async () => (await holder()) === follower.name, 30_000);
    const takeover = Date.now() - killedAt;
    process.stdout.write(`      takeover after SIGKILL: ${takeover} ms\n`);
    expect(takeover, `takeover after SIGKILL took ${takeover} ms`).to.be.at.most(
      LEASE.duration + LEASE.retry * 1.2 + 3_000,
    );
    await ok(["apply", "-f", "-"], policy("le-two", "le-two"));
    await eventually("children in le-two", async () => (await childCount("le-two")) > 0, 60_000);

    // --- SIGSTOP the new leader past its renew deadline: a third replica takes over; once resumed the
    // ex-leader writes nothing (it does not hold the Lease again).
    const c = await startOperator("op-c");
    await eventually("op-c synced", () => Promise.resolve(c.log.includes("leader observed")), 60_000);
    const stopped = follower;
    stopped.child.kill("SIGSTOP");
    const frozenAt = Date.now();
    await eventually("op-c leads", async () => (await holder()) === "op-c", 30_000);
    process.stdout.write(`      takeover from a frozen (SIGSTOP) leader: ${Date.now() - frozenAt} ms\n`);
    // Work for the leader while the ex-leader is frozen: its watch buffers these events too.
    await ok(["apply", "-f", "-"], policy("le-three", "le-three"));
    await ok(["delete", "networkpolicy", "-n", "le-one", "-l", "app.kubernetes.io/managed-by=csp-operator"]);
    const resumedAt = Date.now();
    stopped.child.kill("SIGCONT");
    await eventually("children in le-three", async () => (await childCount("le-three")) > 0, 60_000);
    await eventually("le-one repaired", async () => (await childCount("le-one")) > 0, 60_000);
    await eventually("the ex-leader stepped down", () =>
      Promise.resolve(/lost leadership/.test(stopped.log)),
    );
    // Give the resumed process every chance to misbehave: its retry loop runs a few more times.
    await eventually(
      "a few retries of the ex-leader",
      async () => {
        const events = await cp().auditEvents();
        const mine = events.filter(
          (e) =>
            (e["objectRef"] as { resource?: string } | undefined)?.resource === "leases" &&
            Date.parse(String(e["requestReceivedTimestamp"])) >= resumedAt &&
            (e["user"] as { extra?: Record<string, string[]> }).extra?.[
              "authentication.kubernetes.io/credential-id"
            ]?.[0] === `JTI=${stopped.jti}`,
        );
        return mine.length >= 3;
      },
      20_000,
    );
    writes = await writesSince(resumedAt - 500);
    expect(writes.get(stopped.jti), "writes by the resumed ex-leader").to.equal(undefined);
    expect(writes.has(c.jti), "the new leader wrote").to.equal(true);
    expect(await holder()).to.equal("op-c");

    // --- SIGTERM the leader: it drains, clears holderIdentity, and the other replica leads within ~2 retries.
    const termAt = Date.now();
    c.child.kill("SIGTERM");
    await eventually("the ex-leader leads again", async () => (await holder()) === stopped.name, 15_000);
    const handover = Date.now() - termAt;
    process.stdout.write(`      handover after SIGTERM: ${handover} ms\n`);
    expect(handover, `handover after SIGTERM took ${handover} ms`).to.be.below(LEASE.duration);
    await c.exited;
    expect(c.exit).to.equal("code 0 signal null");
    expect(c.log).to.match(/released the Lease/);
    // And it leads for real: it repairs drift again.
    await ok(["delete", "networkpolicy", "-n", "le-two", "-l", "app.kubernetes.io/managed-by=csp-operator"]);
    await eventually(
      "le-two repaired by the re-elected replica",
      async () => (await childCount("le-two")) > 0,
      60_000,
    );
  });

  it("the Lease: an `edit` user may not touch it; forged or deleted by an admin, never two writers", async () => {
    // Whatever the first test left running is stopped: two fresh replicas.
    for (const p of procs) if (p.exit === undefined) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await ok(["create", "serviceaccount", "-n", "csp-system", "lease-editor"]);
    await ok([
      "create",
      "rolebinding",
      "-n",
      "csp-system",
      "lease-editor",
      "--clusterrole=edit",
      "--serviceaccount=csp-system:lease-editor",
    ]);
    const editor = await cp().serviceAccountKubeconfig("csp-system", "lease-editor");
    const x = await startOperator("op-x");
    const y = await startOperator("op-y");
    const first = await eventually(
      "a new leader",
      async () => {
        const h = await holder();
        return h === "op-x" || h === "op-y" ? h : undefined;
      },
      60_000,
    );
    const leader = first === "op-x" ? x : y;
    const follower = first === "op-x" ? y : x;
    await ok(["apply", "-f", "-"], policy("le-one", "le-one"));
    await eventually("le-one has children", async () => (await childCount("le-one")) > 0, 60_000);

    // --- The admission policy: edit may update/delete Leases in csp-system, but not this one.
    for (const args of [
      [
        "patch",
        "lease",
        "-n",
        "csp-system",
        "csp-operator-leader",
        "--type=merge",
        "-p",
        '{"spec":{"holderIdentity":"op-evil"}}',
      ],
      ["delete", "lease", "-n", "csp-system", "csp-operator-leader"],
    ]) {
      const r = await cp().kubectl(args, { kubeconfig: editor });
      expect(r.code, `${args[0]} as edit: ${r.stdout}`).to.not.equal(0);
      expect(r.stderr).to.match(/csp-operator-leader-lease|only the csp-operator ServiceAccount/);
    }
    // The same user may still manage other Leases there (the policy is about this one name only).
    await cp()
      .kubectl(["create", "-f", "-"], {
        kubeconfig: editor,
        input: JSON.stringify({
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: "someone-else", namespace: "csp-system" },
          spec: {},
        }),
      })
      .then((r) => expect(r.code, r.stderr).to.equal(0));

    // --- Forgeries by an admin with the policy removed: the operator's own rules must still hold.
    await ok(["delete", "validatingadmissionpolicybinding", "csp-operator-leader-lease"]);
    const forgedAt = Date.now();
    await eventually(
      "the policy to be gone (an admin forges the holder)",
      async () =>
        (
          await cp().kubectl([
            "patch",
            "lease",
            "-n",
            "csp-system",
            "csp-operator-leader",
            "--type=merge",
            "-p",
            JSON.stringify({ spec: { holderIdentity: follower.name } }),
          ])
        ).code === 0,
      20_000,
    );
    // Drift to repair all the time, so both replicas would write if both believed they lead.
    let churn = true;
    const churning = (async () => {
      while (churn)
        await cp().kubectl([
          "delete",
          "networkpolicy",
          "-n",
          "le-one",
          "-l",
          "app.kubernetes.io/managed-by=csp-operator",
          "--wait=false",
        ]);
    })();
    try {
      await eventually("the old leader stepped down", () =>
        Promise.resolve(/lost leadership/.test(leader.log)),
      );
      await eventually("someone leads again", async () => (await holder()) !== "", 30_000);
      // Then the Lease is deleted outright.
      await ok(["delete", "lease", "-n", "csp-system", "csp-operator-leader"]);
      await eventually("the Lease is back", async () => (await holder()) !== "", 30_000);
      await eventually(
        "le-one repaired after the forgeries",
        async () => (await childCount("le-one")) > 0,
        30_000,
      );
    } finally {
      churn = false;
      await churning;
    }
    await ok(["apply", "-f", "config/rbac/leader_lease_admission_policy.yaml"]);
    // Writes (not the election's own) in time order: any switch of writer must leave a gap of at least the
    // lease duration minus the renew deadline; an interleaving means two writers at once.
    const writes: { at: number; jti: string; what: string }[] = [];
    for (const e of await cp().auditEvents()) {
      const user = e["user"] as { username?: string; extra?: Record<string, string[]> } | undefined;
      if (user?.username !== SA_USER || e["stage"] !== "ResponseComplete") continue;
      if (!["create", "update", "patch", "delete"].includes(String(e["verb"]))) continue;
      const ref = e["objectRef"] as { resource?: string; name?: string } | undefined;
      if (ELECTION.has(ref?.resource ?? "")) continue;
      const at = Date.parse(String(e["requestReceivedTimestamp"]));
      if (at < forgedAt - 1_000) continue;
      const jti = (user.extra?.["authentication.kubernetes.io/credential-id"]?.[0] ?? "?").replace(
        /^JTI=/,
        "",
      );
      writes.push({ at, jti, what: `${String(e["verb"])} ${ref?.resource}/${ref?.name}` });
    }
    writes.sort((a, b) => a.at - b.at);
    expect(writes.length, "the replicas repaired the churned drift").to.be.greaterThan(0);
    const names = new Map([
      [x.jti, "op-x"],
      [y.jti, "op-y"],
    ]);
    const switches = writes.filter((w, i) => i > 0 && writes[i - 1]!.jti !== w.jti).length;
    process.stdout.write(
      `      ${writes.length} writes after the forgeries, ${switches} change(s) of writer\n`,
    );
    for (let i = 1; i < writes.length; i++) {
      const [p, q] = [writes[i - 1]!, writes[i]!];
      if (p.jti === q.jti) continue;
      expect(
        q.at - p.at,
        `${names.get(p.jti)} ${p.what} then ${names.get(q.jti)} ${q.what} ${q.at - p.at} ms later`,
      ).to.be.at.least(LEASE.duration - LEASE.renew);
    }
  });
});
