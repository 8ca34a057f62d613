// Lazy module "screenshot": screenshots without a library. The page (viewport) or one element is cloned with
// every computed style inlined, same-origin images are inlined as data URLs, the clone goes
// into an SVG <foreignObject>, the SVG is drawn on a canvas and exported as PNG. The PNG travels
// over the channel; the proxy writes it to disk and answers with the file path.
// Cannot render: cross-origin images without CORS (left blank), <video> frames, tainted
// canvases, ::before/::after content, iframes' contents, and pages whose CSP forbids data: images.

const MAX_NODES = 4000;
const MAX_SIDE = 4096;
const SKIP = new Set(["script", "noscript", "template", "link", "meta", "style", "iframe", "video", "audio", "object", "embed"]);

function inlineStyles(src, dst) {
  const cs = getComputedStyle(src);
  let css = "";
  for (let i = 0; i < cs.length; i++) {
    const p = cs[i];
    css += `${p}:${cs.getPropertyValue(p)};`;
  }
  dst.setAttribute("style", css);
}

async function toDataUrl(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  const blob = await r.blob();
  return new Promise((res, rej) => {
    const fr = new FileReader();
    fr.onload = () => res(fr.result);
    fr.onerror = () => rej(fr.error);
    fr.readAsDataURL(blob);
  });
}

async function cloneTree(root) {
  let count = 0;
  const images = [];
  const walk = (src) => {
    if (count++ > MAX_NODES) return null;
    if (src.nodeType === 3) return document.createTextNode(src.textContent);
    if (src.nodeType !== 1 || isOwn(src) || SKIP.has(src.localName)) return null;
    let dst;
    if (src.localName === "canvas") {
      dst = document.createElement("img");
      try {
        dst.setAttribute("src", src.toDataURL());
      } catch (e) {}
    } else dst = src.cloneNode(false);
    inlineStyles(src, dst);
    dst.removeAttribute("id");
    if (src.localName === "input" || src.localName === "textarea") {
      if (secretField(src)) dst.setAttribute("value", src.value ? "••••••••" : ""); // not even the length
      else if (src.type === "checkbox" || src.type === "radio") src.checked ? dst.setAttribute("checked", "") : dst.removeAttribute("checked");
      else if (src.localName === "textarea") dst.textContent = src.value;
      else dst.setAttribute("value", src.value);
    }
    if (src.localName === "img" && src.currentSrc) images.push([dst, src.currentSrc]);
    if (src.localName !== "textarea" && src.localName !== "canvas" && src.localName !== "svg")
      for (const c of src.childNodes) {
        const k = walk(c);
        if (k) dst.appendChild(k);
      }
    else if (src.localName === "svg") dst = src.cloneNode(true);
    return dst;
  };
  const clone = walk(root);
  await Promise.all(
    images.map(async ([img, url]) => {
      try {
        if (new URL(url, location.href).origin !== location.origin && !url.startsWith("data:")) throw new Error("cross-origin");
        img.setAttribute("src", await toDataUrl(url));
      } catch (e) {
        img.removeAttribute("src");
        img.removeAttribute("srcset");
      }
    })
  );
  return { clone, nodes: count };
}

async function render(selector) {
  const target = selector ? el(selector) : document.body;
  const r = target.getBoundingClientRect();
  const full = !selector;
  const width = Math.min(MAX_SIDE, Math.ceil(full ? document.documentElement.clientWidth : r.width));
  const height = Math.min(MAX_SIDE, Math.ceil(full ? innerHeight : r.height));
  if (width < 1 || height < 1) throw new Error(`nothing to capture: ${selector || "page"} has zero size`);
  const { clone, nodes } = await cloneTree(target);
  const wrap = document.createElement("div");
  wrap.setAttribute("xmlns", "http://www.w3.org/1999/xhtml");
  if (full) {
    const docBg = backgroundOf(document.body);
    wrap.style.cssText = `width:${width}px;height:${height}px;overflow:hidden;position:relative;background:${hex(docBg)}`;
    // A positioned box at the document origin: absolutely positioned descendants of <body>
    // resolve against it as they do against the initial containing block.
    const shift = document.createElement("div");
    shift.style.cssText = `position:absolute;left:${-Math.round(scrollX)}px;top:${-Math.round(scrollY)}px;width:${document.documentElement.scrollWidth}px`;
    shift.appendChild(clone);
    wrap.appendChild(shift);
  } else {
    wrap.style.cssText = `width:${width}px;height:${height}px;overflow:hidden;position:relative`;
    clone.style.margin = "0";
    clone.style.position = "relative";
    clone.style.left = clone.style.top = clone.style.right = clone.style.bottom = "auto";
    clone.style.transform = "none";
    wrap.appendChild(clone);
  }
  const xml = new XMLSerializer().serializeToString(wrap);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><foreignObject x="0" y="0" width="100%" height="100%">${xml}</foreignObject></svg>`;
  const img = new Image();
  img.width = width;
  img.height = height;
  await new Promise((res, rej) => {
    img.onload = res;
    img.onerror = () => rej(new Error("the browser could not render the SVG snapshot (blocked by CSP img-src, or unsupported markup)"));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  });
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!selector) {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
  }
  ctx.drawImage(img, 0, 0, width, height);
  return { data_url: canvas.toDataURL("image/png"), width, height, nodes };
}

let shotSeq = 0;
const shotWaiters = {};
handlers.screenshot_saved = (msg) => {
  const w = shotWaiters[msg.req];
  if (w) w(msg);
};

/** @devtool screenshot(name = "screenshot", selector) — PNG of the viewport (or of one element) saved by the proxy under the state dir; returns {file_path, width, height, bytes}. Cross-origin images without CORS, video, iframes and ::before/::after are not rendered. */
def("screenshot", async (name = "screenshot", selector) => {
  if (!devtool.isConnected()) throw new Error("not connected to the proxy");
  const shot = await render(selector || null);
  if (shot.data_url.length > 15 * 1024 * 1024) throw new Error(`screenshot too large (${shot.data_url.length} bytes as data URL)`);
  const req = `shot-${++shotSeq}`;
  const saved = new Promise((res) => {
    shotWaiters[req] = res;
    setTimeout(() => res({ error: "the proxy did not confirm the file within 10 s" }), 10000);
  });
  rawSend({ type: "screenshot", req, data: { name: String(name), selector: selector || null, width: shot.width, height: shot.height, data_url: shot.data_url } });
  const ack = await saved;
  delete shotWaiters[req];
  if (ack.error) return { error: ack.error };
  return { name: String(name), selector: selector || null, file_path: ack.file_path, width: shot.width, height: shot.height, bytes: ack.bytes, entry_id: ack.entry_id };
});
