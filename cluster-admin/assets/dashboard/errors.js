// Loaded first, as a classic script: records every error the page meets (uncaught errors,
// rejected promises, Content-Security-Policy violations, console.error) in
// `window.dashboardErrors`, so that a test, or a person in the console, can see them all.
"use strict";
(function () {
  const errors = [];
  window.dashboardErrors = errors;
  const note = (kind, text) => errors.push(kind + ": " + text);
  window.addEventListener("error", (e) => {
    // A failed <script> or <link> load is an error event on the element, not on window.
    const where = e.target && e.target !== window ? e.target.src || e.target.href : "";
    note("error", e.message || "failed to load " + where);
  }, true);
  window.addEventListener("unhandledrejection", (e) => note("rejection", String(e.reason)));
  document.addEventListener("securitypolicyviolation", (e) =>
    note("csp", e.violatedDirective + " " + e.blockedURI));
  const original = console.error.bind(console);
  console.error = (...args) => {
    note("console", args.map(String).join(" "));
    original(...args);
  };
})();
