// Drives a real CodePush management SDK against a server: npm code-push 2.0.7 (the standalone server's
// dialect), as the code-push CLI of that generation does, or with "sdk": "appcenter" the code-push 4.0.2
// inside code-push-cli 3.0.0 (App Center's dialect), for what that CLI's commands no longer offer.
// Input (stdin): {"serverUrl": "...", "accessKey": "...", "sdk"?: "appcenter", "steps": [...]}; a step is either
//   {"call": "<AccountManager method>", "args": [...], "accessKey"?: "..."}  or
//   {"raw": "get" | "post" | "patch" | "del", "path": "/apps/...", "body"?: {...}}  (the SDK's own request helpers)
// Output (stdout): a JSON array with one {"result": ...} or {"error": {"message", "statusCode"}} per step.
"use strict";
const SDKS = {
  standalone: "code-push-2/script/management-sdk",
  appcenter: "code-push-cli/node_modules/code-push/script/management-sdk",
};

async function run(input) {
  const AccountManager = require(SDKS[input.sdk || "standalone"]);
  const managers = {};
  const manager = (key) => (managers[key] = managers[key] || new AccountManager(key, { "X-Harness": "overair" }, input.serverUrl));
  const results = [];
  for (const step of input.steps) {
    const am = manager(step.accessKey || input.accessKey);
    try {
      let result;
      if (step.raw) {
        const body = step.body === undefined ? null : JSON.stringify(step.body);
        const response = await (step.raw === "get" || step.raw === "del"
          ? am[step.raw](step.path, step.raw === "get")
          : am[step.raw](step.path, body, true));
        result = response.body;
      } else {
        result = await am[step.call](...(step.args || []));
      }
      results.push({ result: result === undefined ? null : result });
    } catch (error) {
      results.push({ error: { message: String(error && error.message), statusCode: error && error.statusCode } });
    }
  }
  return results;
}

let raw = "";
process.stdin.on("data", (c) => (raw += c));
process.stdin.on("end", () => {
  run(JSON.parse(raw)).then(
    (results) => process.stdout.write(JSON.stringify(results)),
    (error) => { process.stderr.write(String((error && error.stack) || error)); process.exit(1); },
  );
});
