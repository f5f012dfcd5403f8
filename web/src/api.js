// The daemon's public API, as the UI calls it: JSON under /api/v1, long
// operations as JSON lines, logs as text streams. The UI has no route of
// its own: whatever it does, a script can do with the same requests.
//
// Over TCP the browser is signed in by an HttpOnly cookie; every change
// carries X-Sluice-CSRF, which a page of another site cannot send.

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.hint = e.hint;
  }
}

let onUnauthorized = () => {};

/** Called when the daemon answers 401: the app shows its login page. */
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

function headers(method, extra) {
  const h = { Accept: 'application/json', ...extra };
  if (method !== 'GET') {
    h['X-Sluice-CSRF'] = '1';
    h['Content-Type'] = 'application/json';
  }
  return h;
}

async function failure(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not JSON: the status says enough.
  }
  if (resp.status === 401) onUnauthorized();
  return new ApiError(resp.status, body);
}

/** METHOD /api/v1PATH with a JSON body; the JSON answer. */
export async function call(method, path, body, signal) {
  const resp = await fetch(`/api/v1${path}`, {
    method,
    headers: headers(method),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  });
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

export const get = (path, signal) => call('GET', path, undefined, signal);

/** Lines of a streamed body, as they come. */
async function* lines(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

/**
 * A long operation as JSON lines: `onEvent` gets each event as it comes;
 * resolves to the answer, or throws the error it ended with.
 */
export async function run(method, path, body, onEvent = () => {}, signal) {
  const resp = await fetch(`/api/v1${path}`, {
    method,
    headers: headers(method, { Accept: 'application/x-ndjson' }),
    body: JSON.stringify(body ?? {}),
    credentials: 'same-origin',
    signal,
  });
  if (!resp.ok) throw await failure(resp);
  for await (const line of lines(resp)) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    if ('answer' in msg) return msg.answer;
    if ('error' in msg) throw new ApiError(422, { error: msg.error });
    if ('event' in msg) onEvent(msg.event);
  }
  throw new ApiError(0, { error: { message: 'the daemon stopped answering' } });
}

/** A text stream (a followed log): `onText` gets each chunk. */
export async function follow(path, onText, signal) {
  const resp = await fetch(`/api/v1${path}`, {
    headers: { Accept: 'text/plain' },
    credentials: 'same-origin',
    signal,
  });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(decoder.decode(value, { stream: true }));
  }
}

export const signIn = (token) => call('POST', '/session', { token });
export const signOut = () => call('DELETE', '/session');

/** A name or id as one path segment. */
export const seg = (s) => encodeURIComponent(s);
