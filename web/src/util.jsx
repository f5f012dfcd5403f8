// What every page shares: a tiny router over the History API, loading
// hooks, and how times, sizes and statuses are written.

import { useCallback, useEffect, useState, useSyncExternalStore } from 'react';
import { Cron } from 'croner';

const listeners = new Set();
const subscribe = (f) => {
  listeners.add(f);
  window.addEventListener('popstate', f);
  return () => {
    listeners.delete(f);
    window.removeEventListener('popstate', f);
  };
};

export function navigate(to) {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  listeners.forEach((f) => f());
  window.scrollTo(0, 0);
}

export function usePath() {
  return useSyncExternalStore(subscribe, () => location.pathname + location.search);
}

export function Link({ to, children, ...rest }) {
  return (
    <a
      href={to}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
      {...rest}
    >
      {children}
    </a>
  );
}

/** `load()` run now and on `reload()`: { data, error, loading, reload }. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, error: null, loading: false }),
      (error) => !ctl.signal.aborted && setState((s) => ({ ...s, error, loading: false })),
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Calls `f` every `ms` while mounted. */
export function useInterval(f, ms) {
  useEffect(() => {
    if (!ms) return undefined;
    const t = setInterval(f, ms);
    return () => clearInterval(t);
  }, [f, ms]);
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      {error.message}
      {error.hint && <div className="hint">hint: {error.hint}</div>}
    </div>
  );
}

/** A table's header row. */
export function Head({ cols }) {
  return (
    <thead>
      <tr>
        {cols.map((c) => (
          <th key={c} scope="col">
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** Why an attempt failed: its origin and type, then its message. */
export function Failure({ failure }) {
  if (!failure) return null;
  return (
    <>
      <span className="badge failed">
        {failure.origin} · {failure.failure_type}
      </span>{' '}
      {failure.message}
    </>
  );
}

export function Loading({ what }) {
  return <p className="muted" aria-live="polite">Loading {what}…</p>;
}

export function Status({ status }) {
  return <span className={`badge ${status || 'none'}`}>{status || '—'}</span>;
}

const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function when(ms) {
  if (ms == null) return '—';
  return fmt.format(new Date(ms));
}

/** "3 min ago", "in 2 h". */
export function ago(ms, now = Date.now()) {
  if (ms == null) return '—';
  const d = Math.round((ms - now) / 1000);
  const a = Math.abs(d);
  if (a < 5) return 'just now';
  const [n, unit] = a < 60 ? [a, 's'] : a < 3600 ? [Math.round(a / 60), 'min'] : a < 86400 ? [Math.round(a / 3600), 'h'] : [Math.round(a / 86400), 'd'];
  return d < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

export function duration(ms) {
  if (ms == null) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function bytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export const count = (n) => (n == null ? '—' : n.toLocaleString());

/** A cron schedule's next `n` runs, in its time zone: Dates, or an error. */
export function cronRuns(expression, timezone, n = 5) {
  try {
    return new Cron(expression, { timezone: timezone || 'UTC', paused: true }).nextRuns(n);
  } catch (e) {
    return e;
  }
}

const UNITS = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600, d: 86400, day: 86400 };

/** An `every:` duration as humantime writes it (`1h 30m`), in ms. */
export function everyMs(text) {
  let total = 0;
  for (const [, n, u] of text.matchAll(/(\d+)\s*([a-z]+)/g)) {
    const unit = UNITS[u] ?? UNITS[u.replace(/s$/, '')];
    if (unit === undefined) return null;
    total += Number(n) * unit * 1000;
  }
  return total || null;
}

// Next cron runs by schedule: a thousand connections share a few schedules.
const cronNext = new Map();

/** When a connection's schedule fires next, as far as the browser can tell. */
export function nextRun(c, now = Date.now()) {
  if (c.status !== 'active') return null;
  const s = c.schedule || 'manual';
  if (s.startsWith('cron:')) {
    const cached = cronNext.get(s);
    if (cached !== undefined && (cached === null || cached > now)) return cached;
    let expr = s.slice(5).trim();
    let tz = 'UTC';
    const m = /^CRON_TZ=(\S+)\s+(.*)$/.exec(expr);
    if (m) [, tz, expr] = m;
    const runs = cronRuns(expr, tz, 1);
    const next = Array.isArray(runs) && runs[0] ? runs[0].getTime() : null;
    cronNext.set(s, next);
    return next;
  }
  if (s.startsWith('every:')) {
    const every = everyMs(s.slice(6));
    if (!every) return null;
    const last = c.last_job ? c.last_job.at : c.created_at;
    return Math.max(last + every, now);
  }
  return null;
}

/** Asks before clearing data; true when the user agreed. */
export const confirmed = (message) => window.confirm(message);
