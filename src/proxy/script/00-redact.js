// Part 0b: secret redaction inside the page. The proxy redacts everything it stores; this part
// keeps what only the page can see from leaving it at all: values of fields named like secrets
// (and password / card / one-time-code fields), their `data-*` attributes, and storage values
// under secret-named keys. SECRET_NAMES is the proxy's table (`src/proxy/redact/mod.rs`); a
// unit test there fails if the two differ. `config {redact, redact_names}` from the proxy
// switches name-based redaction off or adds names.
const SECRET_NAMES = [
  "password", "passwd", "pass", "pwd", "secret", "client_secret", "token", "access_token",
  "refresh_token", "id_token", "auth", "authorization", "api_key", "apikey", "private_key",
  "session", "sessionid", "card", "card_number", "cvv", "cvc", "ssn",
];
const REDACTED = "[redacted]";
const normName = (n) => String(n).toLowerCase().replace(/[-_]/g, "");
const secretNames = new Set(SECRET_NAMES.map(normName));
let redactNames = true;
// `user[password]` is matched by `password`; the match is exact, never a substring.
const secretName = (n) => {
  if (!redactNames || n === null || n === undefined || n === "") return false;
  const m = /\[([^\[\]]+)\]$/.exec(String(n));
  return secretNames.has(normName(m ? m[1] : n));
};
// Always hidden (even with redaction off): password, card and one-time-code fields.
const secretField = (t) =>
  !!t &&
  t.nodeType === 1 &&
  (t.type === "password" ||
    /cc-|current-password|new-password|one-time-code/.test(t.getAttribute("autocomplete") || "") ||
    secretName(t.getAttribute("name")) ||
    secretName(t.id));
// An attribute of element `e` that must not leave the page: the value of a secret field, and
// any `data-*` attribute of one.
const secretAttr = (e, name) => secretField(e) && (name === "value" || name.startsWith("data-"));
function configureRedaction(msg) {
  if (msg.redact === false) redactNames = false;
  if (Array.isArray(msg.redact_names)) for (const n of msg.redact_names) secretNames.add(normName(n));
}
