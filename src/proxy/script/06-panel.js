// Part 7: the user's panel. A floating button in a shadow root (page CSS cannot reach it, it
// cannot style the page) opens a box where the user writes to the agent, optionally attaching
// a picked element or a screenshot; sending makes a `panel_message` entry. Alt+Shift+A hides
// and shows it. Created only when the proxy's config message says `panel: true`, and only in
// top-level pages (not in frames).

let panelHost = null;
function onConfig() {
  let top = false;
  try {
    top = window.top === window;
  } catch (e) {}
  if (config.panel && top && !panelHost && document.documentElement) buildPanel();
  if (!config.panel && panelHost) {
    panelHost.remove();
    panelHost = null;
  }
}

function buildPanel() {
  const host = document.createElement("agnt-panel");
  host.setAttribute(OWN, "");
  host.style.cssText = "all:initial;position:fixed;right:16px;bottom:16px;z-index:2147483647";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>
  :host{font:13px/1.4 system-ui,sans-serif;color:#111}
  button{font:inherit;cursor:pointer;border:1px solid #888;border-radius:6px;background:#fff;padding:4px 8px}
  #fab{width:36px;height:36px;border-radius:18px;background:#3e63dd;color:#fff;border:none;box-shadow:0 2px 8px #0004;font-weight:700}
  #box{display:none;position:absolute;right:0;bottom:44px;width:300px;background:#fff;border:1px solid #ccc;border-radius:8px;box-shadow:0 4px 16px #0003;padding:10px}
  #box.open{display:block}
  textarea{width:100%;box-sizing:border-box;height:80px;font:inherit;resize:vertical}
  .row{display:flex;gap:6px;align-items:center;margin-top:6px;flex-wrap:wrap}
  #status{color:#555;font-size:12px;min-height:1em}
</style>
<button id="fab" title="Message the agent (Alt+Shift+A hides)">A</button>
<div id="box" role="dialog" aria-label="Message the agent">
  <textarea id="msg" placeholder="Tell the agent what you see…" aria-label="Message"></textarea>
  <div class="row"><button id="pick">Pick element</button><label><input type="checkbox" id="shot"> screenshot</label><button id="send">Send</button></div>
  <div id="status"></div>
</div>`;
  const $ = (id) => root.getElementById(id);
  let picked = null;
  $("fab").onclick = () => $("box").classList.toggle("open");
  $("pick").onclick = () =>
    pickElement().then((e) => {
      picked = e;
      $("status").textContent = e ? `element: ${selectorOf(e)}` : "";
    });
  $("send").onclick = async () => {
    const message = $("msg").value.trim();
    if (!message) return ($("status").textContent = "write a message first");
    const attachments = [];
    if (picked) attachments.push({ type: "element", selector: selectorOf(picked), info: devtool.getElementInfo(picked) });
    if ($("shot").checked) {
      host.style.display = "none";
      const s = await devtool.screenshot("panel");
      host.style.display = "";
      attachments.push(s.error ? { type: "screenshot", error: s.error } : { type: "screenshot", file_path: s.file_path });
    }
    emit("panel_message", { message: cut(message, 10000), attachments });
    flush();
    $("msg").value = "";
    picked = null;
    $("status").textContent = "sent to the agent";
  };
  document.documentElement.appendChild(host);
  panelHost = host;
}

function pickElement() {
  return new Promise((resolve) => {
    let current = null;
    let mark = null;
    const move = (e) => {
      const t = e.target;
      if (!t || isOwn(t) || t === current) return;
      current = t;
      if (mark) mark.remove();
      mark = box(t, "#3e63dd", selectorOf(t));
    };
    const done = (e, chosen) => {
      removeEventListener("mousemove", move, true);
      removeEventListener("click", click, true);
      removeEventListener("keydown", key, true);
      if (mark) mark.remove();
      resolve(chosen);
    };
    const click = (e) => {
      if (isOwn(e.target)) return;
      e.preventDefault();
      e.stopPropagation();
      done(e, e.target);
    };
    const key = (e) => e.key === "Escape" && done(e, null);
    addEventListener("mousemove", move, true);
    addEventListener("click", click, true);
    addEventListener("keydown", key, true);
  });
}

addEventListener(
  "keydown",
  (e) => {
    if (e.altKey && e.shiftKey && e.code === "KeyA" && panelHost) {
      panelHost.style.display = panelHost.style.display === "none" ? "" : "none";
      e.preventDefault();
    }
  },
  true
);

/** @devtool indicator.toggle() — Shows or hides the user's message panel (same as Alt+Shift+A); {visible}. */
def("indicator.toggle", () => {
  if (!panelHost) return { error: "the panel is disabled for this proxy (or not connected yet)" };
  panelHost.style.display = panelHost.style.display === "none" ? "" : "none";
  return { visible: panelHost.style.display !== "none" };
});

/** @devtool selectElement() — Lets the user pick an element with the mouse (Escape cancels); resolves to its info, or null. */
def("selectElement", async () => {
  const e = await pickElement();
  return e ? devtool.getElementInfo(e) : null;
});

// The agent's replies (`channel_reply`): a toast in its own shadow root (also when the panel is
// off), stacked bottom-right, gone after 10 s or on click.
handlers.toast = (msg) => {
  const host = document.createElement("agnt-toast");
  host.setAttribute(OWN, "");
  const n = document.querySelectorAll("agnt-toast").length;
  host.style.cssText = `all:initial;position:fixed;right:16px;bottom:${64 + 70 * n}px;z-index:2147483647`;
  const box = document.createElement("div");
  box.className = "toast";
  box.setAttribute("role", "status");
  const color = { error: "#e5484d", warning: "#f5a623" }[msg.severity] || "#3e63dd";
  box.style.cssText = `font:13px/1.4 system-ui,sans-serif;max-width:320px;background:#fff;color:#111;border-left:4px solid ${color};border-radius:6px;box-shadow:0 4px 16px #0003;padding:8px 12px;cursor:pointer`;
  if (msg.title) box.appendChild(document.createElement("b")).textContent = String(msg.title);
  box.appendChild(document.createElement("div")).textContent = String(msg.content || "");
  host.attachShadow({ mode: "open" }).appendChild(box);
  const close = () => host.remove();
  box.onclick = close;
  setTimeout(close, 10000);
  (document.body || document.documentElement).appendChild(host);
};
