// The connections: a searchable list with enable/disable in place, and a
// new connection made from a source's discovered catalog.

import { useMemo, useState } from 'react';
import * as api from './api.js';
import { Link, useLoad, ErrorNote, Loading, Status, ago, count, nextRun, navigate, Head } from './util.jsx';
import { StreamPicker, choiceOf, specOf } from './streams.jsx';

export function Toggle({ conn, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const active = conn.status === 'active';
  return (
    <>
      <button
        type="button"
        role="switch"
        aria-checked={active}
        aria-label={`${conn.name} enabled`}
        className={`switch ${active ? 'on' : ''}`}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await api.call('POST', `/connections/${api.seg(conn.name)}/${active ? 'disable' : 'enable'}`);
            onDone(active ? 'inactive' : 'active');
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        {active ? 'active' : 'inactive'}
      </button>
      <ErrorNote error={error} />
    </>
  );
}

const Row = ({ c, now, setStatus }) => (
  <tr>
    <td>
      <Link to={`/connections/${api.seg(c.name)}`}>{c.name}</Link>
    </td>
    <td>
      {c.source} <span aria-label="to">→</span> {c.destination}
    </td>
    <td>
      <Toggle conn={c} onDone={(s) => setStatus(c.name, s)} />
    </td>
    <td>
      <code>{c.schedule}</code>
    </td>
    <td>
      {c.last_job ? (
        <>
          <Status status={c.last_job.status} /> <span className="muted">{ago(c.last_job.at, now)}</span>
          <span className="muted records"> · {count(c.last_job.records)} records</span>
        </>
      ) : (
        <span className="muted">never run</span>
      )}
    </td>
    <td className="muted">{ago(nextRun(c, now), now)}</td>
  </tr>
);

export function Connections() {
  const { data, error, loading, reload } = useLoad((s) => api.get('/connections', s), []);
  const [overrides, setOverrides] = useState({});
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [lastStatus, setLastStatus] = useState('');
  const now = Date.now();
  const rows = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return (data || [])
      .map((c) => (overrides[c.name] ? { ...c, status: overrides[c.name] } : c))
      .filter(
        (c) =>
          (!needle || [c.name, c.source, c.destination].some((s) => s.toLowerCase().includes(needle))) &&
          (!status || c.status === status) &&
          (!lastStatus || (c.last_job ? c.last_job.status : 'never') === lastStatus),
      );
  }, [data, overrides, q, status, lastStatus]);
  const setRowStatus = (name, s) => setOverrides((o) => ({ ...o, [name]: s }));
  return (
    <section aria-labelledby="h-connections">
      <div className="row spread">
        <h1 id="h-connections">Connections</h1>
        <Link to="/connections/new" className="button primary">
          New connection
        </Link>
      </div>
      <div className="row wrap filters">
        <label>
          Search <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="name, source or destination" />
        </label>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="inactive">inactive</option>
          </select>
        </label>
        <label>
          Last job{' '}
          <select value={lastStatus} onChange={(e) => setLastStatus(e.target.value)}>
            <option value="">any</option>
            {['succeeded', 'failed', 'running', 'pending', 'cancelled', 'never'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={reload}>
          Refresh list
        </button>
      </div>
      <ErrorNote error={error} />
      {loading && !data ? (
        <Loading what="connections" />
      ) : (
        <div className="scroll">
          <table className="table" id="connections">
            <caption className="muted">
              {rows.length} of {(data || []).length} connections
            </caption>
            <Head cols={['Name', 'Source → destination', 'Status', 'Schedule', 'Last job', 'Next run']} />
            <tbody>
              {rows.map((c) => (
                <Row key={c.name} c={c} now={now} setStatus={setRowStatus} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ActorSelect({ kind, list, value, onChange }) {
  return (
    <label>
      {kind === 'source' ? 'Source' : 'Destination'}{' '}
      <select name={kind} value={value} required onChange={(e) => onChange(e.target.value)}>
        <option value="">choose…</option>
        {(list || []).map((a) => (
          <option key={a.name} value={a.name}>
            {a.name} ({a.connector})
          </option>
        ))}
      </select>
    </label>
  );
}

export function NewConnection() {
  const sources = useLoad((s) => api.get('/sources', s), []);
  const destinations = useLoad((s) => api.get('/destinations', s), []);
  const [name, setName] = useState('');
  const [source, setSource] = useState('');
  const [destination, setDestination] = useState('');
  const [catalog, setCatalog] = useState(null);
  const [choice, setChoice] = useState(choiceOf(null));
  const [step, setStep] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const discover = async (src) => {
    setCatalog(null);
    setError(null);
    if (!src) return;
    setStep('Discovering the streams of the source…');
    try {
      setCatalog(await api.run('POST', `/sources/${api.seg(src)}/discover`, {}, (e) => e.message && setStep(e.message)));
    } catch (e) {
      setError(e);
    } finally {
      setStep('');
    }
  };

  return (
    <section aria-labelledby="h-new-connection">
      <h1 id="h-new-connection">New connection</h1>
      <form
        className="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const spec = { source, destination, ...specOf(choice) };
            setStep('Saving…');
            const c = await api.run('POST', '/connections', { name, spec });
            navigate(`/connections/${api.seg(c.name)}`);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
            setStep('');
          }
        }}
      >
        <label>
          Name <input name="name" value={name} onChange={(e) => setName(e.target.value)} required pattern="[^/]+" />
        </label>
        <ActorSelect
          kind="source"
          list={sources.data}
          value={source}
          onChange={(v) => {
            setSource(v);
            discover(v);
          }}
        />
        <ActorSelect kind="destination" list={destinations.data} value={destination} onChange={setDestination} />
        {step && (
          <p className="muted" aria-live="polite">
            {step}
          </p>
        )}
        {catalog && <StreamPicker catalog={catalog} value={choice} onChange={setChoice} />}
        <ErrorNote error={error || sources.error || destinations.error} />
        <div className="row">
          <button type="submit" className="primary" disabled={busy || !catalog}>
            Create connection
          </button>
        </div>
      </form>
    </section>
  );
}
