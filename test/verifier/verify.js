// Verifies one received request with the Standard Webhooks reference library
// (npm package standardwebhooks), for the end-to-end tests.
//
// Reads one JSON object on standard input:
//   {"secret": "whsec_...", "headers": {"webhook-id": ..., ...}, "body": "<base64 of the exact bytes>"}
// Prints "ok" (exit 0) when the library accepts the request with that
// secret, or "fail: <its reason>" (exit 1).
"use strict";

const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    new Webhook(secret).verify(Buffer.from(body, "base64"), headers);
    console.log("ok");
  } catch (e) {
    console.log(`fail: ${e.message}`);
    process.exitCode = 1;
  }
});
