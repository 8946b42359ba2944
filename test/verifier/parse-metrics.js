// Parses Prometheus' text exposition format with an independent parser (npm
// package parse-prometheus-text-format), for the end-to-end tests
// (test/e2e/test_metrics.py).
//
// Reads the text on standard input and prints one JSON object:
//   families: the parser's families as they are: [{name, help, type}];
//   samples:  every sample line as the parser read it: [{name, labels,
//             value}], values as the strings of the text.
// The parser merges a histogram's samples into one object per family and
// drops their labels (flattenMetrics), so the samples are read from a second
// parse of the same text in which the histograms' TYPE lines say "untyped":
// their _bucket, _sum and _count lines are then samples like any other.
// A text that does not parse prints "fail: <the parser's reason>" (exit 1).
"use strict";

const parsePrometheusTextFormat = require("parse-prometheus-text-format");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  try {
    const families = parsePrometheusTextFormat(input).map(
      ({ name, help, type }) => ({ name, help, type }));
    const untyped = input.replace(/^# TYPE (\S+) histogram$/gm, "# TYPE $1 untyped");
    const samples = [];
    for (const family of parsePrometheusTextFormat(untyped)) {
      for (const m of family.metrics) {
        samples.push({ name: family.name, labels: m.labels || {}, value: m.value });
      }
    }
    console.log(JSON.stringify({ families, samples }));
  } catch (e) {
    console.log(`fail: ${e.message}`);
    process.exitCode = 1;
  }
});
