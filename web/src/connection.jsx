// One connection: its jobs (with live progress and the log of a running
// one), its streams, its settings and its state.

import { useCallback, useEffect, useRef, useState } from 'react';
import * as api from './api.js';
import { Link, useLoad, useInterval, ErrorNote, Loading, Status, when, ago, duration, bytes, count, cronRuns, confirmed, navigate, Head, Failure } from './util.jsx';
import { Toggle } from './connections.jsx';
import { StreamPicker, choiceOf, specOf } from './streams.jsx';
import { LogViewer, jobRecords } from './jobs.jsx';

const TABS = [
  ['status', 'Status'],
  ['streams', 'Streams'],
  ['settings', 'Settings'],
  ['state', 'State'],
];

export function ConnectionPage({ name, tab }) {
  const conn = useLoad((s) => api.get(`/connections/${api.seg(name)}`, s), [name]);
  const [status, setStatus] = useState(null);
  if (conn.error && !conn.data) return <ErrorNote error={conn.error} />;
  if (!conn.data) return <Loading what="the connection" />;
  const c = status ? { ...conn.data, status } : conn.data;
  const base = `/connections/${api.seg(name)}`;
  return (
    <section aria-labelledby="h-connection">
      <div className="row spread wrap">
        <div>
          <h1 id="h-connection">{c.name}</h1>
          <p className="muted">
            <Link to={`/sources/${api.seg(c.source)}`}>{c.source}</Link> → <Link to={`/destinations/${api.seg(c.destination)}`}>{c.destination}</Link>
          </p>
        </div>
        <Toggle conn={c} onDone={setStatus} />
      </div>
      <nav className="tabs" aria-label="Connection">
        {TABS.map(([t, label]) => (
          <Link key={t} to={t === 'status' ? base : `${base}/${t}`} aria-current={tab === t ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {tab === 'status' && <StatusTab c={c} />}
      {tab === 'streams' && <StreamsTab c={c} reload={conn.reload} />}
      {tab === 'settings' && <SettingsTab c={c} reload={conn.reload} />}
      {tab === 'state' && <StateTab c={c} />}
    </section>
  );
}

const running = (j) => j && (j.status === 'running' || j.status === 'pending');

function StatusTab({ c }) {
  const path = `/connections/${api.seg(c.name)}`;
  const jobs = useLoad(async (signal) => {
    const list = await api.get(`/jobs?connection=${api.seg(c.name)}&limit=25`, signal);
    // The newest ten with their attempts: records, bytes, failures.
    const details = await Promise.all(list.slice(0, 10).map((j) => api.get(`/jobs/${j.id}`, signal)));
    return list.map((j, i) => details[i] || j);
  }, [c.name]);
  const [live, setLive] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [logJob, setLogJob] = useState(null);
  const list = jobs.data || [];
  const current = list.find(running);
  const poll = useCallback(() => current && !live && jobs.reload(), [current, live, jobs]);
  useInterval(poll, current ? 2000 : 0);
  const latest = list[0];
  useEffect(() => {
    if (!logJob && latest) setLogJob(latest.id);
  }, [latest, logJob]);

  const start = async (kind, message) => {
    if (message && !confirmed(message)) return;
    setBusy(true);
    setError(null);
    setLive({ kind, streams: [] });
    try {
      await api.run('POST', `${path}/jobs`, { connection: c.name, kind }, (e) => {
        if (e.event === 'job_started') {
          setLogJob(e.job);
          jobs.reload();
        }
        if (e.event === 'progress') setLive({ kind, streams: e.streams, elapsed: e.elapsed_ms });
      });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      setLive(null);
      jobs.reload();
    }
  };
  const cancel = async () => {
    if (!current) return;
    setError(null);
    try {
      await api.call('POST', `/jobs/${current.id}/cancel`);
      jobs.reload();
    } catch (e) {
      setError(e);
    }
  };
  const changes = list.find((j) => j.changes && j.changes.length);
  return (
    <>
      <div className="row wrap actions">
        <button type="button" className="primary" disabled={busy || !!current || c.status !== 'active'} onClick={() => start('sync')}>
          Sync now
        </button>
        <button type="button" disabled={busy || !!current || c.status !== 'active'} onClick={() => start('refresh', `Refresh ${c.name}? Every stream is read again from the start; the old data stays until the new lands.`)}>
          Refresh
        </button>
        <button type="button" className="danger" disabled={busy || !!current || c.status !== 'active'} onClick={() => start('reset', `Reset ${c.name}? Its state and the data its streams wrote in the destination are cleared.`)}>
          Reset
        </button>
        <button type="button" disabled={!current} onClick={cancel}>
          Cancel job
        </button>
        {c.status !== 'active' && <span className="muted">Enable the connection to run it.</span>}
      </div>
      <ErrorNote error={error} />
      {live && (
        <div className="card" aria-live="polite">
          <h2>
            Running {live.kind} {live.elapsed != null && <span className="muted">({duration(live.elapsed)})</span>}
          </h2>
          <ProgressTable streams={live.streams} />
        </div>
      )}
      {!live && current && current.attempts && current.attempts.length > 0 && (
        // A job started elsewhere (its schedule, the CLI): its counts as the
        // daemon saves them, polled.
        <div className="card" aria-live="polite">
          <h2>
            Running {current.kind} <span className="muted">(job {current.id}, attempt {current.attempts.length})</span>
          </h2>
          <ProgressTable streams={current.attempts[current.attempts.length - 1].stats} />
        </div>
      )}
      {changes && (
        <div className="card">
          <h2>Schema changes</h2>
          <p className="muted">
            Found before job {changes.id}; this connection's policy is <code>{c.schema_change}</code> (Settings).
          </p>
          <ul>
            {changes.changes.map((ch, i) => (
              <li key={i}>
                <strong>{ch.stream}</strong>: {ch.change} {ch.breaking && <span className="badge failed">breaking</span>}
              </li>
            ))}
          </ul>
        </div>
      )}
      <h2>Jobs</h2>
      <ErrorNote error={jobs.error} />
      {!jobs.data ? (
        <Loading what="jobs" />
      ) : list.length === 0 ? (
        <p className="muted">No jobs yet.</p>
      ) : (
        <div className="scroll">
          <table className="table" id="jobs">
            <Head cols={['Job', 'Kind', 'Status', 'Started', 'Duration', 'Attempts', 'Records', 'Bytes', 'Failure', 'Log']} />
            <tbody>
              {list.map((j) => {
                const last = j.attempts && j.attempts[j.attempts.length - 1];
                const f = last && last.failure;
                return (
                  <tr key={j.id}>
                    <td>
                      <Link to={`/jobs/${j.id}`}>{j.id}</Link>
                    </td>
                    <td>
                    {j.kind}
                    {j.trigger === 'scheduled' && <span className="muted"> (scheduled)</span>}
                  </td>
                    <td>
                      <Status status={j.status} />
                    </td>
                    <td title={when(j.started_at || j.created_at)}>{ago(j.started_at || j.created_at)}</td>
                    <td>{j.started_at ? duration((j.ended_at || Date.now()) - j.started_at) : '—'}</td>
                    <td>{j.attempts ? j.attempts.length : '…'}</td>
                    <td className="records">{j.attempts ? count(jobRecords(j).records) : '…'}</td>
                    <td>{j.attempts ? bytes(jobRecords(j).bytes) : '…'}</td>
                    <td className="failure">
                      <Failure failure={f} />
                    </td>
                    <td>
                      <button type="button" className="link" aria-pressed={logJob === j.id} onClick={() => setLogJob(j.id)}>
                        {logJob === j.id ? 'shown' : 'show'}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {logJob && <LogViewer key={logJob} job={logJob} live={running(list.find((j) => j.id === logJob)) || (busy && logJob === list[0]?.id)} />}
    </>
  );
}

export function ProgressTable({ streams }) {
  if (!streams || !streams.length) return <p className="muted">Starting…</p>;
  return (
    <table className="table progress">
      <Head cols={['Stream', 'Records', 'Committed', 'Bytes', 'Progress']} />
      <tbody>
        {streams.map((s) => (
          <tr key={`${s.namespace || ''}.${s.name}`}>
            <td>{s.namespace ? `${s.namespace}.${s.name}` : s.name}</td>
            <td>{count(s.records)}</td>
            <td>{count(s.records_committed)}</td>
            <td>{bytes(s.bytes)}</td>
            <td>{s.estimate ? <progress max={s.estimate} value={Math.min(s.records, s.estimate)} /> : s.status || ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function StreamsTab({ c, reload }) {
  const catalog = useLoad((s) => api.run('POST', `/sources/${api.seg(c.source)}/discover`, {}, undefined, s), [c.source]);
  const [choice, setChoice] = useState(choiceOf(c));
  const [saved, setSaved] = useState('');
  const [error, setError] = useState(null);
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setSaved('');
        try {
          await api.run('PATCH', `/connections/${api.seg(c.name)}`, { name: c.name, patch: specOf(choice) });
          setSaved('Saved.');
          reload();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <ErrorNote error={catalog.error} />
      {!catalog.data ? <Loading what="the source's streams" /> : <StreamPicker catalog={catalog.data} value={choice} onChange={setChoice} />}
      <ErrorNote error={error} />
      <div className="row">
        <button type="submit" className="primary" disabled={!catalog.data}>
          Save streams
        </button>
        <span role="status">{saved}</span>
      </div>
    </form>
  );
}

function parseSchedule(s) {
  if (s.startsWith('every:')) return { kind: 'every', every: s.slice(6), cron: '0 * * * *', tz: 'UTC' };
  if (s.startsWith('cron:')) {
    const m = /^CRON_TZ=(\S+)\s+(.*)$/.exec(s.slice(5).trim());
    return { kind: 'cron', every: '1h', cron: m ? m[2] : s.slice(5).trim(), tz: m ? m[1] : 'UTC' };
  }
  return { kind: 'manual', every: '1h', cron: '0 * * * *', tz: 'UTC' };
}

function scheduleText(p) {
  if (p.kind === 'every') return `every:${p.every}`;
  if (p.kind === 'cron') return p.tz && p.tz !== 'UTC' ? `cron:CRON_TZ=${p.tz} ${p.cron}` : `cron:${p.cron}`;
  return 'manual';
}

const lines = (text) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

function SettingsTab({ c, reload }) {
  const [sched, setSched] = useState(parseSchedule(c.schedule || 'manual'));
  const ns = c.namespace || 'source';
  const [namespace, setNamespace] = useState(ns.startsWith('custom:') ? 'custom' : ns);
  const [custom, setCustom] = useState(ns.startsWith('custom:') ? ns.slice(7) : '');
  const [prefix, setPrefix] = useState(c.prefix || '');
  const [policy, setPolicy] = useState(c.schema_change);
  const n = c.notifications || {};
  const [hooks, setHooks] = useState({
    on_failure: (n.on_failure || []).join('\n'),
    on_success: (n.on_success || []).join('\n'),
    on_disable: (n.on_disable || []).join('\n'),
  });
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState('');
  const runs = sched.kind === 'cron' ? cronRuns(sched.cron, sched.tz, 5) : null;
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return (
    <form
      className="stack"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setSaved('');
        const patch = {
          schedule: scheduleText(sched),
          namespace: namespace === 'custom' ? `custom:${custom}` : namespace,
          prefix,
          schema_change: policy,
          notifications: { on_failure: lines(hooks.on_failure), on_success: lines(hooks.on_success), on_disable: lines(hooks.on_disable) },
        };
        try {
          await api.run('PATCH', `/connections/${api.seg(c.name)}`, { name: c.name, patch });
          setSaved('Saved.');
          reload();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <fieldset>
        <legend>Schedule</legend>
        <div className="row wrap">
          {['manual', 'every', 'cron'].map((k) => (
            <label key={k}>
              <input type="radio" name="schedule" value={k} checked={sched.kind === k} onChange={() => setSched({ ...sched, kind: k })} /> {k === 'every' ? 'every interval' : k}
            </label>
          ))}
        </div>
        {sched.kind === 'every' && (
          <label>
            Interval <input value={sched.every} onChange={(e) => setSched({ ...sched, every: e.target.value })} placeholder="1h, 30m, 1day" />
          </label>
        )}
        {sched.kind === 'cron' && (
          <>
            <label>
              Cron expression <input value={sched.cron} onChange={(e) => setSched({ ...sched, cron: e.target.value })} placeholder="0 */6 * * *" />
            </label>
            <label>
              Time zone{' '}
              <input list="zones" value={sched.tz} onChange={(e) => setSched({ ...sched, tz: e.target.value })} />
              <datalist id="zones">
                {zones.map((z) => (
                  <option key={z} value={z} />
                ))}
              </datalist>
            </label>
            <div className="preview" aria-live="polite">
              {runs instanceof Error ? (
                <span className="error-text">Not a cron expression: {runs.message}</span>
              ) : (
                <>
                  Next runs:
                  <ol>
                    {runs.map((d) => (
                      <li key={d.getTime()}>
                        {d.toLocaleString(undefined, { timeZone: sched.tz || 'UTC', dateStyle: 'medium', timeStyle: 'short' })} ({sched.tz || 'UTC'})
                      </li>
                    ))}
                  </ol>
                </>
              )}
            </div>
          </>
        )}
      </fieldset>
      <fieldset>
        <legend>Destination namespace</legend>
        <label>
          Namespace{' '}
          <select value={namespace} onChange={(e) => setNamespace(e.target.value)}>
            <option value="source">the source's</option>
            <option value="destination">the destination's default</option>
            <option value="custom">custom</option>
          </select>
        </label>
        {namespace === 'custom' && (
          <label>
            Custom namespace <input value={custom} onChange={(e) => setCustom(e.target.value)} placeholder="raw_${SOURCE_NAMESPACE}" required />
          </label>
        )}
        <label>
          Stream prefix <input value={prefix} onChange={(e) => setPrefix(e.target.value)} />
        </label>
      </fieldset>
      <label>
        When the source's schema changes{' '}
        <select value={policy} onChange={(e) => setPolicy(e.target.value)}>
          <option value="ignore">ignore: keep the catalog as it was</option>
          <option value="propagate_columns">propagate columns</option>
          <option value="propagate_fully">propagate columns and new streams</option>
          <option value="disable">disable the connection</option>
        </select>
      </label>
      <fieldset>
        <legend>Notification webhooks (one URL a line; masked ones are kept)</legend>
        {[
          ['on_failure', 'When a job fails'],
          ['on_success', 'When a job succeeds'],
          ['on_disable', 'When the connection is disabled for failing'],
        ].map(([k, label]) => (
          <label key={k}>
            {label}
            <textarea rows={2} value={hooks[k]} onChange={(e) => setHooks({ ...hooks, [k]: e.target.value })} />
          </label>
        ))}
      </fieldset>
      <ErrorNote error={error} />
      <SaveBar
        label="Save settings"
        saved={saved}
        danger="Delete connection"
        ask={`Delete ${c.name}, its state and its jobs?`}
        run={async () => {
          await api.call('DELETE', `/connections/${api.seg(c.name)}`);
          navigate('/connections');
        }}
        setError={setError}
      />
    </form>
  );
}

/** A form's Save button and what it said, and an action that clears, asked first. */
function SaveBar({ label, disabled, saved, danger, ask, run, setError }) {
  return (
    <div className="row spread">
      <div className="row">
        <button type="submit" className="primary" disabled={disabled}>
          {label}
        </button>
        <span role="status">{saved}</span>
      </div>
      <button
        type="button"
        className="danger"
        onClick={async () => {
          if (!confirmed(ask)) return;
          try {
            await run();
          } catch (err) {
            setError(err);
          }
        }}
      >
        {danger}
      </button>
    </div>
  );
}

function StateTab({ c }) {
  const path = `/connections/${api.seg(c.name)}/state`;
  const state = useLoad((s) => api.get(path, s), [path]);
  const [text, setText] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState('');
  const ref = useRef(null);
  useEffect(() => {
    if (state.data !== undefined && text === null) setText(state.data ? JSON.stringify(state.data.state, null, 2) : '');
  }, [state.data, text]);
  let invalid = null;
  if (text) {
    try {
      const v = JSON.parse(text);
      if (typeof v !== 'object' || v === null) invalid = 'A state is a JSON object or array.';
    } catch (e) {
      invalid = e.message;
    }
  }
  return (
    <form
      className="stack"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setSaved('');
        try {
          await api.call('PUT', path, JSON.parse(text));
          setSaved('Saved.');
          state.reload();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <ErrorNote error={state.error} />
      {state.data === undefined ? (
        <Loading what="the state" />
      ) : (
        <>
          <p className="muted">
            {state.data ? (
              <>
                A {state.data.state_type} state, committed {when(state.data.updated_at)}.
              </>
            ) : (
              'No state committed yet.'
            )}{' '}
            In Airbyte's <code>--state</code> form; the next sync resumes from it.
          </p>
          <label>
            State (JSON)
            <textarea ref={ref} className="code" rows={16} value={text || ''} onChange={(e) => setText(e.target.value)} aria-invalid={!!invalid} spellCheck={false} />
          </label>
          {invalid && <p className="error-text">{invalid}</p>}
        </>
      )}
      <ErrorNote error={error} />
      <SaveBar
        label="Save state"
        disabled={!text || !!invalid}
        saved={saved}
        danger="Clear state"
        ask={`Clear the state of ${c.name}? Its next sync reads everything again.`}
        run={async () => {
          await api.call('DELETE', path, {});
          setText(null);
          state.reload();
        }}
        setError={setError}
      />
    </form>
  );
}
