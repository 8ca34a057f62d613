// agnt browser script: served by the proxy at /__agnt/agnt.js (same origin as the page).
// Reports errors, unhandled rejections, console.error and page timing over a WebSocket to
// /__agnt/ws, and answers {type:"execute", id, code} with {type:"response", id, ...}.
(function () {
  "use strict";
  if (window.__agnt) return; // injected twice (or loaded by the app as well): run once
  var agnt = (window.__agnt = { version: 1 });

  // Per-tab id, kept across navigations in sessionStorage and mirrored into a cookie so the
  // proxy can attribute HTTP requests to this tab.
  var pageId;
  try {
    pageId = sessionStorage.getItem("__agnt_page");
  } catch (e) {}
  if (!pageId) {
    pageId = "tab-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
    try {
      sessionStorage.setItem("__agnt_page", pageId);
    } catch (e) {}
  }
  try {
    document.cookie = "__agnt_page=" + pageId + "; path=/; SameSite=Lax";
  } catch (e) {}
  agnt.pageId = pageId;

  var queue = [];
  var ws = null;
  var attempts = 0;

  function send(type, data) {
    var msg = JSON.stringify({ type: type, data: data, url: location.href, page_id: pageId });
    if (ws && ws.readyState === 1) {
      try {
        ws.send(msg);
        return;
      } catch (e) {}
    }
    if (queue.length < 200) queue.push(msg);
  }
  agnt.send = send;

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    try {
      ws = new WebSocket(proto + location.host + "/__agnt/ws");
    } catch (e) {
      return retry();
    }
    ws.onopen = function () {
      attempts = 0;
      send("hello", { title: document.title, user_agent: navigator.userAgent });
      while (queue.length && ws.readyState === 1) ws.send(queue.shift());
    };
    ws.onmessage = function (ev) {
      var msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (msg && msg.type === "execute") execute(msg.id, msg.code);
    };
    ws.onclose = function () {
      ws = null;
      retry();
    };
    ws.onerror = function () {};
  }

  function retry() {
    attempts++;
    if (attempts > 10) return;
    setTimeout(connect, Math.min(30000, 500 * Math.pow(2, attempts - 1)));
  }

  function serialize(v) {
    if (v === undefined) return null;
    try {
      JSON.stringify(v);
      return v;
    } catch (e) {
      return String(v);
    }
  }

  function execute(id, code) {
    var t0 = performance.now();
    function reply(ok, result, error) {
      var m = {
        type: "response",
        id: id,
        success: ok,
        result: ok ? serialize(result) : null,
        error: error,
        duration_ms: Math.round(performance.now() - t0),
        page_id: pageId,
        url: location.href
      };
      try {
        ws && ws.send(JSON.stringify(m));
      } catch (e) {}
    }
    function fail(e) {
      reply(false, null, e && e.stack ? String(e.message || e) + "\n" + e.stack : String(e));
    }
    var value;
    try {
      // Indirect eval: global scope, and expressions return their value.
      value = (0, eval)(code);
    } catch (e) {
      return fail(e);
    }
    if (value && typeof value.then === "function") {
      value.then(function (v) { reply(true, v, null); }, fail);
    } else {
      reply(true, value, null);
    }
  }

  // Errors: addEventListener, so an app that replaces window.onerror does not blind us.
  window.addEventListener(
    "error",
    function (ev) {
      if (ev.target && ev.target !== window && ev.target.tagName) {
        send("error", {
          message: "failed to load " + ev.target.tagName.toLowerCase() + ": " + (ev.target.src || ev.target.href || ""),
          source: ev.target.src || ev.target.href || "",
          error_type: "resource"
        });
        return;
      }
      send("error", {
        message: String(ev.message || (ev.error && ev.error.message) || "error"),
        source: ev.filename || "",
        lineno: ev.lineno || 0,
        colno: ev.colno || 0,
        stack: (ev.error && ev.error.stack) || "",
        error_type: (ev.error && ev.error.name) || "Error"
      });
    },
    true
  );
  window.addEventListener("unhandledrejection", function (ev) {
    var r = ev.reason;
    send("error", {
      message: "Unhandled rejection: " + String((r && r.message) || r),
      stack: (r && r.stack) || "",
      error_type: "unhandledrejection"
    });
  });
  var origError = console.error;
  console.error = function () {
    try {
      var parts = [];
      for (var i = 0; i < arguments.length; i++) {
        var a = arguments[i];
        parts.push(a instanceof Error ? a.message : typeof a === "string" ? a : JSON.stringify(a));
      }
      send("custom", { level: "error", message: parts.join(" ").slice(0, 2000), stack: new Error().stack || "" });
    } catch (e) {}
    return origError.apply(console, arguments);
  };

  function reportTiming() {
    try {
      var nav = performance.getEntriesByType("navigation")[0];
      var paints = performance.getEntriesByType("paint");
      var d = { title: document.title };
      if (nav) {
        d.load_time_ms = Math.round(nav.loadEventEnd || nav.duration);
        d.dom_content_loaded_ms = Math.round(nav.domContentLoadedEventEnd);
        d.dom_interactive_ms = Math.round(nav.domInteractive);
        d.ttfb_ms = Math.round(nav.responseStart);
      }
      for (var i = 0; i < paints.length; i++) {
        if (paints[i].name === "first-paint") d.first_paint_ms = Math.round(paints[i].startTime);
        if (paints[i].name === "first-contentful-paint") d.first_contentful_paint_ms = Math.round(paints[i].startTime);
      }
      d.resource_count = performance.getEntriesByType("resource").length;
      send("performance", d);
    } catch (e) {}
  }
  if (document.readyState === "complete") setTimeout(reportTiming, 0);
  else window.addEventListener("load", function () { setTimeout(reportTiming, 100); });

  connect();
})();
