// Drives the real CodePush acquisition SDKs from npm against a server, as an app would.
// Input (stdin): {"sdk": "4.2.3" | "2.0.7", "serverUrl": "...", "deploymentKey": "...", "steps": [...]}
// Output (stdout): a JSON array with one result per step.
"use strict";
const http = require("http");
const crypto = require("crypto");

const SDKS = {
  "4.2.3": () => require("code-push/script/acquisition-sdk"),
  "2.0.7": () => require("code-push-2/script/acquisition-sdk"),
};
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

// The HTTP requester interface the SDKs expect (what react-native-code-push implements natively).
const requester = {
  request(verb, url, body, callback) {
    if (typeof body === "function") { callback = body; body = null; }
    const method = { 0: "GET", 2: "POST" }[verb];
    const headers = { Accept: "application/json", "Content-Type": "application/json",
      "X-CodePush-Plugin-Name": "overair-compat-harness", "X-CodePush-SDK-Version": "4.2.3" };
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => callback(null, { statusCode: res.statusCode, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", (error) => callback(error, null));
    if (body) req.write(body);
    req.end();
  },
};

function manager(sdk, input, step) {
  const { AcquisitionManager } = SDKS[sdk]();
  return new AcquisitionManager(requester, {
    serverUrl: input.serverUrl,
    deploymentKey: step.deploymentKey || input.deploymentKey,
    appVersion: step.appVersion || "1.0.0",
    clientUniqueId: step.clientUniqueId,
    ignoreAppVersion: step.ignoreAppVersion,
  });
}

function check(sdk, input, step) {
  return new Promise((resolve) => {
    const current = { appVersion: step.appVersion || "1.0.0", packageHash: step.packageHash, label: step.label };
    manager(sdk, input, step).queryUpdateWithCurrentPackage(current, (error, remote) => {
      resolve(error ? { error: String(error.message || error) } : { update: remote });
    });
  });
}

function fetchBytes(url) {
  return new Promise((resolve) => {
    http.get(url, { agent, headers: { "Accept-Encoding": "identity" } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode, contentLength: res.headers["content-length"],
          contentEncoding: res.headers["content-encoding"] || null, length: body.length,
          sha256: crypto.createHash("sha256").update(body).digest("hex"),
          base64: body.length < 4 * 1024 * 1024 ? body.toString("base64") : null });
      });
    });
  });
}

async function run(input) {
  const sdk = input.sdk;
  const results = [];
  for (const step of input.steps) {
    if (step.op === "check") {
      results.push(await check(sdk, input, step));
    } else if (step.op === "checkMany") {
      const labels = new Array(step.clientIds.length);
      let next = 0;
      const worker = async () => {
        while (next < step.clientIds.length) {
          const i = next++;
          const r = await check(sdk, input, { ...step, clientUniqueId: step.clientIds[i] });
          labels[i] = r.error ? "error: " + r.error : r.update ? r.update.label : null;
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      results.push({ labels });
    } else if (step.op === "deploy") {
      results.push(await new Promise((resolve) => {
        manager(sdk, input, step).reportStatusDeploy(step.package, step.status, step.previousLabelOrAppVersion,
          step.previousDeploymentKey, (error) => resolve({ error: error ? String(error.message || error) : null }));
      }));
    } else if (step.op === "download") {
      results.push(await new Promise((resolve) => {
        manager(sdk, input, step).reportStatusDownload(step.package,
          (error) => resolve({ error: error ? String(error.message || error) : null }));
      }));
    } else if (step.op === "verifyJwt") {
      // What a CodePush client with a public key does with .codepushrelease: an RS256 check, then the claims.
      const [header, payload, signature] = step.token.split(".");
      const valid = crypto.verify("RSA-SHA256", Buffer.from(header + "." + payload),
        crypto.createPublicKey(step.publicKey), Buffer.from(signature, "base64url"));
      results.push({ valid, header: JSON.parse(Buffer.from(header, "base64url")),
        claims: JSON.parse(Buffer.from(payload, "base64url")) });
    } else if (step.op === "fetch") {
      results.push(await fetchBytes(step.url));
    } else {
      throw new Error("unknown step " + step.op);
    }
  }
  return results;
}

let raw = "";
process.stdin.on("data", (c) => (raw += c));
process.stdin.on("end", () => {
  run(JSON.parse(raw)).then(
    (results) => { process.stdout.write(JSON.stringify(results)); agent.destroy(); },
    (error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); },
  );
});
