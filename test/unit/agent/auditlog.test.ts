import { expect } from "chai";
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuditLogTail,
  auditLogPath,
  refusedRequest,
  safeName,
  topCounts,
} from "../../../src/agent/auditlog.js";
import { parseAuditBreakdown } from "../../../src/evidence/agentreports.js";

const LOG = "/var/log/kubernetes/audit/audit.log";

/** A kube-apiserver manifest with --audit-log-path in a hostPath-mounted directory, as kubeadm users write it. */
const manifest = (logFlag: string) => `apiVersion: v1
kind: Pod
metadata: { name: kube-apiserver, namespace: kube-system }
spec:
  containers:
    - name: kube-apiserver
      command: [kube-apiserver, --audit-policy-file=/etc/kubernetes/audit/policy.yaml, ${logFlag}]
      volumeMounts:
        - { name: audit-log, mountPath: /var/log/audit }
  volumes:
    - name: audit-log
      hostPath: { path: /var/log/kubernetes/audit, type: DirectoryOrCreate }
`;

/** One audit.k8s.io/v1 Event line, with fields a refused request carries (and a body that must not leak). */
function auditEvent(o: {
  at: Date;
  code: number;
  user?: string;
  ip?: string;
  resource?: string;
  namespace?: string;
  stage?: string;
  verb?: string;
}): string {
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "RequestResponse",
    auditID: Math.random().toString(36).slice(2),
    stage: o.stage ?? "ResponseComplete",
    requestURI: `/api/v1/namespaces/${o.namespace ?? "default"}/${o.resource ?? "secrets"}?token=shouldnotappear`,
    verb: o.verb ?? "list",
    user: o.user === undefined ? {} : { username: o.user, groups: ["system:authenticated"] },
    sourceIPs: [o.ip ?? "10.0.0.9"],
    userAgent: "curl/8",
    ...(o.resource === ""
      ? {}
      : {
          objectRef: {
            resource: o.resource ?? "secrets",
            namespace: o.namespace ?? "default",
            apiVersion: "v1",
          },
        }),
    responseStatus: { metadata: {}, code: o.code },
    requestObject: { data: { token: "c2VjcmV0LXRva2VuLXZhbHVlLVNIT1VMRC1OT1QtTEVBSzEyMw==" } },
    requestReceivedTimestamp: o.at.toISOString(),
    stageTimestamp: o.at.toISOString(),
  });
}

describe("agent audit-log breakdown (generated audit log on a temp host root)", () => {
  let root = "";
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const append = (lines: (string | object)[]) =>
    appendFileSync(
      join(root, LOG),
      lines.map((l) => `${typeof l === "string" ? l : JSON.stringify(l)}\n`).join(""),
    );
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "csp-audit-"));
    put(
      "etc/kubernetes/manifests/kube-apiserver.yaml",
      manifest("--audit-log-path=/var/log/audit/audit.log"),
    );
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("finds the log through the manifest's hostPath mount; stdout and no flag are said, not guessed", async () => {
    expect(await auditLogPath(root)).to.deep.equal({ path: LOG });
    put("etc/kubernetes/manifests/kube-apiserver.yaml", manifest("--audit-log-path=-"));
    expect((await auditLogPath(root))?.problem).to.include("stdout");
    put("etc/kubernetes/manifests/kube-apiserver.yaml", manifest("--v=2"));
    expect(await auditLogPath(root)).to.equal(undefined);
    rmSync(join(root, "etc"), { recursive: true });
    expect(await auditLogPath(root)).to.equal(undefined);
  });

  it("names the top users, source IPs and resources behind 401 and 403 in the window, reading only what was appended", async () => {
    const now = new Date();
    const ago = (s: number) => new Date(now.getTime() - s * 1000);
    put(LOG, "");
    append([
      ...Array.from({ length: 7 }, () => auditEvent({ at: ago(30), code: 401, ip: "203.0.113.7" })),
      auditEvent({ at: ago(30), code: 401, ip: "198.51.100.2" }),
      ...Array.from({ length: 4 }, () =>
        auditEvent({
          at: ago(20),
          code: 403,
          user: "system:serviceaccount:web:default",
          namespace: "kube-system",
        }),
      ),
      auditEvent({
        at: ago(20),
        code: 403,
        user: "alice",
        resource: "pods",
        namespace: "prod",
        verb: "create",
      }),
      // A failed authentication is audited at ResponseStarted only (counted); one request audited at two
      // stages counts once.
      {
        ...(JSON.parse(auditEvent({ at: ago(30), code: 401, ip: "198.51.100.2" })) as object),
        stage: "ResponseStarted",
        auditID: "twice",
      },
      {
        ...(JSON.parse(auditEvent({ at: ago(30), code: 401, ip: "198.51.100.2" })) as object),
        auditID: "twice",
      },
      // Not counted: an earlier stage of a 403, a success, a request older than the window, a line that is not JSON.
      auditEvent({ at: ago(20), code: 403, user: "alice", stage: "ResponseStarted" }),
      auditEvent({ at: ago(20), code: 200, user: "bob" }),
      auditEvent({ at: ago(3600), code: 401, ip: "192.0.2.1" }),
      "{not json",
    ]);
    const tail = new AuditLogTail(root, 10 * 60_000);
    const b = (await tail.scan(now))!;
    expect(b.path).to.equal(LOG);
    expect(b.problem).to.equal(undefined);
    expect(b.unauthorized).to.deep.equal({
      total: 9,
      users: [{ name: "(unauthenticated)", count: 9 }],
      sourceIPs: [
        { name: "203.0.113.7", count: 7 },
        { name: "198.51.100.2", count: 2 },
      ],
      resources: [{ name: "list secrets in default", count: 9 }],
    });
    expect(b.forbidden.total).to.equal(5);
    expect(b.forbidden.users).to.deep.equal([
      { name: "system:serviceaccount:web:default", count: 4 },
      { name: "alice", count: 1 },
    ]);
    expect(b.forbidden.resources.map((r) => r.name)).to.deep.equal([
      "list secrets in kube-system",
      "create pods in prod",
    ]);
    const text = JSON.stringify(b);
    expect(text).to.not.include("c2VjcmV0").and.not.include("shouldnotappear").and.not.include("curl");
    expect(parseAuditBreakdown(text)).to.deep.equal({ ok: true, value: b });

    // Incremental: a half-written line waits for its end; nothing is counted twice.
    const line = auditEvent({ at: now, code: 401, ip: "203.0.113.7" });
    appendFileSync(join(root, LOG), line.slice(0, 40));
    expect((await tail.scan(now))!.unauthorized.total).to.equal(9);
    appendFileSync(join(root, LOG), `${line.slice(40)}\n`);
    expect((await tail.scan(now))!.unauthorized.total).to.equal(10);

    // The window moves on: 10 minutes less 10 s later only the newest request is left.
    const later = (await tail.scan(new Date(now.getTime() + 10 * 60_000 - 10_000)))!;
    expect(later.unauthorized.total).to.equal(1);
    expect(later.forbidden.total).to.equal(0);

    // A rotation (a new file at the path) is read from its start.
    renameSync(join(root, LOG), join(root, `${LOG}.1`));
    put(LOG, `${auditEvent({ at: now, code: 403, user: "carol" })}\n`);
    expect((await tail.scan(now))!.forbidden.users).to.deep.equal([{ name: "carol", count: 1 }]);
  });

  it("reads at most the tail it is allowed, from a line start, and says what it skipped", async () => {
    const now = new Date();
    put(LOG, "");
    append(Array.from({ length: 200 }, () => auditEvent({ at: now, code: 401 })));
    const tail = new AuditLogTail(root, 10 * 60_000, 4096);
    const first = (await tail.scan(now))!;
    // Only the whole lines of the last 4 KiB (the partial first one is skipped).
    const whole = Math.floor(4096 / (auditEvent({ at: now, code: 401 }).length + 1));
    expect(first.unauthorized.total).to.be.within(whole - 1, whole);
    append(Array.from({ length: 100 }, () => auditEvent({ at: now, code: 403 })));
    const second = (await tail.scan(now))!;
    expect(second.problem).to.match(/KiB of the audit log appended since the last scan were skipped/);
    expect(second.forbidden.total).to.be.within(whole - 1, whole);
  });

  it("a log named but absent yet is a problem, not a crash; a FIFO is not read", async () => {
    const b = (await new AuditLogTail(root).scan())!;
    expect(b.problem).to.include("does not exist");
    expect(b.unauthorized.total).to.equal(0);
  });

  it("user names that look like credentials are not published", () => {
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    expect(safeName(`token:${jwt}`)).to.equal("token:<redacted>");
    expect(safeName("system:serviceaccount:ns:sa")).to.equal("system:serviceaccount:ns:sa");
    expect(safeName("a\nb")).to.equal("a?b");
    const r = refusedRequest(auditEvent({ at: new Date(), code: 401, user: jwt, resource: "" }))!;
    expect(r.user).to.equal("<redacted>");
    expect(r.resource).to.equal("list /api/v1/namespaces/default/");
    expect(refusedRequest(auditEvent({ at: new Date(), code: 401, ip: "not an ip" }))!.sourceIP).to.equal(
      "(unknown)",
    );
  });

  it("a refusal on a very long line (a 300 KB query string) is counted, not skipped", async () => {
    const now = new Date();
    put(LOG, "");
    const long = JSON.parse(auditEvent({ at: now, code: 401, user: "attacker" })) as Record<string, unknown>;
    long["requestURI"] = `/api/v1/namespaces/default/secrets?x=${"A".repeat(300_000)}`;
    append(Array.from({ length: 20 }, (_, i) => ({ ...long, auditID: `long-${i}` })));
    append([auditEvent({ at: now, code: 401, user: "innocent" })]);
    const b = (await new AuditLogTail(root).scan(now))!;
    expect(b.unauthorized.total).to.equal(21);
    expect(b.unauthorized.users[0]).to.deep.equal({ name: "attacker", count: 20 });
  });

  it("a first read or a read after a rotation that cannot see the whole window says so until the window has passed", async () => {
    const now = new Date();
    put(LOG, "");
    append(Array.from({ length: 100 }, () => auditEvent({ at: now, code: 403 })));
    const tail = new AuditLogTail(root, 10 * 60_000, 4096);
    expect((await tail.scan(now))!.problem).to.equal(
      `only the last 4 KiB of ${LOG} read; older events in the window not counted`,
    );
    // Still incomplete a minute later (those events are still in the window), no longer after the window.
    expect((await tail.scan(new Date(now.getTime() + 60_000)))!.problem).to.include("only the last");
    expect((await tail.scan(new Date(now.getTime() + 11 * 60_000)))!.problem).to.equal(undefined);
    // Rotated by rename: what was appended to the old file after the last scan may be lost.
    append([auditEvent({ at: now, code: 403, user: "lost" })]);
    renameSync(join(root, LOG), join(root, `${LOG}.1`));
    put(LOG, `${auditEvent({ at: now, code: 403, user: "after" })}\n`);
    const later = new Date(now.getTime() + 12 * 60_000);
    expect((await tail.scan(later))!.problem)
      .to.include("rotated or truncated since the last scan")
      .and.include("may have been lost");
  });

  it("names are one line without bidi or separator characters; tokens of any common form are redacted", () => {
    expect(safeName("evil\u202eKCOL\u2028second\u0085NEL\u2066x")).to.equal("evil?KCOL?second?NEL?x");
    for (const token of [
      "abcdef.0123456789abcdef",
      "ghp_0123456789abcdefghijklmnopqrstuvwx",
      "sk-ant-abcdefghijklmnopqrstuvwxyz",
      "AKIAIOSFODNN7EXAMPLE",
      "0123456789abcdef0123456789abcdef",
    ])
      expect(safeName(`u:${token}`), token).to.equal("u:<redacted>");
    expect(safeName("Bearer 0123456789")).to.equal("Bearer <redacted>");
    expect(safeName("system:node:cp-1")).to.equal("system:node:cp-1");
    // The operator cleans what a report says again: a report is anyone's text who can write it.
    const forged = {
      version: 1,
      scannedAt: new Date().toISOString(),
      path: LOG,
      windowMs: 600_000,
      unauthorized: {
        total: 1,
        users: [{ name: "a\u202eb ghp_0123456789abcdefghijklmnop", count: 1 }],
        sourceIPs: [],
        resources: [],
      },
      forbidden: { total: 0, users: [], sourceIPs: [], resources: [] },
    };
    const parsed = parseAuditBreakdown(JSON.stringify(forged));
    expect(parsed.ok && parsed.value.unauthorized.users[0]!.name).to.equal("a?b <redacted>");
  });

  it("top counts are deterministic: most first, ties by name, at most five", () => {
    expect(topCounts(["b", "a", "c", "a", "d", "e", "f", "g"])).to.deep.equal([
      { name: "a", count: 2 },
      { name: "b", count: 1 },
      { name: "c", count: 1 },
      { name: "d", count: 1 },
      { name: "e", count: 1 },
    ]);
  });
});
