// Starts the real Herald all-in-one binary for the SDK's tests: a fresh SQLite database in a
// temporary directory, a free port, a secret of the test's own.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const SECRET = "herald-sdk-test-secret-0123456789";

/** The herald binary: HERALD_BIN, else the workspace's debug build. */
export function heraldBinary() {
  if (process.env.HERALD_BIN) return process.env.HERALD_BIN;
  const targets = [process.env.CARGO_TARGET_DIR, resolve(import.meta.dirname, "../../../target")].filter(Boolean);
  for (const target of targets) {
    const binary = join(target, "debug", "herald");
    if (existsSync(binary)) return binary;
  }
  throw new Error("no herald binary: build it (cargo build -p herald) or set HERALD_BIN");
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** A running all-in-one: `api` (http://...), `ws` (ws://.../ws), `token(sub)`, `notice(body)`, `stop()`. */
export async function startHerald() {
  const dir = mkdtempSync(join(tmpdir(), "herald-sdk-"));
  const port = await freePort();
  const env = {
    ...process.env,
    HERALD_HTTP_ADDR: `127.0.0.1:${port}`,
    HERALD_JWT_SECRET: SECRET,
    HERALD_DATABASE_URL: `sqlite://${join(dir, "herald.db")}?mode=rwc`,
    HERALD_LOG_LEVEL: "warn",
    HERALD_LIMITS_SENDER_PER_SECOND: "0",
    HERALD_LIMITS_IP_PER_SECOND: "0",
  };
  delete env.HERALD_CONFIG;
  const binary = heraldBinary();
  const child = spawn(binary, [], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk) => {
    log = (log + chunk).slice(-20_000);
  });
  const api = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const answer = await fetch(`${api}/readyz`);
      if (answer.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`herald did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = (sub, role = "user") =>
    execFileSync(binary, ["token", "--sub", String(sub), "--role", role], { env, encoding: "utf8" }).trim();
  const admin = token(1, "admin");
  return {
    api,
    ws: `ws://127.0.0.1:${port}/ws`,
    token,
    /** Posts a notice as the admin; resolves to its message id. */
    async notice(body) {
      const answer = await fetch(`${api}/api/admin/system/notice`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${admin}` },
        body: JSON.stringify(body),
      });
      const json = await answer.json();
      if (!answer.ok) throw new Error(`notice refused: ${JSON.stringify(json)}`);
      return json.data.message_id;
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once `predicate()` holds, polling; rejects after `ms` with `what`. */
export async function until(what, predicate, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
