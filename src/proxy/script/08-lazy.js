// Part 8: lazy modules. The tools, screenshot, audit, CSS, quality and security groups live in separate scripts
// under /__agnt/m/NAME.js?v=HASH (same origin, so a `script-src 'self'` CSP allows them; the
// nonce of our own tag is copied for nonce-based policies). `script.rs` appends
// `registerLazy({name: {v, names}})` after this part: every lazy name gets a stub that loads
// its module once and then calls the real function, so `exec` just awaits the promise.

const ownNonce = (() => {
  try {
    return (document.currentScript && document.currentScript.nonce) || "";
  } catch (e) {
    return "";
  }
})();
const moduleLoads = {};
const modulesLoaded = {};
const stubs = new Set();
agnt.moduleLoaded = (name) => {
  modulesLoaded[name] = true;
};
const moduleState = () => Object.fromEntries(Object.keys(moduleLoads).map((m) => [m, modulesLoaded[m] ? "loaded" : "loading"]));

function loadModule(name, v) {
  if (modulesLoaded[name]) return Promise.resolve();
  if (!moduleLoads[name])
    moduleLoads[name] = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = `/__agnt/m/${name}.js?v=${v}`;
      if (ownNonce) s.nonce = ownNonce;
      s.setAttribute(OWN, "");
      s.onload = () => {
        s.remove();
        if (modulesLoaded[name]) resolve();
        else {
          delete moduleLoads[name];
          reject(new Error(`/__agnt/m/${name}.js ran but did not register (blocked by the page's CSP?)`));
        }
      };
      s.onerror = () => {
        s.remove();
        delete moduleLoads[name];
        reject(new Error(`could not load /__agnt/m/${name}.js`));
      };
      (document.head || document.documentElement).appendChild(s);
    });
  return moduleLoads[name];
}

const lookup = (path) => path.split(".").reduce((o, k) => o && o[k], devtool);
function registerLazy(mods) {
  for (const mod of Object.keys(mods)) {
    const { v, names } = mods[mod];
    for (const name of names) {
      def(name, (...args) =>
        loadModule(mod, v).then(() => {
          const f = lookup(name);
          if (typeof f !== "function" || stubs.has(f)) throw new Error(`module ${mod} does not define ${name}`);
          return f(...args);
        })
      );
      stubs.add(lookup(name));
    }
  }
}

/** @devtool getStatus() — The script's state: version, connected, page id, queued events, loaded lazy modules, history sizes, panel. */
def("getStatus", () => ({
  version: agnt.version,
  connected: !!(ws && ws.readyState === 1),
  page_id: pageId,
  url: location.href,
  queued_events: outbox.length,
  modules: moduleState(),
  interactions: interactions.length,
  mutations: mutations.length,
  panel: !!panelHost,
  pending_asks: agnt.pendingAsks ? agnt.pendingAsks() : 0,
  init_ms: agnt.init_ms,
}));
