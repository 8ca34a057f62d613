// Last part: open the channel once the page has loaded (events queue until then; the page's
// own loading comes first), and remember how long the synchronous setup took (diagnostics:
// `__agnt.init_ms`).
whenLoaded(connect);
agnt.init_ms = Math.round((performance.now() - T0) * 100) / 100;
